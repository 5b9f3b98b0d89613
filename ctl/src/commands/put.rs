//! `put KEY [VALUE]`: the value from stdin when not given.

use std::io::Read;

use capstan_proto::etcdserverpb::PutRequest;
use clap::Args;

use crate::args::{GlobalArgs, OutputFormat};
use crate::connect;
use crate::error::bad_args;
use crate::output::go_fmt::strconv_error;
use crate::output::{Output, model, refuse_table};

#[derive(Args, Debug, Clone, Default)]
pub struct PutArgs {
    pub key: Option<String>,
    /// The value; read from stdin when omitted (unless --ignore-value).
    pub value: Option<String>,
    /// Lease ID (in hexadecimal) to attach to the key.
    #[arg(long, default_value = "0")]
    pub lease: String,
    /// Return the previous key-value pair before modification.
    #[arg(long)]
    pub prev_kv: bool,
    /// Update the key using its current value.
    #[arg(long)]
    pub ignore_value: bool,
    /// Update the key using its current lease.
    #[arg(long)]
    pub ignore_lease: bool,
}

const USAGE: &str = "put command needs 1 argument and input from stdin or 2 arguments";

/// The Put etcdctl sends; a missing value is read from `stdin` if given.
pub fn put_request(args: &PutArgs, stdin: Option<&mut dyn Read>) -> anyhow::Result<PutRequest> {
    let Some(key) = &args.key else { return Err(bad_args(USAGE)) };
    if args.ignore_value && args.value.is_some() {
        return Err(bad_args("put command needs only 1 argument when 'ignore-value' is set"));
    }
    let value = match (&args.value, stdin) {
        _ if args.ignore_value => Vec::new(),
        (Some(v), _) => v.as_bytes().to_vec(),
        (None, Some(stdin)) => {
            let mut buf = Vec::new();
            stdin.read_to_end(&mut buf).map_err(|_| bad_args(USAGE))?;
            if buf.is_empty() {
                return Err(bad_args(USAGE));
            }
            buf
        }
        (None, None) => return Err(bad_args(USAGE)),
    };
    let lease = parse_lease_id(&args.lease).map_err(|e| {
        bad_args(format!("bad lease ID ({}), expecting ID in Hex", strconv_error("ParseInt", &args.lease, &e)))
    })?;
    Ok(PutRequest {
        key: key.as_bytes().to_vec().into(),
        value: value.into(),
        lease,
        prev_kv: args.prev_kv,
        ignore_value: args.ignore_value,
        ignore_lease: args.ignore_lease,
    })
}

/// A lease ID in hexadecimal, as etcdctl prints and reads them.
pub fn parse_lease_id(text: &str) -> Result<i64, std::num::ParseIntError> {
    i64::from_str_radix(text, 16)
}

pub async fn run(global: &GlobalArgs, args: PutArgs) -> anyhow::Result<()> {
    let request = tokio::task::spawn_blocking(move || put_request(&args, Some(&mut std::io::stdin()))).await??;
    refuse_table(global.write_out)?;
    let conn = connect::connect(global).await?;
    let response = conn.call(conn.kv().put(request)).await?;
    let mut out = Output::new(global.write_out, global.hex);
    print(&mut out, &response)?;
    out.flush()?;
    Ok(())
}

pub fn print(out: &mut Output, response: &capstan_proto::etcdserverpb::PutResponse) -> std::io::Result<()> {
    match out.format {
        OutputFormat::Simple => {
            out.line("OK")?;
            response.prev_kv.as_ref().map_or(Ok(()), |kv| out.kv(kv, false))
        }
        _ => out.doc(&model::put(response)),
    }
}
