//! `del KEY [RANGE_END]`.

use capstan_proto::etcdserverpb::{DeleteRangeRequest, DeleteRangeResponse};
use clap::Args;

use super::key_range;
use crate::args::{GlobalArgs, OutputFormat};
use crate::connect;
use crate::error::bad_args;
use crate::output::{Output, model, refuse_table};

#[derive(Args, Debug, Clone, Default)]
pub struct DelArgs {
    pub key: Option<String>,
    /// The end of the range [key, range_end).
    pub range_end: Option<String>,
    /// Delete keys with matching prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Return deleted key-value pairs.
    #[arg(long)]
    pub prev_kv: bool,
    /// Delete keys that are greater than or equal to the given key (byte order).
    #[arg(long)]
    pub from_key: bool,
}

pub fn delete_request(args: &DelArgs) -> anyhow::Result<DeleteRangeRequest> {
    let usage = "del command needs one argument as key and an optional argument as range_end";
    if args.key.is_none() {
        return Err(bad_args(usage));
    }
    let range =
        key_range::from_args(args.key.as_deref(), args.range_end.as_deref(), args.prefix, args.from_key, usage)?;
    Ok(DeleteRangeRequest { key: range.key.into(), range_end: range.range_end.into(), prev_kv: args.prev_kv })
}

pub async fn run(global: &GlobalArgs, args: DelArgs) -> anyhow::Result<()> {
    let request = delete_request(&args)?;
    refuse_table(global.write_out)?;
    let conn = connect::connect(global).await?;
    let response = conn.call(conn.kv().delete_range(request)).await?;
    let mut out = Output::new(global.write_out, global.hex);
    print(&mut out, &response)?;
    out.flush()?;
    Ok(())
}

/// The number deleted, then the deleted pairs (with --prev-kv).
pub fn print(out: &mut Output, response: &DeleteRangeResponse) -> std::io::Result<()> {
    match out.format {
        OutputFormat::Simple => {
            out.line(&response.deleted.to_string())?;
            response.prev_kvs.iter().try_for_each(|kv| out.kv(kv, false))
        }
        _ => out.doc(&model::delete(response)),
    }
}
