//! Probe bookkeeping, the kubelet's prober worker rules: thresholds,
//! initial results, initial delay, and the startup probe gating the other
//! two. Pure: the caller runs the probe and reports the outcome.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    pub const ALL: [ProbeKind; 3] = [ProbeKind::Startup, ProbeKind::Liveness, ProbeKind::Readiness];

    /// As the kubelet capitalises it in events: `Liveness probe failed: …`.
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }

    pub fn of(self, container: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Liveness => container.liveness_probe.as_ref(),
            ProbeKind::Readiness => container.readiness_probe.as_ref(),
            ProbeKind::Startup => container.startup_probe.as_ref(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure,
    Unknown,
}

/// A probe's timing and thresholds with Kubernetes' defaults filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: i32,
    pub failure_threshold: i32,
}

impl Settings {
    pub fn of(probe: &Probe) -> Settings {
        let secs = |v: Option<i32>, default: i32| Duration::from_secs(u64::try_from(v.unwrap_or(default)).unwrap_or(0));
        Settings {
            initial_delay: secs(probe.initial_delay_seconds, 0),
            period: secs(probe.period_seconds.filter(|p| *p > 0), 10),
            timeout: secs(probe.timeout_seconds.filter(|t| *t > 0), 1),
            success_threshold: probe.success_threshold.filter(|t| *t > 0).unwrap_or(1),
            failure_threshold: probe.failure_threshold.filter(|t| *t > 0).unwrap_or(3),
        }
    }
}

/// One probe of one container.
#[derive(Clone, Debug)]
pub struct Tracker {
    pub kind: ProbeKind,
    pub settings: Settings,
    pub result: ProbeResult,
    last_outcome: Option<bool>,
    run: i32,
    next_run: Option<Instant>,
}

impl Tracker {
    /// Readiness starts failed, liveness successful, startup unknown.
    pub fn new(kind: ProbeKind, settings: Settings) -> Tracker {
        let result = match kind {
            ProbeKind::Readiness => ProbeResult::Failure,
            ProbeKind::Liveness => ProbeResult::Success,
            ProbeKind::Startup => ProbeResult::Unknown,
        };
        Tracker { kind, settings, result, last_outcome: None, run: 0, next_run: None }
    }

    /// Whether to probe now: past the initial delay and the period, and
    /// allowed by the startup state (`started`: the startup probe passed or
    /// there is none).
    pub fn due(&self, now: Instant, running_for: Duration, started: bool) -> bool {
        let gated = match self.kind {
            ProbeKind::Startup => started,
            _ => !started,
        };
        !gated && running_for >= self.settings.initial_delay && self.next_run.is_none_or(|t| now >= t)
    }

    /// Records one outcome at `now`. Returns true when this outcome made a
    /// liveness or startup probe fail: the container must be restarted.
    pub fn record(&mut self, success: bool, now: Instant) -> bool {
        self.next_run = Some(now + self.settings.period);
        if self.last_outcome == Some(success) {
            self.run += 1;
        } else {
            self.last_outcome = Some(success);
            self.run = 1;
        }
        let threshold = if success { self.settings.success_threshold } else { self.settings.failure_threshold };
        if self.run < threshold {
            return false;
        }
        self.result = if success { ProbeResult::Success } else { ProbeResult::Failure };
        let restart = !success && self.kind != ProbeKind::Readiness;
        if restart {
            self.run = 0;
        }
        restart
    }
}

/// A running container's `started` and `ready` from its trackers (None:
/// the container has no such probe).
pub fn container_health(startup: Option<&Tracker>, readiness: Option<&Tracker>) -> (bool, bool) {
    let started = startup.is_none_or(|t| t.result == ProbeResult::Success);
    let ready = started && readiness.is_none_or(|t| t.result == ProbeResult::Success);
    (started, ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(success: i32, failure: i32) -> Settings {
        Settings {
            initial_delay: Duration::from_secs(2),
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn defaults_are_kubernetes() {
        let s = Settings::of(&Probe::default());
        assert_eq!(s.period, Duration::from_secs(10));
        assert_eq!(s.timeout, Duration::from_secs(1));
        assert_eq!((s.success_threshold, s.failure_threshold), (1, 3));
        assert_eq!(s.initial_delay, Duration::ZERO);
    }

    #[test]
    fn liveness_fails_after_the_threshold_and_then_counts_again() {
        let now = Instant::now();
        let mut t = Tracker::new(ProbeKind::Liveness, settings(1, 3));
        assert_eq!(t.result, ProbeResult::Success);
        assert!(!t.record(false, now));
        assert!(!t.record(false, now));
        assert!(t.record(false, now), "the third failure restarts");
        assert_eq!(t.result, ProbeResult::Failure);
        assert!(!t.record(false, now), "the count starts over after a restart");
        assert!(!t.record(true, now));
        assert_eq!(t.result, ProbeResult::Success);
    }

    #[test]
    fn readiness_needs_its_success_threshold_and_never_restarts() {
        let now = Instant::now();
        let mut t = Tracker::new(ProbeKind::Readiness, settings(2, 1));
        assert_eq!(t.result, ProbeResult::Failure);
        assert!(!t.record(true, now));
        assert_eq!(t.result, ProbeResult::Failure, "one success of two");
        assert!(!t.record(true, now));
        assert_eq!(t.result, ProbeResult::Success);
        assert!(!t.record(false, now));
        assert_eq!(t.result, ProbeResult::Failure);
    }

    #[test]
    fn timing_delay_period_and_startup_gate() {
        let now = Instant::now();
        let mut live = Tracker::new(ProbeKind::Liveness, settings(1, 3));
        assert!(!live.due(now, Duration::from_secs(1), true), "inside the initial delay");
        assert!(live.due(now, Duration::from_secs(2), true));
        assert!(!live.due(now, Duration::from_secs(2), false), "waits for the startup probe");
        live.record(true, now);
        assert!(!live.due(now, Duration::from_secs(3), true));
        assert!(live.due(now + Duration::from_secs(1), Duration::from_secs(3), true));

        let startup = Tracker::new(ProbeKind::Startup, settings(1, 3));
        assert!(startup.due(now, Duration::from_secs(5), false));
        assert!(!startup.due(now, Duration::from_secs(5), true), "done once started");
    }

    #[test]
    fn health_from_trackers() {
        let now = Instant::now();
        assert_eq!(container_health(None, None), (true, true));
        let mut startup = Tracker::new(ProbeKind::Startup, settings(1, 3));
        let readiness = Tracker::new(ProbeKind::Readiness, settings(1, 3));
        assert_eq!(container_health(Some(&startup), None), (false, false));
        startup.record(true, now);
        assert_eq!(container_health(Some(&startup), Some(&readiness)), (true, false));
    }
}
