//! A large range read page by page: `PAGE_SIZE` keys per Range, each page
//! after the last key of the one before, all at the first page's revision,
//! printed as they arrive and exactly as one Range response would print.

use capstan_proto::etcdserverpb::range_request::{SortOrder, SortTarget};
use capstan_proto::etcdserverpb::{RangeRequest, ResponseHeader};
use capstan_proto::mvccpb::KeyValue;

use crate::args::OutputFormat;
use crate::connect::Conn;
use crate::output::doc::Doc;
use crate::output::{Output, json, model, yaml};

/// Keys per Range when a range is read in pages.
pub const PAGE_SIZE: i64 = 1000;

/// A range read in key order with no limit is the same read page by page.
pub fn is_pageable(r: &RangeRequest) -> bool {
    !r.range_end.is_empty()
        && r.limit == 0
        && !r.count_only
        && r.sort_order == SortOrder::None as i32
        && r.sort_target == SortTarget::Key as i32
}

pub async fn run(conn: &Conn, mut request: RangeRequest, out: &mut Output, value_only: bool) -> anyhow::Result<()> {
    request.limit = PAGE_SIZE;
    let mut page = conn.call(conn.kv().range(request.clone())).await?;
    // Every later page reads at the first page's revision: one snapshot.
    if request.revision == 0 {
        request.revision = page.header.as_ref().map_or(0, |h| h.revision);
    }
    // Every page counts the whole range at that revision, as one Range would.
    let count = page.count;
    let mut printer = PagePrinter::start(out, page.header.as_ref(), !page.kvs.is_empty())?;
    loop {
        printer.kvs(&page.kvs, value_only)?;
        let Some(last) = page.kvs.last().filter(|_| page.more) else { break };
        // The next page starts right after the last key.
        let mut next = last.key.to_vec();
        next.push(0);
        request.key = next.into();
        page = conn.call(conn.kv().range(request.clone())).await?;
    }
    printer.finish(count)
}

/// Writes what one Range response would print, a page at a time.
struct PagePrinter<'a> {
    out: &'a mut Output,
    /// Whether a JSON field was written (commas).
    wrote_field: bool,
    wrote_kv: bool,
    opened_kvs: bool,
}

impl<'a> PagePrinter<'a> {
    fn start(out: &'a mut Output, header: Option<&ResponseHeader>, has_kvs: bool) -> std::io::Result<PagePrinter<'a>> {
        let mut p = PagePrinter { out, wrote_field: false, wrote_kv: false, opened_kvs: has_kvs };
        match p.out.format {
            OutputFormat::Json => {
                let mut text = String::from("{");
                if let Some(h) = header {
                    text.push_str("\"header\":");
                    json::write(&model::header(h), &mut text);
                    p.wrote_field = true;
                }
                if has_kvs {
                    text.push_str(if p.wrote_field { ",\"kvs\":[" } else { "\"kvs\":[" });
                    p.wrote_field = true;
                }
                p.out.raw(text.as_bytes())?;
            }
            OutputFormat::Yaml => {
                if let Some(h) = header {
                    p.lines(yaml::entry_lines("header", &model::header(h)))?;
                    p.wrote_field = true;
                }
                if has_kvs {
                    p.out.line("kvs:")?;
                    p.wrote_field = true;
                }
            }
            _ => {}
        }
        Ok(p)
    }

    fn kvs(&mut self, kvs: &[KeyValue], value_only: bool) -> std::io::Result<()> {
        for kv in kvs {
            match self.out.format {
                OutputFormat::Simple => self.out.kv(kv, value_only)?,
                OutputFormat::Json => {
                    let mut text = String::from(if self.wrote_kv { "," } else { "" });
                    json::write(&model::kv(kv), &mut text);
                    self.out.raw(text.as_bytes())?;
                }
                _ => self.lines(yaml::item_lines(&model::kv(kv)))?,
            }
            self.wrote_kv = true;
        }
        self.out.flush()
    }

    fn finish(mut self, count: i64) -> anyhow::Result<()> {
        match self.out.format {
            OutputFormat::Json => {
                let mut text = String::from(if self.opened_kvs { "]" } else { "" });
                if count != 0 {
                    text.push_str(if self.wrote_field { ",\"count\":" } else { "\"count\":" });
                    text.push_str(&count.to_string());
                }
                text.push('}');
                self.out.line(&text)?;
            }
            OutputFormat::Yaml => {
                if count != 0 {
                    self.lines(yaml::entry_lines("count", &Doc::Int(count)))?;
                } else if !self.wrote_field {
                    self.out.line("{}")?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn lines(&mut self, lines: Vec<String>) -> std::io::Result<()> {
        lines.iter().try_for_each(|l| self.out.line(l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::get::{GetArgs, range_request};

    fn request(args: &str) -> RangeRequest {
        let mut get = GetArgs { consistency: "l".into(), ..Default::default() };
        let mut words = args.split(' ');
        get.key = words.next().map(str::to_string);
        for flag in words {
            match flag.split_once('=') {
                Some(("--limit", n)) => get.limit = n.parse().expect("a number"),
                Some(("--sort-by", t)) => get.sort_by = t.into(),
                Some(("--order", o)) => get.order = o.into(),
                _ if flag == "--prefix" => get.prefix = true,
                _ if flag == "--count-only" => get.count_only = true,
                _ => get.range_end = Some(flag.to_string()),
            }
        }
        range_request(&get).expect("valid flags")
    }

    #[test]
    fn ranges_in_key_order_without_limit_are_read_in_pages() {
        assert!(is_pageable(&request("/p/ --prefix")));
        assert!(is_pageable(&request("a z")));
        assert!(is_pageable(&request("/p/ --prefix --sort-by=KEY --order=ASCEND")));
        assert!(!is_pageable(&request("/p/")), "one key");
        assert!(!is_pageable(&request("/p/ --prefix --limit=10")));
        assert!(!is_pageable(&request("/p/ --prefix --count-only")));
        assert!(!is_pageable(&request("/p/ --prefix --order=DESCEND")));
        assert!(!is_pageable(&request("/p/ --prefix --sort-by=MODIFY")));
    }
}
