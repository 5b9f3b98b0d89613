//! `defrag [--cluster]`: each endpoint on its own connection.

use capstan_proto::etcdserverpb::DefragmentRequest;
use clap::Args;

use super::endpoint::endpoints;
use crate::args::GlobalArgs;
use crate::connect;
use crate::error::{exit, silent};
use crate::output::Output;

#[derive(Args, Debug, Clone)]
pub struct DefragArgs {
    /// Use all endpoints from the cluster member list.
    #[arg(long)]
    pub cluster: bool,
}

pub async fn run(global: &GlobalArgs, args: DefragArgs) -> anyhow::Result<()> {
    let mut out = Output::new(global.write_out, global.hex);
    let mut failures = 0;
    for endpoint in endpoints(global, args.cluster).await? {
        let result = async {
            let conn = connect::dial(&endpoint, global).await?;
            conn.call(conn.maintenance().defragment(DefragmentRequest {})).await
        }
        .await;
        // etcdctl prints these whatever the output format.
        match result {
            Ok(_) => out.line(&format!("Finished defragmenting etcd member[{endpoint}]"))?,
            Err(e) => {
                out.flush()?;
                eprintln!("Failed to defragment etcd member[{endpoint}] ({e})");
                failures += 1;
            }
        }
    }
    out.flush()?;
    if failures > 0 { Err(silent(exit::ERROR)) } else { Ok(()) }
}
