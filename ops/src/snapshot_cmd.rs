//! `capstan ctl snapshot save|status|restore`: backups of a live member and
//! new clusters made from them, with etcdctl's command names and flags.

use std::fs::{self, File};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use capstan_ctl::output::doc::{Doc, Obj};
use capstan_ctl::output::go_fmt::humanize_bytes;
use capstan_ctl::output::{json, table, yaml};
use capstan_ctl::{GlobalArgs, OutputFormat};
use capstan_proto::etcdserverpb::SnapshotRequest;
use capstan_store::backup::{self, RestoreConfig, SnapshotStatus};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum SnapshotCommand {
    /// Streams a point-in-time snapshot of one member's keyspace to FILE.
    Save { file: PathBuf },
    /// Verifies FILE and prints its revision, key count, size, checksum and format version.
    Status { file: PathBuf },
    /// Creates the data dir of one member of a new cluster from FILE.
    Restore(RestoreArgs),
}

#[derive(Args)]
pub struct RestoreArgs {
    file: PathBuf,
    /// Where the member's data goes; it must not exist yet.
    #[arg(long, default_value = "capstan-data")]
    data_dir: PathBuf,
    /// This member's name in --initial-cluster.
    #[arg(long, default_value = "default")]
    name: String,
    /// Every member of the new cluster, `name=peer-url,…`.
    #[arg(long, default_value = "default=http://127.0.0.1:2380")]
    initial_cluster: String,
    /// The new cluster's token (its id derives from it and the members).
    #[arg(long, default_value = "capstan-cluster")]
    initial_cluster_token: String,
    /// This member's peer URLs, as listed for it in --initial-cluster.
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2380")]
    initial_advertise_peer_urls: Vec<String>,
}

pub async fn run(global: &GlobalArgs, cmd: SnapshotCommand) -> Result<()> {
    match cmd {
        SnapshotCommand::Save { file } => {
            let endpoints = global.endpoint_list();
            let [endpoint] = endpoints.as_slice() else {
                bail!("snapshot must be requested to one selected node, not multiple {endpoints:?}");
            };
            save(endpoint, global, &file).await
        }
        SnapshotCommand::Status { file } => {
            let status = backup::status(&file)?;
            print!("{}", render_status(&status, global.write_out));
            Ok(())
        }
        SnapshotCommand::Restore(args) => {
            let cfg = RestoreConfig {
                name: args.name,
                data_dir: args.data_dir,
                initial_cluster: args.initial_cluster,
                initial_cluster_token: args.initial_cluster_token,
                initial_advertise_peer_urls: args.initial_advertise_peer_urls,
            };
            let restored = tokio::task::spawn_blocking({
                let (file, cfg) = (args.file.clone(), cfg.clone());
                move || backup::restore(&file, &cfg)
            })
            .await??;
            println!(
                "restored snapshot {} at revision {} into {} as member {} ({:x}) of cluster {:x}",
                args.file.display(),
                restored.revision,
                cfg.data_dir.display(),
                cfg.name,
                restored.member_id,
                restored.cluster_id
            );
            Ok(())
        }
    }
}

/// Streams the snapshot into `FILE.part`, verifies it, and renames it into
/// place: `file` either holds a whole, checked snapshot or is not touched.
async fn save(endpoint: &str, global: &GlobalArgs, file: &Path) -> Result<()> {
    let conn = capstan_ctl::dial(endpoint, global).await?;
    let mut stream = conn
        .maintenance()
        .snapshot(SnapshotRequest {})
        .await
        .with_context(|| format!("snapshot from {endpoint}"))?
        .into_inner();

    let part = part_path(file);
    let streamed = async {
        let mut out = File::create(&part).with_context(|| format!("cannot create {}", part.display()))?;
        let mut progress = Progress::new();
        while let Some(chunk) = stream.message().await.with_context(|| format!("snapshot stream from {endpoint}"))? {
            out.write_all(&chunk.blob).with_context(|| format!("writing {}", part.display()))?;
            progress.add(chunk.blob.len() as u64, chunk.remaining_bytes);
        }
        progress.finish();
        out.sync_all().with_context(|| format!("syncing {}", part.display()))?;
        drop(out);
        // The same checks as a restore: size, checksum, every record.
        let status = backup::status(&part)?;
        fs::rename(&part, file).with_context(|| format!("cannot move the snapshot to {}", file.display()))?;
        sync_dir_of(file)?;
        anyhow::Ok(status)
    };
    // Ctrl-C mid-way must not leave a partial file either.
    let written = tokio::select! {
        written = streamed => written,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; {} was not written", file.display())),
    };
    match written {
        Ok(status) => {
            println!("Snapshot saved at {}", file.display());
            eprintln!(
                "revision {}, {} keys, {} bytes, sha256 {}",
                status.revision, status.total_keys, status.total_size, status.hash
            );
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_file(&part);
            Err(e)
        }
    }
}

fn part_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".part");
    file.with_file_name(name)
}

fn sync_dir_of(file: &Path) -> Result<()> {
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))
}

/// Bytes and rate on one line of a terminal's stderr; silent otherwise.
struct Progress {
    on_terminal: bool,
    start: Instant,
    last_drawn: Instant,
    bytes: u64,
}

impl Progress {
    fn new() -> Progress {
        let now = Instant::now();
        Progress { on_terminal: std::io::stderr().is_terminal(), start: now, last_drawn: now, bytes: 0 }
    }

    fn add(&mut self, n: u64, remaining: u64) {
        self.bytes += n;
        if self.on_terminal && self.last_drawn.elapsed() >= Duration::from_millis(200) {
            self.last_drawn = Instant::now();
            let total = self.bytes + remaining;
            let pct = (self.bytes * 100).checked_div(total).unwrap_or(100);
            eprint!(
                "\r{} / {} ({pct}%) at {}/s   ",
                humanize_bytes(self.bytes),
                humanize_bytes(total),
                humanize_bytes(self.rate())
            );
        }
    }

    fn rate(&self) -> u64 {
        let secs = self.start.elapsed().as_secs_f64().max(0.001);
        (self.bytes as f64 / secs) as u64
    }

    fn finish(&self) {
        if self.on_terminal {
            eprintln!("\r{} at {}/s{}", humanize_bytes(self.bytes), humanize_bytes(self.rate()), " ".repeat(20));
        }
    }
}

/// etcdctl's status columns, plus the format version.
fn render_status(s: &SnapshotStatus, format: OutputFormat) -> String {
    let short_hash = &s.hash[..8];
    let doc = || -> Doc {
        Obj::new()
            .field("hash", Doc::Str(s.hash.clone()))
            .field("revision", Doc::Int(s.revision))
            .field("totalKey", Doc::Uint(s.total_keys as u64))
            .field("totalSize", Doc::Uint(s.total_size))
            .field("compactRevision", Doc::Int(s.compact_revision))
            .field("leases", Doc::Uint(s.leases as u64))
            .field("version", Doc::Uint(u64::from(s.version)))
            .build()
    };
    match format {
        OutputFormat::Simple => {
            format!("{short_hash}, {}, {}, {}, {}\n", s.revision, s.total_keys, humanize_bytes(s.total_size), s.version)
        }
        OutputFormat::Json => format!("{}\n", json::to_string(&doc())),
        OutputFormat::Yaml => yaml::to_string(&doc()),
        OutputFormat::Table => table::render(
            &["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE", "VERSION"],
            &[vec![
                short_hash.to_string(),
                s.revision.to_string(),
                s.total_keys.to_string(),
                humanize_bytes(s.total_size),
                s.version.to_string(),
            ]],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_prints_in_every_format() {
        let s = SnapshotStatus {
            hash: "ab".repeat(32),
            revision: 10,
            compact_revision: 0,
            total_keys: 7,
            total_size: 2_109_440,
            leases: 0,
            version: 1,
        };
        assert_eq!(render_status(&s, OutputFormat::Simple), "abababab, 10, 7, 2.1 MB, 1\n");
        let table = render_status(&s, OutputFormat::Table);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[1].contains("HASH") && lines[3].contains("abababab") && lines[3].contains("2.1 MB"), "{table}");
        let json: serde_json::Value = serde_json::from_str(&render_status(&s, OutputFormat::Json)).expect("json");
        assert_eq!((json["revision"].as_i64(), json["totalKey"].as_u64()), (Some(10), Some(7)));
        assert!(render_status(&s, OutputFormat::Yaml).contains("totalSize: 2109440"));
    }
}
