//! `get KEY [RANGE_END]`: one Range, or for a range in key order without a
//! limit, pages of it (`paged_get`).

use capstan_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use capstan_proto::etcdserverpb::{RangeRequest, RangeResponse};
use clap::Args;

use super::{key_range, paged_get};
use crate::args::{GlobalArgs, OutputFormat};
use crate::connect;
use crate::error::{bad_args, exit, fail};
use crate::output::{Output, model, refuse_table};

#[derive(Args, Debug, Clone, Default)]
pub struct GetArgs {
    /// The key, or the start of the range.
    pub key: Option<String>,
    /// The end of the range [key, range_end).
    pub range_end: Option<String>,
    /// Linearizable (l) or Serializable (s).
    #[arg(long, default_value = "l")]
    pub consistency: String,
    /// Order of results: ASCEND or DESCEND (ASCEND by default).
    #[arg(long, default_value = "")]
    pub order: String,
    /// Sort target: CREATE, KEY, MODIFY, VALUE or VERSION.
    #[arg(long, default_value = "")]
    pub sort_by: String,
    /// Maximum number of results.
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Get keys with matching prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Get keys that are greater than or equal to the given key (byte order).
    #[arg(long)]
    pub from_key: bool,
    /// The revision to read at (0: the latest).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Get only the keys.
    #[arg(long)]
    pub keys_only: bool,
    /// Get only the number of keys.
    #[arg(long)]
    pub count_only: bool,
    /// Only write values (simple output).
    #[arg(long)]
    pub print_value_only: bool,
}

/// The Range etcdctl sends for these flags.
pub fn range_request(args: &GetArgs) -> anyhow::Result<RangeRequest> {
    let range = key_range::from_args(
        args.key.as_deref(),
        args.range_end.as_deref(),
        args.prefix,
        args.from_key,
        "get command needs one argument as key and an optional argument as range_end",
    )?;
    if args.keys_only && args.count_only {
        return Err(bad_args("`--keys-only` and `--count-only` cannot be set at the same time, choose one"));
    }
    let serializable = match args.consistency.as_str() {
        "s" => true,
        "l" => false,
        other => return Err(fail(exit::BAD_FEATURE, format!("unknown consistency flag {other:?}"))),
    };
    let mut order = match args.order.to_uppercase().as_str() {
        "ASCEND" => SortOrder::Ascend,
        "DESCEND" => SortOrder::Descend,
        "" => SortOrder::None,
        _ => return Err(fail(exit::BAD_FEATURE, format!("bad sort order {}", args.order))),
    };
    let target = match args.sort_by.to_uppercase().as_str() {
        "CREATE" => SortTarget::Create,
        "KEY" | "" => SortTarget::Key,
        "MODIFY" => SortTarget::Mod,
        "VALUE" => SortTarget::Value,
        "VERSION" => SortTarget::Version,
        _ => return Err(fail(exit::BAD_FEATURE, format!("bad sort target {}", args.sort_by))),
    };
    // Keys come back in ascending order anyway; asking for it would make
    // the server read the whole range before applying the limit.
    if target == SortTarget::Key && order == SortOrder::Ascend {
        order = SortOrder::None;
    }
    Ok(RangeRequest {
        key: range.key.into(),
        range_end: range.range_end.into(),
        limit: args.limit,
        revision: args.rev.max(0),
        sort_order: order as i32,
        sort_target: target as i32,
        serializable,
        keys_only: args.keys_only,
        count_only: args.count_only,
        ..Default::default()
    })
}

pub async fn run(global: &GlobalArgs, args: GetArgs) -> anyhow::Result<()> {
    // Argument errors first, then the output format, as etcdctl reports them.
    let request = range_request(&args)?;
    if args.print_value_only && global.write_out != OutputFormat::Simple {
        return Err(bad_args("print-value-only is only for `--write-out=simple`"));
    }
    refuse_table(global.write_out)?;
    let conn = connect::connect(global).await?;
    let mut out = Output::new(global.write_out, global.hex);
    if paged_get::is_pageable(&request) {
        paged_get::run(&conn, request, &mut out, args.print_value_only).await?;
    } else {
        let response = conn.call(conn.kv().range(request)).await?;
        print(&mut out, &response, args.print_value_only, args.count_only)?;
    }
    out.flush()?;
    Ok(())
}

/// Prints one Range response as etcdctl does.
pub fn print(out: &mut Output, response: &RangeResponse, value_only: bool, count_only: bool) -> std::io::Result<()> {
    match out.format {
        OutputFormat::Simple if count_only => out.line(&response.count.to_string()),
        OutputFormat::Simple => response.kvs.iter().try_for_each(|kv| out.kv(kv, value_only)),
        _ => out.doc(&model::range(response)),
    }
}
