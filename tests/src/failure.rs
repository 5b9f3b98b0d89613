//! Remembers why a test thread panicked, so that a cluster printing its
//! members' logs on the way down can repeat the failure after them: CI
//! shows the end of a failing run's output, and sixty lines of logs per
//! member would otherwise push the panic message out of it.

use std::cell::RefCell;
use std::sync::Once;

thread_local! {
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that records each panic's
/// message on its thread, then reports it as the default hook does.
pub fn remember_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            MESSAGE.with(|m| *m.borrow_mut() = Some(info.to_string()));
            report(info);
        }));
    });
}

/// The message of this thread's latest panic, if one was recorded.
pub fn message() -> Option<String> {
    MESSAGE.with(|m| m.borrow().clone())
}

/// Prints this thread's panic message again, under a marker line.
pub fn repeat() {
    if let Some(m) = message() {
        eprintln!("--- the failure (repeated after the logs above)\n{m}");
    }
}
