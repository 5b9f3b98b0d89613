//! `compaction REV [--physical]`.

use capstan_proto::etcdserverpb::CompactionRequest;
use clap::Args;

use crate::args::GlobalArgs;
use crate::connect;
use crate::error::{bad_args, exit, fail};
use crate::output::Output;
use crate::output::go_fmt::strconv_error;

#[derive(Args, Debug, Clone)]
pub struct CompactionArgs {
    /// The revision to compact up to.
    pub revision: Option<String>,
    /// Wait for the compaction to physically remove all old revisions.
    #[arg(long)]
    pub physical: bool,
}

pub async fn run(global: &GlobalArgs, args: CompactionArgs) -> anyhow::Result<()> {
    let Some(text) = args.revision else { return Err(bad_args("compaction command needs 1 argument")) };
    let revision: i64 = text.parse().map_err(|e| fail(exit::ERROR, strconv_error("ParseInt", &text, &e)))?;
    let conn = connect::connect(global).await?;
    conn.call(conn.kv().compact(CompactionRequest { revision, physical: args.physical })).await?;
    // etcdctl prints this line whatever the output format.
    let mut out = Output::new(global.write_out, global.hex);
    out.line(&format!("compacted revision {revision}"))?;
    out.flush()?;
    Ok(())
}
