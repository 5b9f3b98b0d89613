//! The join token, in k3s's format: `K10<sha256 of the CA>::server:<secret>`.
//! The hash pins the CA a joiner may trust before it has any credentials;
//! the secret authenticates the join.

use sha2::{Digest, Sha256};

const PREFIX: &str = "K10";
const USER: &str = "server";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Lowercase hex sha256 of the CA certificate file; None for a bare secret.
    pub ca_hash: Option<String>,
    pub secret: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoinTokenError {
    #[error("the token is empty")]
    Empty,
    #[error("the token is malformed: {0}")]
    Malformed(&'static str),
}

impl JoinToken {
    /// A full token (`K10<hash>::server:<secret>`) or a bare secret.
    pub fn parse(text: &str) -> Result<JoinToken, JoinTokenError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(JoinTokenError::Empty);
        }
        let Some(rest) = text.strip_prefix(PREFIX) else {
            if text.contains("::") {
                return Err(JoinTokenError::Malformed("a full token starts with K10"));
            }
            return Ok(JoinToken { ca_hash: None, secret: text.to_string() });
        };
        let (hash, credentials) = rest.split_once("::").ok_or(JoinTokenError::Malformed("no '::' after the hash"))?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(JoinTokenError::Malformed("the CA hash is not 64 hex digits"));
        }
        let (user, secret) =
            credentials.split_once(':').ok_or(JoinTokenError::Malformed("no 'server:' before the secret"))?;
        if user != USER {
            return Err(JoinTokenError::Malformed("the user part is not 'server'"));
        }
        if secret.is_empty() {
            return Err(JoinTokenError::Malformed("the secret is empty"));
        }
        Ok(JoinToken { ca_hash: Some(hash.to_ascii_lowercase()), secret: secret.to_string() })
    }

    /// The full token for a CA certificate (PEM file bytes).
    pub fn for_ca(ca_pem: &[u8], secret: &str) -> JoinToken {
        JoinToken { ca_hash: Some(ca_hash(ca_pem)), secret: secret.to_string() }
    }

    /// Whether `ca_pem` is the CA this token pins.
    pub fn ca_matches(&self, ca_pem: &[u8]) -> bool {
        self.ca_hash.as_deref() == Some(ca_hash(ca_pem).as_str())
    }

    /// A fresh random secret: 32 hex digits.
    pub fn random_secret() -> String {
        format!("{:032x}", rand::random::<u128>())
    }
}

impl std::fmt::Display for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ca_hash {
            Some(hash) => write!(f, "{PREFIX}{hash}::{USER}:{}", self.secret),
            None => f.write_str(&self.secret),
        }
    }
}

/// Lowercase hex sha256 of the CA certificate file's bytes.
pub fn ca_hash(ca_pem: &[u8]) -> String {
    Sha256::digest(ca_pem).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_token_round_trips_and_pins_its_ca() {
        let token = JoinToken::for_ca(b"ca pem", "s3cret");
        let text = token.to_string();
        assert!(text.starts_with("K10") && text.ends_with("::server:s3cret"), "{text}");
        let parsed = JoinToken::parse(&format!("{text}\n")).expect("parses");
        assert_eq!(parsed, token);
        assert!(parsed.ca_matches(b"ca pem"));
        assert!(!parsed.ca_matches(b"another ca"));
    }

    #[test]
    fn a_bare_secret_pins_nothing() {
        let token = JoinToken::parse("just-a-secret").expect("parses");
        assert_eq!(token.ca_hash, None);
        assert!(!token.ca_matches(b"ca pem"));
        assert_eq!(token.to_string(), "just-a-secret");
    }

    #[test]
    fn malformed_tokens_are_refused_with_the_reason() {
        let hash = "a".repeat(64);
        assert_eq!(JoinToken::parse("  "), Err(JoinTokenError::Empty));
        assert_eq!(
            JoinToken::parse("K10abc::server:x"),
            Err(JoinTokenError::Malformed("the CA hash is not 64 hex digits"))
        );
        assert_eq!(
            JoinToken::parse(&format!("K10{hash}::node:x")),
            Err(JoinTokenError::Malformed("the user part is not 'server'"))
        );
        assert_eq!(
            JoinToken::parse(&format!("K10{hash}::server:")),
            Err(JoinTokenError::Malformed("the secret is empty"))
        );
        assert_eq!(JoinToken::parse("X10::server:x"), Err(JoinTokenError::Malformed("a full token starts with K10")));
    }
}
