//! Failures with etcdctl's exit codes, and how they are reported: one
//! `Error: …` line on stderr.

use std::fmt;

/// etcdctl's exit codes (etcdctl/ctlv3/command/error.go).
pub mod exit {
    pub const ERROR: u8 = 1;
    pub const BAD_CONNECTION: u8 = 2;
    pub const INVALID_INPUT: u8 = 3;
    pub const BAD_FEATURE: u8 = 4;
    pub const INTERRUPTED: u8 = 5;
    pub const BAD_ARGS: u8 = 128;
}

/// An error that knows its exit code. Anything else that reaches the top is
/// reported with exit code 1.
#[derive(Debug)]
pub struct CtlError {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CtlError {}

/// An error with an exit code, as an `anyhow::Error`.
pub fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CtlError { code, message: message.into() })
}

/// Bad arguments (exit 128), as etcdctl.
pub fn bad_args(message: impl Into<String>) -> anyhow::Error {
    fail(exit::BAD_ARGS, message)
}

/// A failure already explained on stderr: only the exit code is left.
pub fn silent(code: u8) -> anyhow::Error {
    fail(code, "")
}

/// The exit code for an error: its own if it has one, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    err.chain().find_map(|e| e.downcast_ref::<CtlError>()).map_or(exit::ERROR, |e| e.code)
}

/// True when the error is a write to a closed stdout (`ctl … | head`): the
/// reader is gone, so the command ends quietly.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain()
        .any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// Prints a failure as etcdctl does (`Error: …` on stderr) and returns the
/// process exit status.
pub fn report(result: anyhow::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => {
            if !e.to_string().is_empty() {
                eprintln!("Error: {e:#}");
            }
            exit_code(&e)
        }
    }
}
