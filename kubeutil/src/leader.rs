//! Leader election through a `coordination.k8s.io/v1` Lease, with
//! client-go's rules: the holder renews every retry period; another
//! candidate takes over only once it has seen the same record unchanged for
//! a whole lease duration (its own clock, so clock skew between machines
//! does not matter); every write is a resourceVersion-checked update, so
//! two candidates can never both win one round.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Timing and naming of one election (kube-controller-manager's defaults).
#[derive(Clone, Debug)]
pub struct ElectionConfig {
    pub namespace: String,
    /// The Lease's name: `kube-controller-manager`, `kube-scheduler`.
    pub name: String,
    /// Who this candidate is, unique per process: `<host>_<random>`.
    pub identity: String,
    pub lease_duration: Duration,
    /// A leader that cannot renew for this long stops leading.
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl ElectionConfig {
    /// An election in kube-system with 15 s leases, a 10 s renew deadline
    /// and 2 s retries, as kube-controller-manager and kube-scheduler use.
    pub fn new(name: &str, host: &str) -> ElectionConfig {
        ElectionConfig {
            namespace: "kube-system".to_string(),
            name: name.to_string(),
            identity: format!("{host}_{:016x}", rand::random::<u64>()),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The last Lease record seen, and when it was first seen in that form.
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    at: Instant,
}

/// What one attempt to acquire or renew should do.
#[derive(Debug, PartialEq)]
enum Step {
    /// No Lease yet: create it, holding it.
    Create(LeaseSpec),
    /// Write this spec over the Lease (a renewal or a takeover).
    Update(LeaseSpec),
    /// Someone else holds an unexpired lease.
    Wait,
}

/// The decision of one round (client-go's `tryAcquireOrRenew`).
fn next_step(
    current: Option<&LeaseSpec>,
    observed_at: Instant,
    config: &ElectionConfig,
    now: Instant,
    wall: Timestamp,
) -> Step {
    let seconds = i32::try_from(config.lease_duration.as_secs()).unwrap_or(i32::MAX);
    let held = |acquire: Option<MicroTime>, transitions: i32| LeaseSpec {
        holder_identity: Some(config.identity.clone()),
        lease_duration_seconds: Some(seconds),
        acquire_time: acquire.or(Some(MicroTime(wall))),
        renew_time: Some(MicroTime(wall)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    };
    let Some(spec) = current else {
        return Step::Create(held(None, 0));
    };
    let holder = spec.holder_identity.as_deref().filter(|h| !h.is_empty());
    let transitions = spec.lease_transitions.unwrap_or(0);
    if holder == Some(config.identity.as_str()) {
        return Step::Update(held(spec.acquire_time.clone(), transitions));
    }
    // A released lease (no holder) is free at once; a held one after the
    // holder's own duration has passed, by our clock, without a change.
    let duration = spec.lease_duration_seconds.map_or(config.lease_duration, |s| Duration::from_secs(s.max(0) as u64));
    if holder.is_some() && observed_at + duration > now {
        return Step::Wait;
    }
    Step::Update(held(None, transitions + 1))
}

/// Runs `work` whenever this candidate leads, until `shutdown`.
///
/// `work` gets a token that is cancelled when leadership is lost or on
/// shutdown and must return soon after; then this campaigns again. On
/// shutdown the lease is released so another candidate takes over at once.
pub async fn run_when_leader<W, F, E>(
    client: Client,
    config: ElectionConfig,
    shutdown: CancellationToken,
    mut work: W,
) -> Result<(), E>
where
    W: FnMut(CancellationToken) -> F,
    F: Future<Output = Result<(), E>>,
{
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let mut election = Election { api, config, observed: None };
    loop {
        tokio::select! {
            () = election.acquire() => {}
            () = shutdown.cancelled() => return Ok(()),
        }
        tracing::info!(lease = %election.config.name, identity = %election.config.identity, "became leader");
        let leading = shutdown.child_token();
        let working = work(leading.clone());
        tokio::pin!(working);
        let lost = tokio::select! {
            result = &mut working => {
                election.release().await;
                return result;
            }
            () = election.keep_renewing() => true,
            () = shutdown.cancelled() => false,
        };
        // Let the work wind down before anyone else may lead.
        leading.cancel();
        let result = working.await;
        if !lost {
            election.release().await;
            return result;
        }
        result?;
        tracing::warn!(lease = %election.config.name, "leadership lost; campaigning again");
    }
}

struct Election {
    api: Api<Lease>,
    config: ElectionConfig,
    observed: Option<Observed>,
}

impl Election {
    /// Returns once this candidate holds the lease.
    async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(err) => tracing::debug!(%err, lease = %self.config.name, "acquiring the lease"),
            }
            tokio::time::sleep(jittered(self.config.retry_period)).await;
        }
    }

    /// Renews every retry period; returns when leadership is lost: another
    /// holder took the lease, or no renewal succeeded within the deadline.
    async fn keep_renewing(&mut self) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewal = Instant::now(),
                Ok(false) => return,
                Err(err) => tracing::warn!(%err, lease = %self.config.name, "renewing the lease"),
            }
            if last_renewal.elapsed() > self.config.renew_deadline {
                return;
            }
        }
    }

    /// One round: true when this candidate holds the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let lease = self.api.get_opt(&self.config.name).await?;
        let now = Instant::now();
        // None: no Lease yet; a Lease without a spec has no holder.
        let spec = lease.as_ref().map(|l| l.spec.clone().unwrap_or_default());
        let seen = Observed {
            holder: spec.as_ref().and_then(|s| s.holder_identity.clone()),
            renew_time: spec.as_ref().and_then(|s| s.renew_time.as_ref().map(|t| t.0)),
            at: now,
        };
        let observed_at = match &self.observed {
            Some(previous) if previous.holder == seen.holder && previous.renew_time == seen.renew_time => previous.at,
            _ => {
                self.observed = Some(seen);
                now
            }
        };
        let step = next_step(spec.as_ref(), observed_at, &self.config, now, Timestamp::now());
        let written = match (step, lease) {
            (Step::Wait, _) => return Ok(false),
            (Step::Create(spec), _) => {
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.config.name.clone()), ..ObjectMeta::default() },
                    spec: Some(spec),
                };
                self.api.create(&PostParams::default(), &lease).await
            }
            (Step::Update(spec), Some(mut lease)) => {
                lease.spec = Some(spec);
                self.api.replace(&self.config.name, &PostParams::default(), &lease).await
            }
            (Step::Update(_), None) => return Ok(false),
        };
        match written {
            Ok(_) => Ok(true),
            // Someone else wrote first: they won this round.
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Gives the lease up so that a waiting candidate need not wait out
    /// its duration (client-go's ReleaseOnCancel).
    async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else { return };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        if let Err(err) = self.api.replace(&self.config.name, &PostParams::default(), &lease).await {
            tracing::debug!(%err, lease = %self.config.name, "releasing the lease");
        }
    }
}

/// Candidates wait retry × (1 + up to 20%) so that they drift apart;
/// client-go jitters by up to 120%, which would slow failover here.
fn jittered(period: Duration) -> Duration {
    period.mul_f64(1.0 + rand::random::<f64>() * 0.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(identity: &str) -> ElectionConfig {
        ElectionConfig { identity: identity.to_string(), ..ElectionConfig::new("kube-scheduler", "h") }
    }

    fn held_by(holder: &str, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(holder.to_string()),
            lease_duration_seconds: Some(15),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn a_missing_lease_is_created_held_by_us() {
        let now = Instant::now();
        match next_step(None, now, &config("me"), now, Timestamp::UNIX_EPOCH) {
            Step::Create(spec) => {
                assert_eq!(spec.holder_identity.as_deref(), Some("me"));
                assert_eq!(spec.lease_transitions, Some(0));
            }
            other => panic!("expected a create, got {other:?}"),
        }
    }

    #[test]
    fn another_holders_fresh_lease_is_waited_on() {
        let now = Instant::now();
        assert_eq!(next_step(Some(&held_by("other", 3)), now, &config("me"), now, Timestamp::UNIX_EPOCH), Step::Wait);
    }

    #[test]
    fn a_lease_unchanged_for_its_duration_is_taken_over() {
        let seen = Instant::now();
        let later = seen + Duration::from_secs(16);
        match next_step(Some(&held_by("other", 3)), seen, &config("me"), later, Timestamp::UNIX_EPOCH) {
            Step::Update(spec) => {
                assert_eq!(spec.holder_identity.as_deref(), Some("me"));
                assert_eq!(spec.lease_transitions, Some(4));
            }
            other => panic!("expected a takeover, got {other:?}"),
        }
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let now = Instant::now();
        let released = LeaseSpec { holder_identity: None, lease_duration_seconds: Some(1), ..LeaseSpec::default() };
        assert!(matches!(next_step(Some(&released), now, &config("me"), now, Timestamp::UNIX_EPOCH), Step::Update(_)));
    }

    #[test]
    fn our_own_lease_is_renewed_keeping_acquire_time_and_transitions() {
        let now = Instant::now();
        let acquired = MicroTime(Timestamp::UNIX_EPOCH);
        let ours = LeaseSpec { acquire_time: Some(acquired.clone()), ..held_by("me", 2) };
        let wall = Timestamp::from_second(100).unwrap_or(Timestamp::UNIX_EPOCH);
        match next_step(Some(&ours), now, &config("me"), now, wall) {
            Step::Update(spec) => {
                assert_eq!(spec.acquire_time, Some(acquired));
                assert_eq!(spec.renew_time, Some(MicroTime(wall)));
                assert_eq!(spec.lease_transitions, Some(2));
            }
            other => panic!("expected a renewal, got {other:?}"),
        }
    }
}
