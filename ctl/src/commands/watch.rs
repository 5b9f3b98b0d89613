//! `watch KEY [RANGE_END]`: prints events as etcdctl does until
//! interrupted. A broken stream (or a watch its member dropped) is resumed,
//! on any endpoint, after the last revision seen; the command ends quietly
//! when stdout's reader goes away.

use std::time::Duration;

use capstan_proto::etcdserverpb::watch_request::RequestUnion;
use capstan_proto::etcdserverpb::{WatchCreateRequest, WatchRequest, WatchResponse};
use capstan_proto::mvccpb::event::EventType;
use clap::Args;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::key_range::{self, KeyRange};
use crate::args::{GlobalArgs, OutputFormat};
use crate::connect::{self, Conn};
use crate::error::{bad_args, exit, fail};
use crate::output::{Output, model, refuse_table};

#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// The key, or the prefix with --prefix.
    pub key: Option<String>,
    /// The end of the range [key, range_end).
    pub range_end: Option<String>,
    /// Watch a prefix.
    #[arg(long)]
    pub prefix: bool,
    /// The revision to start watching from (0: new events only).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Get the previous key-value pair before the event happens.
    #[arg(long)]
    pub prev_kv: bool,
}

/// Why one watch stream stopped.
enum StreamEnd {
    /// The server cancelled the watch: the command ends.
    Canceled,
    /// The connection broke: resume elsewhere.
    Broken,
}

pub async fn run(global: &GlobalArgs, args: WatchArgs) -> anyhow::Result<()> {
    let Some(key) = &args.key else { return Err(bad_args("bad number of arguments")) };
    if args.range_end.is_some() && args.prefix {
        return Err(bad_args("`range_end` and `--prefix` are mutually exclusive"));
    }
    refuse_table(global.write_out)?;
    let range = key_range::resolve(key.as_bytes(), args.range_end.as_deref().map(str::as_bytes), args.prefix, false);
    let mut conn = connect::connect(global).await?;
    let mut out = Output::new(global.write_out, global.hex);
    let mut watcher = Watcher { range, prev_kv: args.prev_kv, next_revision: args.rev.max(0) };
    tokio::select! {
        result = async {
            loop {
                match watcher.follow(&conn, &mut out).await? {
                    StreamEnd::Canceled => return Err(fail(exit::INTERRUPTED, "watch is canceled by the server")),
                    StreamEnd::Broken => conn = reconnect(global).await,
                }
            }
        } => result,
        () = stdout_closed() => Ok(()),
    }
}

struct Watcher {
    range: KeyRange,
    prev_kv: bool,
    /// Where a new stream starts: the requested revision, then one past the
    /// last revision seen.
    next_revision: i64,
}

impl Watcher {
    async fn follow(&mut self, conn: &Conn, out: &mut Output) -> anyhow::Result<StreamEnd> {
        let create = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                key: self.range.key.clone().into(),
                range_end: self.range.range_end.clone().into(),
                start_revision: self.next_revision,
                prev_kv: self.prev_kv,
                ..Default::default()
            })),
        };
        // The request stream stays open (the sender lives) for as long as we watch.
        let (requests, receiver) = mpsc::channel(1);
        requests.send(create).await?;
        let mut stream = match conn.watch().watch(ReceiverStream::new(receiver)).await {
            Ok(response) => response.into_inner(),
            Err(_) => return Ok(StreamEnd::Broken),
        };
        loop {
            let response = match stream.message().await {
                Ok(Some(response)) => response,
                Ok(None) | Err(_) => return Ok(StreamEnd::Broken),
            };
            if response.created && !response.canceled {
                if self.next_revision == 0 {
                    self.next_revision = response.header.as_ref().map_or(0, |h| h.revision) + 1;
                }
                continue;
            }
            if response.canceled && response.compact_revision == 0 && response.cancel_reason.is_empty() {
                // A member drops its watchers this way when it shuts down:
                // resume elsewhere (etcdctl would end here).
                return Ok(StreamEnd::Broken);
            }
            if response.canceled {
                eprintln!("watch was canceled ({})", cancel_reason(&response));
                if out.format != OutputFormat::Simple {
                    out.stream_doc(&model::watch(&response))?;
                }
                return Ok(StreamEnd::Canceled);
            }
            if let Some(last) = response.events.last().and_then(|e| e.kv.as_ref()) {
                self.next_revision = self.next_revision.max(last.mod_revision + 1);
            }
            print(out, &response)?;
        }
    }
}

/// Prints one response: etcdctl's event lines, or the response document.
fn print(out: &mut Output, response: &WatchResponse) -> std::io::Result<()> {
    let revision = response.header.as_ref().map_or(0, |h| h.revision);
    if response.events.is_empty() && response.compact_revision == 0 && revision != 0 {
        out.line(&format!("progress notify: {revision}"))?;
    }
    if out.format != OutputFormat::Simple {
        return out.stream_doc(&model::watch(response));
    }
    for event in &response.events {
        let kind = EventType::try_from(event.r#type)
            .map_or_else(|_| event.r#type.to_string(), |t| t.as_str_name().to_string());
        out.line(&kind)?;
        if let Some(prev) = &event.prev_kv {
            out.kv(prev, false)?;
        }
        if let Some(kv) = &event.kv {
            out.kv(kv, false)?;
        }
    }
    out.flush()
}

/// The error text clientv3 gives a cancelled watch.
fn cancel_reason(response: &WatchResponse) -> String {
    if response.compact_revision != 0 {
        "etcdserver: mvcc: required revision has been compacted".to_string()
    } else {
        response.cancel_reason.clone()
    }
}

/// Connects again, to any endpoint, however long that takes.
async fn reconnect(global: &GlobalArgs) -> Conn {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Ok(conn) = connect::connect(global).await {
            return conn;
        }
    }
}

/// Completes when stdout is a pipe whose reader has gone (`ctl watch … |
/// head -1`), so an idle watch does not linger; never for a file or terminal.
async fn stdout_closed() {
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;
    // Deprecated because the descriptor could be closed while registered;
    // stdout stays open for the life of the process, so this use is sound
    // (the replacement needs `unsafe`, which the workspace forbids).
    #[allow(deprecated)]
    let registered = AsyncFd::with_interest(std::io::stdout(), Interest::ERROR);
    match registered {
        Ok(fd) => {
            let _ = fd.ready(Interest::ERROR).await;
        }
        Err(_) => std::future::pending().await,
    }
}
