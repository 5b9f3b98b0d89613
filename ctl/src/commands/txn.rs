//! `txn [-i]`: compares, success requests and failure requests from stdin,
//! each section ended by a blank line (or the end of input).

use std::io::{BufRead, Write};

use capstan_proto::etcdserverpb::{TxnRequest, TxnResponse, response_op};
use clap::Args;

use super::txn_parse::{parse_compare, parse_request};
use super::{del, get, put};
use crate::args::{GlobalArgs, OutputFormat};
use crate::connect;
use crate::error::{exit, fail};
use crate::output::{Output, model, refuse_table};

#[derive(Args, Debug, Clone)]
pub struct TxnArgs {
    /// Input the transaction interactively (with prompts).
    #[arg(short = 'i', long)]
    pub interactive: bool,
}

pub async fn run(global: &GlobalArgs, args: TxnArgs) -> anyhow::Result<()> {
    let conn = connect::connect(global).await?;
    let request = tokio::task::spawn_blocking(move || {
        let mut stdout = std::io::stdout();
        let prompts: Option<&mut dyn Write> = if args.interactive { Some(&mut stdout) } else { None };
        read_txn(&mut std::io::stdin().lock(), prompts)
    })
    .await??;
    // Refused after the input is read (prompts and all, as etcdctl prints
    // them) but before anything is sent.
    refuse_table(global.write_out)?;
    let response = conn.call(conn.kv().txn(request)).await?;
    let mut out = Output::new(global.write_out, global.hex);
    print(&mut out, &response)?;
    out.flush()?;
    Ok(())
}

/// Reads the three sections, printing etcdctl's prompts to `prompts` (interactive mode).
pub fn read_txn(input: &mut dyn BufRead, mut prompts: Option<&mut dyn Write>) -> anyhow::Result<TxnRequest> {
    let mut prompt = |text: &str| -> anyhow::Result<()> {
        if let Some(p) = prompts.as_mut() {
            writeln!(p, "{text}")?;
            p.flush()?;
        }
        Ok(())
    };
    prompt("compares:")?;
    let compare = read_section(input, parse_compare)?;
    prompt("success requests (get, put, del):")?;
    let success = read_section(input, parse_request)?;
    prompt("failure requests (get, put, del):")?;
    let failure = read_section(input, parse_request)?;
    Ok(TxnRequest { compare, success, failure })
}

fn read_section<T>(input: &mut dyn BufRead, parse: fn(&str) -> Result<T, String>) -> anyhow::Result<Vec<T>> {
    let mut items = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(items);
        }
        let text = line.trim();
        if text.is_empty() {
            return Ok(items);
        }
        items.push(parse(text).map_err(|e| fail(exit::INVALID_INPUT, e))?);
    }
}

/// SUCCESS or FAILURE, then each response after a blank line.
pub fn print(out: &mut Output, response: &TxnResponse) -> std::io::Result<()> {
    if out.format != OutputFormat::Simple {
        return out.doc(&model::txn(response));
    }
    out.line(if response.succeeded { "SUCCESS" } else { "FAILURE" })?;
    for op in &response.responses {
        out.line("")?;
        match &op.response {
            Some(response_op::Response::ResponseDeleteRange(r)) => del::print(out, r)?,
            Some(response_op::Response::ResponsePut(r)) => put::print(out, r)?,
            Some(response_op::Response::ResponseRange(r)) => get::print(out, r, false, false)?,
            Some(response_op::Response::ResponseTxn(r)) => print(out, r)?,
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_with_prompts() {
        let input = "mod(\"k\") > \"0\"\n\nput k v\nget k\n\ndel k\n\n";
        let mut prompts = Vec::new();
        let txn = read_txn(&mut input.as_bytes(), Some(&mut prompts)).expect("valid txn");
        assert_eq!((txn.compare.len(), txn.success.len(), txn.failure.len()), (1, 2, 1));
        assert_eq!(
            String::from_utf8_lossy(&prompts),
            "compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n"
        );
        let short = read_txn(&mut "\nput k v\n".as_bytes(), None).expect("end of input ends the sections");
        assert_eq!((short.compare.len(), short.success.len(), short.failure.len()), (0, 1, 0));
        assert!(read_txn(&mut "nonsense\n\n".as_bytes(), None).is_err());
    }
}
