//! Who is asking: a client certificate signed by the cluster CA (CN is the
//! user, each O a group), or a bearer token from the token file. Anyone
//! else is anonymous, and only public endpoints answer them.

use std::collections::HashMap;
use std::path::Path;

use yasna::models::ObjectIdentifier;
use yasna::{ASN1Error, parse_der};

use crate::rbac::UserInfo;

const COMMON_NAME: &[u64] = &[2, 5, 4, 3];
const ORGANIZATION: &[u64] = &[2, 5, 4, 10];
pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path} line {line}: {reason}")]
    Line { path: String, line: usize, reason: String },
}

/// Static bearer tokens (`--token-auth-file`, Kubernetes' CSV format:
/// `token,user,uid[,"group1,group2"]`).
#[derive(Debug, Default)]
pub struct Tokens(HashMap<String, UserInfo>);

impl Tokens {
    pub fn load(path: &Path) -> Result<Tokens, TokenFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| TokenFileError::Read { path: path.display().to_string(), reason: e.to_string() })?;
        Tokens::parse(&text).map_err(|(line, reason)| TokenFileError::Line {
            path: path.display().to_string(),
            line,
            reason,
        })
    }

    fn parse(text: &str) -> Result<Tokens, (usize, String)> {
        let mut tokens = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            let [token, user, _uid, rest @ ..] = fields.as_slice() else {
                return Err((i + 1, "expected token,user,uid[,\"groups\"]".into()));
            };
            if token.is_empty() || user.is_empty() {
                return Err((i + 1, "the token and the user name must not be empty".into()));
            }
            let groups = rest
                .first()
                .map(|g| g.split(',').map(str::trim).filter(|g| !g.is_empty()).map(str::to_string).collect())
                .unwrap_or_default();
            tokens.insert(token.clone(), UserInfo { name: user.clone(), groups });
        }
        Ok(Tokens(tokens))
    }

    pub fn user(&self, token: &str) -> Option<UserInfo> {
        self.0.get(token).cloned()
    }
}

/// Splits one CSV line, honouring double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().map(|f| f.push(c)).unwrap_or_default(),
        }
    }
    fields.into_iter().map(|f| f.trim().to_string()).collect()
}

/// The user a verified client certificate names.
pub fn user_from_certificate(der: &[u8]) -> Option<UserInfo> {
    let (names, groups) = subject_names(der).ok()?;
    let name = names.into_iter().next()?;
    Some(UserInfo { name, groups })
}

/// Adds the groups every request carries: `system:authenticated` for users.
pub fn with_standard_groups(mut user: UserInfo) -> UserInfo {
    if !user.groups.iter().any(|g| g == AUTHENTICATED) {
        user.groups.push(AUTHENTICATED.to_string());
    }
    user
}

pub fn anonymous() -> UserInfo {
    UserInfo { name: ANONYMOUS.to_string(), groups: vec![UNAUTHENTICATED.to_string()] }
}

/// (common names, organizations) of a certificate's subject.
fn subject_names(der: &[u8]) -> Result<(Vec<String>, Vec<String>), ASN1Error> {
    let subject = parse_der(der, |r| {
        r.read_sequence(|r| {
            let subject = r.next().read_sequence(|r| {
                // [0] version is optional; serial, signature, issuer, validity precede the subject.
                let mut fields = Vec::new();
                while let Some(field) = r.read_optional(|r| r.read_der())? {
                    fields.push(field);
                }
                Ok(fields)
            })?;
            r.next().read_der()?;
            r.next().read_der()?;
            Ok(subject)
        })
    })?;
    let skip = usize::from(subject.first().and_then(|f| f.first()) == Some(&0xa0));
    let subject = subject.get(skip + 4).ok_or(ASN1Error::new(yasna::ASN1ErrorKind::Eof))?;
    let attributes = parse_der(subject, |r| {
        r.collect_sequence_of(|r| {
            r.collect_set_of(|r| {
                r.read_sequence(|r| {
                    let oid = r.next().read_oid()?;
                    let value = r.next().read_tagged_der()?;
                    Ok((oid, String::from_utf8_lossy(value.value()).into_owned()))
                })
            })
        })
    })?;
    let (mut names, mut orgs) = (Vec::new(), Vec::new());
    for (oid, value) in attributes.into_iter().flatten() {
        if oid == ObjectIdentifier::from_slice(COMMON_NAME) {
            names.push(value);
        } else if oid == ObjectIdentifier::from_slice(ORGANIZATION) {
            orgs.push(value);
        }
    }
    Ok((names, orgs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair};

    #[test]
    fn certificates_name_the_user_and_groups() {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::OrganizationName, "system:masters");
        params.distinguished_name.push(DnType::CommonName, "alice");
        let cert = params.self_signed(&key).expect("cert");
        let user = user_from_certificate(cert.der()).expect("user");
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, vec!["system:masters"]);
        assert!(user_from_certificate(b"not a certificate").is_none());
    }

    #[test]
    fn token_files_use_the_kubernetes_format() {
        let tokens = Tokens::parse("# comment\nsecret1,bob,uid1,\"dev,ops\"\nsecret2,carol,uid2\n").expect("parse");
        let bob = tokens.user("secret1").expect("bob");
        assert_eq!(bob.name, "bob");
        assert_eq!(bob.groups, vec!["dev", "ops"]);
        assert!(tokens.user("secret2").expect("carol").groups.is_empty());
        assert!(tokens.user("nope").is_none());
        assert_eq!(Tokens::parse("only,two").err().map(|e| e.0), Some(1));
    }
}
