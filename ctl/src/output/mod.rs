//! Everything printed on stdout: etcdctl's simple text, its JSON and tables,
//! and YAML. `table` and `go_fmt` are public for other commands of the
//! binary that print as etcdctl does (snapshot status).

mod base64;
pub mod doc;
pub mod go_fmt;
pub mod json;
mod json_value;
pub(crate) mod model;
pub mod table;
pub mod yaml;

use std::io::{self, BufWriter, Stdout, Write};

use capstan_proto::mvccpb::KeyValue;

use crate::args::OutputFormat;
use crate::error::{exit, fail};
use doc::Doc;

/// Buffered stdout with the chosen format.
pub(crate) struct Output {
    pub format: OutputFormat,
    hex: bool,
    out: BufWriter<Stdout>,
}

impl Output {
    pub fn new(format: OutputFormat, hex: bool) -> Output {
        Output { format, hex, out: BufWriter::new(io::stdout()) }
    }

    /// A response document in the JSON or YAML format.
    pub fn doc(&mut self, doc: &Doc) -> io::Result<()> {
        match self.format {
            OutputFormat::Yaml => self.out.write_all(yaml::to_string(doc).as_bytes()),
            _ => writeln!(self.out, "{}", json::to_string(doc)),
        }
    }

    /// One response of a stream (watch, keep-alive): a JSON line, or a YAML
    /// document that starts with `---`.
    pub fn stream_doc(&mut self, doc: &Doc) -> io::Result<()> {
        if self.format == OutputFormat::Yaml {
            self.out.write_all(b"---\n")?;
        }
        self.doc(doc)?;
        self.flush()
    }

    pub fn line(&mut self, text: &str) -> io::Result<()> {
        writeln!(self.out, "{text}")
    }

    pub fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    /// etcdctl's `printKV`: the key line (unless values only), then the
    /// value line, raw bytes or `\xNN` with `--hex`.
    pub fn kv(&mut self, kv: &KeyValue, value_only: bool) -> io::Result<()> {
        let show = |bytes: &[u8]| if self.hex { go_fmt::hex_escaped(bytes) } else { bytes.to_vec() };
        let (key, value) = (show(&kv.key), show(&kv.value));
        if !value_only {
            self.out.write_all(&key)?;
            self.out.write_all(b"\n")?;
        }
        self.out.write_all(&value)?;
        self.out.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// etcdctl 3.4 draws tables only for member list and the endpoint commands;
/// elsewhere `-w table` is refused (before anything is sent).
pub(crate) fn refuse_table(format: OutputFormat) -> anyhow::Result<()> {
    if format == OutputFormat::Table {
        return Err(fail(exit::BAD_FEATURE, "table not supported as output format"));
    }
    Ok(())
}
