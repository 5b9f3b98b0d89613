//! TLS for client and peer traffic, configured with etcd's flags.
//!
//! `load` reads the PEM files once at start and turns them into rustls
//! configurations, refusing any misconfiguration with one line that names the
//! flag and the file. `accept` terminates TLS on a listener, one handshake
//! task per connection, so that tonic (and, on client URLs, the
//! `:authority` shim) only ever see plaintext. `verify` checks a certificate
//! against a CA the way a member will (used by `capstan certs create`).
//!
//! Only rustls with the ring provider is used.

mod accept;
mod load;
#[cfg(test)]
mod tests;
mod verify;

pub use accept::{Acceptor, incoming, incoming_handed};
pub use load::{MemberTls, TlsError};
pub use tokio_rustls::rustls::pki_types::CertificateDer;
pub use verify::{cert_from_pem, verify_issued};

use std::sync::Arc;

use tokio_rustls::rustls::crypto::{CryptoProvider, ring};

/// The one crypto provider, named explicitly so that no process-wide
/// default has to be installed.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// The flag names of one kind of traffic, for error and refusal messages.
#[derive(Debug)]
struct Flags {
    traffic: &'static str,
    cert: &'static str,
    key: &'static str,
    trusted_ca: &'static str,
    client_cert_auth: &'static str,
}

const CLIENT_FLAGS: Flags = Flags {
    traffic: "client",
    cert: "--cert-file",
    key: "--key-file",
    trusted_ca: "--trusted-ca-file",
    client_cert_auth: "--client-cert-auth",
};

const PEER_FLAGS: Flags = Flags {
    traffic: "peer",
    cert: "--peer-cert-file",
    key: "--peer-key-file",
    trusted_ca: "--peer-trusted-ca-file",
    client_cert_auth: "--peer-client-cert-auth",
};
