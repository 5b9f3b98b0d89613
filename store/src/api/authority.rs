//! Accepts an HTTP/2 `:authority` that carries a URL scheme.
//!
//! grpc-go clients that dial `http://host:port` through the passthrough
//! resolver (etcdctl 3.4 with `--cluster` does) send
//! `:authority: http://host:port` on every request. h2 resets such streams as
//! malformed, while etcd's own grpc-go server accepts them. [`AuthorityFix`]
//! sits between the socket and the HTTP/2 server and strips the scheme from
//! those values before h2 sees them.
//!
//! Rewriting a header means re-encoding the header block, and HPACK state is
//! per connection: once one block has been re-encoded, every later block on the
//! connection goes through the same decoder and encoder, so the server's
//! decoder tracks our encoder rather than the client's. Our encoder never
//! indexes, so the server's dynamic table stays empty whatever table size it
//! advertised. A connection whose first header block needs no rewrite is left
//! alone from then on, so well-behaved clients pay nothing after the first
//! request.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use loona_hpack::Decoder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const FRAME_HEADER_LEN: usize = 9;
/// The default SETTINGS_MAX_FRAME_SIZE, which every peer must accept.
const MAX_FRAME: usize = 16_384;
/// A header block larger than this is not rewritten: it is either abusive or
/// far beyond what h2 accepts anyway, so the server may judge it unchanged.
const MAX_BLOCK: usize = 1 << 20;
const READ_CHUNK: usize = 8192;

const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// Wraps an accepted client connection. For HTTP/2 connections, rewrites any
/// `:authority` pseudo-header whose value contains "://" by stripping the
/// scheme (e.g. "http://127.0.0.1:22379" -> "127.0.0.1:22379"). HTTP/1
/// connections and all other bytes pass through untouched.
pub struct AuthorityFix<S> {
    inner: S,
    mode: Mode,
    /// Bytes read from `inner` and not yet examined.
    inbuf: BytesMut,
    /// Bytes examined (and perhaps rewritten), ready for the reader.
    out: BytesMut,
    /// Payload bytes of a forwarded non-header frame still to come.
    skip: usize,
    /// A header block waiting for its CONTINUATION frames.
    block: Option<Block>,
    /// Whether some block has been re-encoded; then every later one must be.
    rewriting: bool,
    /// The client's HPACK state, kept for the whole connection.
    decoder: Decoder<'static>,
    eof: bool,
}

enum Mode {
    /// Still deciding whether the connection starts with the HTTP/2 preface.
    Preface,
    /// Inside HTTP/2 frames.
    Frames,
    /// Everything from here on is forwarded as is.
    Passthrough,
}

/// One header block as it arrives: a HEADERS frame plus CONTINUATION frames.
struct Block {
    /// The stream identifier word, reserved bit included, as sent.
    stream: [u8; 4],
    /// END_STREAM and PRIORITY from the HEADERS frame.
    flags: u8,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The original frames, forwarded unchanged if we do not rewrite.
    raw: Vec<u8>,
}

/// Wraps `inner` so that `:authority` values carrying a scheme are accepted.
pub fn new<S>(inner: S) -> AuthorityFix<S> {
    AuthorityFix {
        inner,
        mode: Mode::Preface,
        inbuf: BytesMut::new(),
        out: BytesMut::new(),
        skip: 0,
        block: None,
        rewriting: false,
        decoder: Decoder::new(),
        eof: false,
    }
}

impl<S> AuthorityFix<S> {
    /// Moves as much of `inbuf` to `out` as can be decided on now.
    fn process(&mut self) {
        loop {
            match self.mode {
                Mode::Passthrough => {
                    let rest = self.inbuf.split();
                    self.out.extend_from_slice(&rest);
                    return;
                }
                Mode::Preface => {
                    let n = self.inbuf.len().min(PREFACE.len());
                    if self.inbuf[..n] != PREFACE[..n] {
                        self.mode = Mode::Passthrough;
                        continue;
                    }
                    if n < PREFACE.len() {
                        return;
                    }
                    let preface = self.inbuf.split_to(n);
                    self.out.extend_from_slice(&preface);
                    self.mode = Mode::Frames;
                }
                Mode::Frames => {
                    if !self.step() {
                        return;
                    }
                }
            }
        }
    }

    /// Handles the next frame or piece of one; false if more input is needed.
    fn step(&mut self) -> bool {
        if self.skip > 0 {
            if self.inbuf.is_empty() {
                return false;
            }
            let n = self.skip.min(self.inbuf.len());
            let chunk = self.inbuf.split_to(n);
            self.out.extend_from_slice(&chunk);
            self.skip -= n;
            return true;
        }
        if self.inbuf.len() < FRAME_HEADER_LEN {
            return false;
        }
        let len = usize::from(self.inbuf[0]) << 16 | usize::from(self.inbuf[1]) << 8 | usize::from(self.inbuf[2]);
        let kind = self.inbuf[3];
        if kind != HEADERS && kind != CONTINUATION {
            if self.block.is_some() {
                // A frame inside a header block is the client's protocol
                // error: let the server see it as sent.
                self.pass_rest(&[]);
                return true;
            }
            let header = self.inbuf.split_to(FRAME_HEADER_LEN);
            self.out.extend_from_slice(&header);
            self.skip = len;
            return true;
        }
        if self.inbuf.len() < FRAME_HEADER_LEN + len {
            return false;
        }
        let frame = self.inbuf.split_to(FRAME_HEADER_LEN + len);
        self.header_frame(&frame);
        true
    }

    /// Adds a HEADERS or CONTINUATION frame to the current header block.
    fn header_frame(&mut self, frame: &[u8]) {
        let (header, payload) = frame.split_at(FRAME_HEADER_LEN);
        let (kind, flags) = (header[3], header[4]);
        let stream = [header[5], header[6], header[7], header[8]];
        let mut block = match (kind, self.block.take()) {
            (HEADERS, None) => match start_block(flags, stream, payload) {
                Some(block) => block,
                None => return self.pass_rest(frame),
            },
            (CONTINUATION, Some(mut block)) if block.stream == stream => {
                block.fragment.extend_from_slice(payload);
                block
            }
            (_, pending) => {
                self.block = pending;
                return self.pass_rest(frame);
            }
        };
        block.raw.extend_from_slice(frame);
        if block.raw.len() > MAX_BLOCK {
            self.block = Some(block);
            return self.pass_rest(&[]);
        }
        if flags & END_HEADERS == 0 {
            self.block = Some(block);
            return;
        }
        self.finish_block(block);
    }

    /// Decodes a complete header block and forwards it, rewritten if needed.
    fn finish_block(&mut self, block: Block) {
        let Ok(headers) = self.decoder.decode(&block.fragment) else {
            self.block = Some(block);
            return self.pass_rest(&[]);
        };
        let needs_fix = headers.iter().any(|(name, value)| name == b":authority" && strip_scheme(value).is_some());
        if !needs_fix && !self.rewriting {
            // The server's decoder still matches the client's encoder, so
            // nothing on this connection needs our help.
            self.block = Some(block);
            return self.pass_rest(&[]);
        }
        self.rewriting = true;

        // Dynamic table size updates must reach the server's decoder too, or
        // it may insist on one; they are harmless as we never index.
        let updates = size_update_len(&block.fragment);
        let mut encoded = Vec::with_capacity(block.fragment.len() + 64);
        encoded.extend_from_slice(&block.fragment[..updates]);
        for (name, value) in &headers {
            let value = match strip_scheme(value) {
                Some(host) if name == b":authority" => host,
                _ => value,
            };
            // Literal header field without indexing, with a literal name.
            encoded.push(0);
            put_string(&mut encoded, name);
            put_string(&mut encoded, value);
        }
        self.put_block(&block, &encoded);
    }

    /// Emits an encoded header block as HEADERS plus CONTINUATION frames.
    fn put_block(&mut self, block: &Block, encoded: &[u8]) {
        let priority: &[u8] = block.priority.as_ref().map_or(&[], |p| p);
        let (first, mut rest) = encoded.split_at(encoded.len().min(MAX_FRAME - priority.len()));
        let mut flags = block.flags;
        if rest.is_empty() {
            flags |= END_HEADERS;
        }
        self.put_frame(HEADERS, flags, block.stream, &[priority, first]);
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME));
            rest = tail;
            let flags = if rest.is_empty() { END_HEADERS } else { 0 };
            self.put_frame(CONTINUATION, flags, block.stream, &[chunk]);
        }
    }

    fn put_frame(&mut self, kind: u8, flags: u8, stream: [u8; 4], parts: &[&[u8]]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        // `len` is at most MAX_FRAME, so it fits the 24-bit length field.
        self.out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        self.out.extend_from_slice(&[kind, flags]);
        self.out.extend_from_slice(&stream);
        for part in parts {
            self.out.extend_from_slice(part);
        }
    }

    /// Stops rewriting: forwards any pending block, then `frame`, then
    /// everything else unchanged.
    fn pass_rest(&mut self, frame: &[u8]) {
        if let Some(block) = self.block.take() {
            self.out.extend_from_slice(&block.raw);
        }
        self.out.extend_from_slice(frame);
        self.mode = Mode::Passthrough;
    }
}

/// Parses a HEADERS frame's payload; None if its padding or priority fields
/// do not fit.
fn start_block(flags: u8, stream: [u8; 4], payload: &[u8]) -> Option<Block> {
    let mut rest = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        let (&len, tail) = rest.split_first()?;
        pad = usize::from(len);
        rest = tail;
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        let fields = rest.get(..5)?;
        priority = Some([fields[0], fields[1], fields[2], fields[3], fields[4]]);
        rest = &rest[5..];
    }
    let fragment = rest.get(..rest.len().checked_sub(pad)?)?;
    Some(Block {
        stream,
        flags: flags & (END_STREAM | PRIORITY),
        priority,
        fragment: fragment.to_vec(),
        raw: Vec::new(),
    })
}

/// The part of an `:authority` value after "://", if it has a scheme.
fn strip_scheme(value: &[u8]) -> Option<&[u8]> {
    let at = value.windows(3).position(|w| w == b"://")?;
    Some(&value[at + 3..])
}

/// Length of the dynamic table size updates that open an HPACK block.
fn size_update_len(block: &[u8]) -> usize {
    let mut at = 0;
    while let Some(&first) = block.get(at) {
        if first & 0xe0 != 0x20 {
            break;
        }
        at += 1;
        // A full 5-bit prefix means continuation octets follow.
        if first & 0x1f == 0x1f {
            while let Some(&next) = block.get(at) {
                at += 1;
                if next & 0x80 == 0 {
                    break;
                }
            }
        }
    }
    at
}

/// Appends an HPACK string literal without Huffman coding.
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_integer(out, s.len(), 7);
    out.extend_from_slice(s);
}

/// Appends an HPACK integer with an N-bit prefix and no flag bits.
fn put_integer(out: &mut Vec<u8>, value: usize, prefix_bits: u8) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(value as u8);
        return;
    }
    out.push(max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for AuthorityFix<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.out.is_empty() {
                let n = this.out.len().min(buf.remaining());
                buf.put_slice(&this.out.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if matches!(this.mode, Mode::Passthrough) {
                // Nothing left to examine: read straight into the caller's buffer.
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let old = this.inbuf.len();
            this.inbuf.resize(old + READ_CHUNK, 0);
            let mut read = ReadBuf::new(&mut this.inbuf[old..]);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut read);
            let n = read.filled().len();
            this.inbuf.truncate(old + n);
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if n == 0 => {
                    // The client is gone: hand over whatever was held back.
                    this.eof = true;
                    this.pass_rest(&[]);
                    this.process();
                }
                Poll::Ready(Ok(())) => this.process(),
            }
        }
    }
}

/// Reports no vectored writes, whatever the socket can do: h2 then copies
/// DATA frames under 1 KiB into its write buffer, where it otherwise keeps
/// each frame over 256 bytes as a separate slice and flushes before taking
/// the next. Watch events and small replies to the streams of one connection
/// thus leave in one `send`, not one each.
impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for AuthorityFix<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for AuthorityFix<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loona_hpack::Encoder;
    use tokio::io::AsyncReadExt;

    /// Serves `data` in pieces of `step` bytes, returning Pending before each
    /// piece to exercise the wrapper's partial-read handling.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        step: usize,
        ready: bool,
    }

    impl AsyncRead for Trickle {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            if !self.ready {
                self.ready = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            self.ready = false;
            let end = (self.pos + self.step).min(self.data.len()).min(self.pos + buf.remaining());
            buf.put_slice(&self.data[self.pos..end]);
            self.pos = end;
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    async fn run(data: &[u8], step: usize) -> Vec<u8> {
        let reader = Trickle { data: data.to_vec(), pos: 0, step, ready: false };
        let mut out = Vec::new();
        new(reader).read_to_end(&mut out).await.expect("test reader never fails");
        out
    }

    /// Runs `data` through whole and one byte at a time; both must agree.
    async fn run_both(data: &[u8]) -> Vec<u8> {
        let whole = run(data, usize::MAX / 2).await;
        assert_eq!(run(data, 1).await, whole);
        whole
    }

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend_from_slice(&[kind, flags]);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    type Headers = Vec<(Vec<u8>, Vec<u8>)>;

    fn request(authority: &str, path: &str) -> Headers {
        [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", path),
            (":authority", authority),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ]
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
    }

    fn encode(encoder: &mut Encoder<'static>, headers: &Headers) -> Vec<u8> {
        encoder.encode(headers.iter().map(|(n, v)| (&n[..], &v[..])))
    }

    /// A header block as seen in the output.
    #[derive(Debug, PartialEq)]
    struct OutBlock {
        stream: u32,
        flags: u8,
        priority: Option<Vec<u8>>,
        headers: Headers,
    }

    /// Splits the wrapper's HTTP/2 output into other frames (kept raw) and
    /// header blocks decoded by one fresh decoder, checking frame framing.
    fn parse(out: &[u8]) -> (Vec<Vec<u8>>, Vec<OutBlock>) {
        assert_eq!(&out[..PREFACE.len()], PREFACE);
        let mut rest = &out[PREFACE.len()..];
        let mut decoder = Decoder::new();
        let (mut others, mut blocks) = (Vec::new(), Vec::new());
        let mut pending: Option<(OutBlock, Vec<u8>)> = None;
        while !rest.is_empty() {
            let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
            let (kind, flags) = (rest[3], rest[4]);
            let stream = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]);
            let payload = &rest[9..9 + len];
            assert!(len <= MAX_FRAME);
            let fragment = match kind {
                HEADERS => {
                    assert!(pending.is_none());
                    assert_eq!(flags & PADDED, 0);
                    let has_priority = flags & PRIORITY != 0;
                    let block = OutBlock {
                        stream,
                        flags: flags & (END_STREAM | PRIORITY),
                        priority: has_priority.then(|| payload[..5].to_vec()),
                        headers: Vec::new(),
                    };
                    let skip = if has_priority { 5 } else { 0 };
                    pending = Some((block, Vec::new()));
                    &payload[skip..]
                }
                CONTINUATION => payload,
                _ => {
                    assert!(pending.is_none());
                    others.push(rest[..9 + len].to_vec());
                    rest = &rest[9 + len..];
                    continue;
                }
            };
            let (block, buf) = pending.as_mut().expect("CONTINUATION without HEADERS");
            assert_eq!(block.stream, stream);
            buf.extend_from_slice(fragment);
            if flags & END_HEADERS != 0 {
                let (mut block, buf) = pending.take().expect("block in progress");
                block.headers = decoder.decode(&buf).expect("output decodes");
                blocks.push(block);
            }
            rest = &rest[9 + len..];
        }
        assert!(pending.is_none());
        (others, blocks)
    }

    fn settings() -> Vec<u8> {
        frame(0x4, 0, 0, &[0, 3, 0, 0, 0, 100])
    }

    #[tokio::test]
    async fn http1_passes_through() {
        let get = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:2379\r\n\r\n".to_vec();
        assert_eq!(run_both(&get).await, get);
        // Shares a prefix with the preface, then differs.
        let pri = b"PRI * HTTP/1.1\r\n\r\n".to_vec();
        assert_eq!(run_both(&pri).await, pri);
        // A connection that ends inside the preface is forwarded as is.
        assert_eq!(run_both(&PREFACE[..10]).await, &PREFACE[..10]);
        assert_eq!(run_both(b"").await, b"");
    }

    #[tokio::test]
    async fn strips_scheme_from_authority() {
        let mut encoder = Encoder::new();
        let headers = request("http://127.0.0.1:2379", "/etcdserverpb.KV/Range");
        let data = frame(0x0, END_STREAM, 1, b"\0\0\0\0\x02ab");
        let mut input = PREFACE.to_vec();
        input.extend(settings());
        input.extend(frame(HEADERS, END_HEADERS, 1, &encode(&mut encoder, &headers)));
        input.extend(&data);

        let (others, blocks) = parse(&run_both(&input).await);
        assert_eq!(others, vec![settings(), data]);
        assert_eq!(
            blocks,
            vec![OutBlock {
                stream: 1,
                flags: 0,
                priority: None,
                headers: request("127.0.0.1:2379", "/etcdserverpb.KV/Range"),
            }]
        );
    }

    #[tokio::test]
    async fn continuation_padding_and_priority() {
        let mut encoder = Encoder::new();
        let headers = request("https://m1:2379", "/etcdserverpb.Maintenance/Status");
        let block = encode(&mut encoder, &headers);
        let (a, b) = block.split_at(20);
        let (b, c) = b.split_at(15);
        let priority = [0x80, 0, 0, 0, 7];
        let mut first = vec![3];
        first.extend_from_slice(&priority);
        first.extend_from_slice(a);
        first.extend_from_slice(b"pad");

        let mut input = PREFACE.to_vec();
        input.extend(settings());
        input.extend(frame(HEADERS, END_STREAM | PADDED | PRIORITY, 3, &first));
        input.extend(frame(CONTINUATION, 0, 3, b));
        input.extend(frame(CONTINUATION, END_HEADERS, 3, c));
        input.extend(frame(0x8, 0, 0, &[0, 0, 1, 0]));

        let (others, blocks) = parse(&run_both(&input).await);
        assert_eq!(others, vec![settings(), frame(0x8, 0, 0, &[0, 0, 1, 0])]);
        assert_eq!(
            blocks,
            vec![OutBlock {
                stream: 3,
                flags: END_STREAM | PRIORITY,
                priority: Some(priority.to_vec()),
                headers: request("m1:2379", "/etcdserverpb.Maintenance/Status"),
            }]
        );
    }

    #[tokio::test]
    async fn dynamic_table_across_blocks() {
        let mut encoder = Encoder::new();
        let first = request("http://127.0.0.1:2379", "/etcdserverpb.KV/Range");
        let second = request("http://127.0.0.1:2379", "/etcdserverpb.KV/Put");
        let first_block = encode(&mut encoder, &first);
        let second_block = encode(&mut encoder, &second);
        // The second block leans on the client's dynamic table (`te` was
        // indexed by the first).
        assert!(second_block.contains(&(0x80 | 62)));

        let mut input = PREFACE.to_vec();
        input.extend(settings());
        input.extend(frame(HEADERS, END_HEADERS, 1, &first_block));
        input.extend(frame(HEADERS, END_HEADERS, 3, &second_block));
        // Later blocks are re-encoded even when they need no fix.
        let third = request("127.0.0.1:2379", "/x");
        input.extend(frame(HEADERS, END_HEADERS, 5, &encode(&mut encoder, &third)));

        let (_, blocks) = parse(&run_both(&input).await);
        let got: Vec<_> = blocks.into_iter().map(|b| b.headers).collect();
        assert_eq!(
            got,
            vec![
                request("127.0.0.1:2379", "/etcdserverpb.KV/Range"),
                request("127.0.0.1:2379", "/etcdserverpb.KV/Put"),
                third,
            ]
        );
    }

    #[tokio::test]
    async fn huffman_and_size_update() {
        // Dynamic table size update to 256, then `:authority` with a literal
        // value, then `x-h` with the Huffman-coded "www.example.com" from
        // RFC 7541 C.4.1.
        let mut block = vec![0x3f, 0xe1, 0x01, 0x01, 15];
        block.extend_from_slice(b"http://a.b:2379");
        block.extend_from_slice(&[0x00, 3]);
        block.extend_from_slice(b"x-h");
        block.extend_from_slice(&[0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff]);
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &block));

        let out = run_both(&input).await;
        let (_, blocks) = parse(&out);
        assert_eq!(
            blocks[0].headers,
            vec![(b":authority".to_vec(), b"a.b:2379".to_vec()), (b"x-h".to_vec(), b"www.example.com".to_vec()),]
        );
        // The size update is forwarded first.
        assert_eq!(&out[PREFACE.len() + 9..][..3], &[0x3f, 0xe1, 0x01]);
    }

    #[tokio::test]
    async fn large_block_is_split() {
        let mut encoder = Encoder::new();
        let mut headers = request("http://127.0.0.1:2379", "/p");
        headers.push((b"x-big".to_vec(), vec![b'v'; 40_000]));
        let mut input = PREFACE.to_vec();
        input.extend(frame(
            HEADERS,
            END_HEADERS | PRIORITY,
            1,
            &[&[0, 0, 0, 0, 1][..], &encode(&mut encoder, &headers)].concat(),
        ));

        let out = run(&input, 1000).await;
        let (_, blocks) = parse(&out);
        let mut want = request("127.0.0.1:2379", "/p");
        want.push((b"x-big".to_vec(), vec![b'v'; 40_000]));
        assert_eq!(blocks[0].headers, want);
        assert_eq!(blocks[0].priority, Some(vec![0, 0, 0, 0, 1]));
    }

    #[tokio::test]
    async fn clean_connection_is_untouched() {
        let mut encoder = Encoder::new();
        let mut input = PREFACE.to_vec();
        input.extend(settings());
        let first = encode(&mut encoder, &request("127.0.0.1:2379", "/a"));
        input.extend(frame(HEADERS, END_HEADERS, 1, &first));
        // Even a later bad authority is left to the server once the
        // connection has been handed over unchanged.
        let second = encode(&mut encoder, &request("http://127.0.0.1:2379", "/b"));
        input.extend(frame(HEADERS, END_HEADERS, 3, &second));
        assert_eq!(run_both(&input).await, input);
    }

    #[tokio::test]
    async fn bad_blocks_pass_through() {
        // Index 99 is not in any table.
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS, 1, &[0x80 | 99]));
        input.extend(frame(HEADERS, END_HEADERS, 3, &[0x82]));
        assert_eq!(run_both(&input).await, input);

        // Padding longer than the frame.
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, END_HEADERS | PADDED, 1, &[9, 0x82]));
        assert_eq!(run_both(&input).await, input);

        // A DATA frame inside a header block, and a stray CONTINUATION.
        let mut input = PREFACE.to_vec();
        input.extend(frame(HEADERS, 0, 1, &[0x82]));
        input.extend(frame(0x0, 0, 1, b"x"));
        assert_eq!(run_both(&input).await, input);
        let mut input = PREFACE.to_vec();
        input.extend(frame(CONTINUATION, END_HEADERS, 1, &[0x82]));
        assert_eq!(run_both(&input).await, input);

        // Cut off mid-frame.
        let mut input = PREFACE.to_vec();
        input.extend(&frame(HEADERS, END_HEADERS, 1, &[0x82, 0x84])[..10]);
        assert_eq!(run_both(&input).await, input);
    }

    #[test]
    fn integers_match_the_decoder() {
        for value in [0, 1, 126, 127, 128, 255, 16_383, 16_384, 1 << 20] {
            let mut block = vec![0];
            put_string(&mut block, b"n");
            put_string(&mut block, &vec![b'x'; value]);
            let headers = Decoder::new().decode(&block).expect("decodes");
            assert_eq!(headers[0].1.len(), value);
        }
    }

    #[test]
    fn serves_tonic() {
        fn io<T: AsyncRead + AsyncWrite + Connected + Send + Unpin + 'static>() {}
        io::<AuthorityFix<tokio::net::TcpStream>>();
    }
}
