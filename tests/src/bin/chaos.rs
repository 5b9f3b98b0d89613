//! `chaos`: runs a three-member capstan store cluster under faults with
//! concurrent clients and watchers, then checks the history: linearizable,
//! nothing acknowledged lost, watches without gaps, members agreeing.
//! The last line is the summary; the exit status is non-zero on any violation,
//! and the failing history is saved for `--replay`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use capstan_tests::chaos::checks::{self, Report};
use capstan_tests::chaos::history::History;
use capstan_tests::chaos::linearizability::Verdict;
use capstan_tests::chaos::nemesis::FaultKind;
use capstan_tests::chaos::run::{self, Options, Outcome};
use clap::Parser;

#[derive(Parser)]
#[command(about = "Kill, pause and partition a capstan store cluster under load, then check what the clients saw")]
struct Args {
    /// Seconds of load under faults.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Seeds the workload and the nemesis (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Faults to inject, comma-separated: kill, pause, partition, snapshot.
    #[arg(long, value_delimiter = ',', default_value = "kill,pause,partition,snapshot")]
    faults: Vec<FaultKind>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: u32,
    /// Concurrent watchers of the whole key set.
    #[arg(long, default_value_t = 3)]
    watchers: u32,
    /// Size of the key set.
    #[arg(long, default_value_t = 6)]
    keys: usize,
    /// Where a failing run's history and member logs are saved.
    #[arg(long, default_value = ".")]
    history_dir: PathBuf,
    /// Check a saved history instead of running a cluster.
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Longest the linearizability search may take, in seconds.
    #[arg(long, default_value_t = 300)]
    check_budget: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run_and_check(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_and_check(args: &Args) -> Result<bool> {
    let budget = Duration::from_secs(args.check_budget);
    if let Some(path) = &args.replay {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let history: History =
            serde_json::from_str(&text).with_context(|| format!("{} is not a history", path.display()))?;
        let report = checks::check_history(&history, budget);
        print_violations(&report, &[]);
        println!("{report}");
        return Ok(report.ok());
    }

    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
    });
    let opts = Options {
        duration: Duration::from_secs(args.duration),
        seed,
        faults: args.faults.clone(),
        clients: args.clients,
        watchers: args.watchers,
        keys: args.keys,
    };
    build_capstan_under_cargo()?;
    let capstan = capstan_tests::capstan_bin();
    if !capstan.is_file() {
        anyhow::bail!(
            "no capstan binary at {} (build it with `cargo build [--release] -p capstan`, or set CAPSTAN_BIN)",
            capstan.display()
        );
    }
    eprintln!("chaos: seed={seed} duration={}s faults={:?} capstan={}", args.duration, args.faults, capstan.display());
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let outcome = match runtime.block_on(run::run(&opts, dir.path())) {
        Ok(outcome) => outcome,
        Err(e) => {
            // A run that stops short (a member never catches up) is a failure too: keep its logs.
            save_logs(&args.history_dir, seed, dir.path())?;
            return Err(e);
        }
    };
    let report = checks::check_history(&outcome.history, budget);
    let hashes_agree = outcome.hashes.windows(2).all(|w| w[0].1 == w[1].1);
    let ok = report.ok() && hashes_agree && outcome.crashes.is_empty();
    print_violations(&report, &outcome.crashes);
    if !hashes_agree {
        println!("members disagree at revision {}: {:?}", outcome.history.final_revision, outcome.hashes);
    }
    save(&args.history_dir, seed, &outcome, if ok { None } else { Some(dir.path()) })?;
    let hashkv = if hashes_agree { "equal" } else { "differ" };
    let (f, crashes) = (&outcome.faults, outcome.crashes.len());
    println!(
        "kills={} pauses={} partitions={} snapshot_kills={} snapshot_installs={} {report} hashkv={hashkv} crashes={crashes}",
        f.kills, f.pauses, f.partitions, f.snapshots, outcome.snapshot_installs
    );
    Ok(ok)
}

fn print_violations(report: &Report, crashes: &[String]) {
    if report.linearizable != Verdict::Linearizable {
        println!("violation: {}", report.linearizable);
    }
    for v in report.violations.iter().take(20) {
        println!("violation: {v}");
    }
    for c in crashes {
        println!("crash: {c}");
    }
}

/// Under `cargo run` (which sets `CARGO`), builds the capstan binary of the
/// same profile first, so that one command runs the chaos test from a fresh
/// clone. `CAPSTAN_BIN` names a binary to use as it is.
fn build_capstan_under_cargo() -> Result<()> {
    let Some(cargo) = std::env::var_os("CARGO") else { return Ok(()) };
    if std::env::var_os("CAPSTAN_BIN").is_some() {
        return Ok(());
    }
    let mut build = std::process::Command::new(cargo);
    build.args(["build", "-p", "capstan"]).current_dir(env!("CARGO_MANIFEST_DIR"));
    if !cfg!(debug_assertions) {
        build.arg("--release");
    }
    let status = build.status().context("cannot run cargo to build capstan")?;
    anyhow::ensure!(status.success(), "building capstan failed");
    Ok(())
}

/// Saves the history, and after a failure the members' logs beside it.
fn save(dir: &Path, seed: u64, outcome: &Outcome, logs_of: Option<&Path>) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("chaos-{seed}.json"));
    std::fs::write(&path, serde_json::to_vec(&outcome.history)?)?;
    println!("history saved: {} (check it again with --replay)", path.display());
    match logs_of {
        Some(run_dir) => save_logs(dir, seed, run_dir),
        None => Ok(()),
    }
}

/// Copies the members' logs of a failed run into `dir`.
fn save_logs(dir: &Path, seed: u64, run_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(run_dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".log") {
            std::fs::copy(entry.path(), dir.join(format!("chaos-{seed}-{name}")))?;
        }
    }
    println!("member logs saved in {}", dir.display());
    Ok(())
}
