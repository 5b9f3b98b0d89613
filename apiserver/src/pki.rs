//! The apiserver's certificates: created once, at first start, in one
//! directory that replicas may share: a CA, the serving certificate, and an
//! admin client certificate (group `system:masters`) with its kubeconfig,
//! and kubeconfigs for the cluster's own components.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};

const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
/// The admin's identity, as kubeadm names it.
pub const ADMIN_USER: &str = "kubernetes-admin";
pub const ADMIN_GROUP: &str = "system:masters";

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{}: {reason}", path.display())]
    Io { path: PathBuf, reason: String },
    #[error("creating certificates: {0}")]
    Generate(#[from] rcgen::Error),
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> PkiError + '_ {
    move |e| PkiError::Io { path: path.to_path_buf(), reason: e.to_string() }
}

/// The PEM files a running apiserver reads.
pub struct Pki {
    pub dir: PathBuf,
}

impl Pki {
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn serving_cert(&self) -> PathBuf {
        self.dir.join("apiserver.crt")
    }
    pub fn serving_key(&self) -> PathBuf {
        self.dir.join("apiserver.key")
    }
    pub fn admin_cert(&self) -> PathBuf {
        self.dir.join("admin.crt")
    }
    pub fn admin_key(&self) -> PathBuf {
        self.dir.join("admin.key")
    }

    /// Uses the certificates in `dir`, creating them when the directory has
    /// none. They are made in a scratch directory and renamed into place,
    /// so two replicas starting together end up with one set. A directory
    /// holding only a CA (a joining server's) gets the rest from that CA.
    pub fn ensure(dir: &Path, hosts: &[String]) -> Result<Pki, PkiError> {
        let pki = Pki { dir: dir.to_path_buf() };
        if pki.ca_cert().exists() {
            if !pki.serving_cert().exists() {
                issue_serving_and_admin(dir, hosts, &pki.issuer()?)?;
            }
            return Ok(pki);
        }
        let parent = dir.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent).map_err(io_error(parent))?;
        let scratch = parent.join(format!(".pki-{}", std::process::id()));
        fs::create_dir_all(&scratch).map_err(io_error(&scratch))?;
        fs::set_permissions(&scratch, fs::Permissions::from_mode(0o700)).map_err(io_error(&scratch))?;
        generate(&scratch, hosts)?;
        if let Err(e) = fs::rename(&scratch, dir) {
            let _ = fs::remove_dir_all(&scratch);
            if !pki.ca_cert().exists() {
                return Err(io_error(dir)(e));
            }
        }
        Ok(pki)
    }

    /// A kubeconfig for the admin, with the certificates inline, so it can be
    /// copied anywhere.
    pub fn write_admin_kubeconfig(&self, path: &Path, server: &str) -> Result<(), PkiError> {
        let read = |p: PathBuf| fs::read(&p).map_err(io_error(&p));
        let client =
            ClientCert { user: ADMIN_USER, cert_pem: read(self.admin_cert())?, key_pem: read(self.admin_key())? };
        self.write_kubeconfig(path, server, &client)
    }

    /// A kubeconfig for one of the cluster's own components (`user` is the
    /// certificate's CN, `group` its O). The certificate is issued afresh
    /// by the CA each time, so replicas sharing the CA never race on files.
    pub fn write_component_kubeconfig(
        &self,
        path: &Path,
        server: &str,
        user: &str,
        group: Option<&str>,
    ) -> Result<(), PkiError> {
        let (cert_pem, key_pem) = self.issue_client_certificate(user, group)?;
        let client = ClientCert { user, cert_pem: cert_pem.into_bytes(), key_pem: key_pem.into_bytes() };
        self.write_kubeconfig(path, server, &client)
    }

    /// A client certificate and key (PEM) for `user` in `group`, from the CA.
    pub fn issue_client_certificate(&self, user: &str, group: Option<&str>) -> Result<(String, String), PkiError> {
        let (cert, key) = client_certificate(name(user, group), &self.issuer()?)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// A certificate for a store member's peer URLs: it serves them and is
    /// the member's client certificate towards its peers.
    pub fn issue_peer_certificate(&self, member: &str, hosts: &[String]) -> Result<(String, String), PkiError> {
        let usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let (cert, key) = sign(name(member, None), host_sans(hosts)?, usages, &self.issuer()?)?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// The CA certificate and key, PEM, as a joining server receives them.
    pub fn ca_pems(&self) -> Result<(String, String), PkiError> {
        let read = |p: PathBuf| fs::read_to_string(&p).map_err(io_error(&p));
        Ok((read(self.ca_cert())?, read(self.dir.join("ca.key"))?))
    }

    /// Places a cluster's CA in `dir` (a joining server's), unless it holds one.
    pub fn install_ca(dir: &Path, cert_pem: &str, key_pem: &str) -> Result<(), PkiError> {
        if dir.join("ca.crt").exists() {
            return Ok(());
        }
        KeyPair::from_pem(key_pem)?;
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_error(dir))?;
        write_private(&dir.join("ca.key"), key_pem.as_bytes())?;
        write_public(&dir.join("ca.crt"), cert_pem.as_bytes())
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key_path = self.dir.join("ca.key");
        let ca_key = fs::read_to_string(&key_path).map_err(io_error(&key_path))?;
        Ok(Issuer::new(ca_params(), KeyPair::from_pem(&ca_key)?))
    }

    fn write_kubeconfig(&self, path: &Path, server: &str, client: &ClientCert<'_>) -> Result<(), PkiError> {
        let ca_path = self.ca_cert();
        let ca = STANDARD.encode(fs::read(&ca_path).map_err(io_error(&ca_path))?);
        let user = client.user;
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: capstan\n  cluster:\n    server: {server}\n    \
             certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: \
             {cert}\n    client-key-data: {key}\ncontexts:\n- name: {user}@capstan\n  context:\n    cluster: \
             capstan\n    user: {user}\ncurrent-context: {user}@capstan\npreferences: {{}}\n",
            cert = STANDARD.encode(&client.cert_pem),
            key = STANDARD.encode(&client.key_pem),
        );
        write_private(path, kubeconfig.as_bytes())
    }
}

/// A client certificate and key, PEM, for a kubeconfig's user.
struct ClientCert<'a> {
    user: &'a str,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

/// The CA's parameters; signing with them and the CA key issues
/// certificates that chain to ca.crt.
fn ca_params() -> CertificateParams {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name("capstan-ca", None);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    set_validity(&mut ca, CA_VALIDITY);
    ca
}

fn generate(dir: &Path, hosts: &[String]) -> Result<(), PkiError> {
    let ca_key = KeyPair::generate()?;
    let ca = ca_params();
    let ca_cert = ca.self_signed(&ca_key)?;
    write_private(&dir.join("ca.key"), ca_key.serialize_pem().as_bytes())?;
    write_public(&dir.join("ca.crt"), ca_cert.pem().as_bytes())?;
    issue_serving_and_admin(dir, hosts, &Issuer::new(ca, ca_key))
}

/// The serving certificate (Kubernetes' names for the API, loopback and
/// `hosts`) and the admin's client certificate.
fn issue_serving_and_admin(dir: &Path, hosts: &[String], issuer: &Issuer<'_, KeyPair>) -> Result<(), PkiError> {
    let mut sans = vec![SanType::DnsName("localhost".try_into()?), SanType::DnsName("kubernetes".try_into()?)];
    sans.push(SanType::DnsName("kubernetes.default.svc".try_into()?));
    for san in host_sans(hosts)? {
        if !sans.contains(&san) {
            sans.push(san);
        }
    }
    for loopback in ["127.0.0.1", "::1"] {
        if let Ok(ip) = loopback.parse::<IpAddr>()
            && !sans.contains(&SanType::IpAddress(ip))
        {
            sans.push(SanType::IpAddress(ip));
        }
    }
    issue(dir, "apiserver", name("kube-apiserver", None), sans, ExtendedKeyUsagePurpose::ServerAuth, issuer)?;
    let (cert, key) = client_certificate(name(ADMIN_USER, Some(ADMIN_GROUP)), issuer)?;
    write_private(&dir.join("admin.key"), key.serialize_pem().as_bytes())?;
    write_public(&dir.join("admin.crt"), cert.pem().as_bytes())
}

/// Subject alternative names for host names and addresses (brackets allowed).
fn host_sans(hosts: &[String]) -> Result<Vec<SanType>, PkiError> {
    let mut sans = Vec::new();
    for host in hosts {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        sans.push(match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.try_into()?),
        });
    }
    Ok(sans)
}

fn issue(
    dir: &Path,
    file: &str,
    subject: DistinguishedName,
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(), PkiError> {
    let (cert, key) = sign(subject, sans, vec![usage], issuer)?;
    write_private(&dir.join(format!("{file}.key")), key.serialize_pem().as_bytes())?;
    write_public(&dir.join(format!("{file}.crt")), cert.pem().as_bytes())
}

fn client_certificate(
    subject: DistinguishedName,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(Certificate, KeyPair), PkiError> {
    sign(subject, Vec::new(), vec![ExtendedKeyUsagePurpose::ClientAuth], issuer)
}

fn sign(
    subject: DistinguishedName,
    sans: Vec<SanType>,
    usages: Vec<ExtendedKeyUsagePurpose>,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(Certificate, KeyPair), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = usages;
    set_validity(&mut params, CERT_VALIDITY);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert, key))
}

/// CN is the user name, O the group, as Kubernetes reads client certificates.
fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Valid from a day ago (clocks differ) for `length`.
fn set_validity(params: &mut CertificateParams, length: Duration) {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - DAY;
    params.not_after = now + length;
}

fn write_private(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    write_with_mode(path, contents, 0o600)
}

fn write_public(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    write_with_mode(path, contents, 0o644)
}

/// Writes through a temporary file and a rename, with the mode set from the
/// start, so a key is never readable by others, not even half-written.
fn write_with_mode(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let temporary = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .map_err(io_error(&temporary))?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(io_error(&temporary))?;
    fs::rename(&temporary, path).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_are_created_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki_dir = dir.path().join("pki");
        let pki = Pki::ensure(&pki_dir, &["10.0.0.5".into(), "cp-1.example".into()]).expect("created");
        let ca = fs::read(pki.ca_cert()).expect("ca");
        let again = Pki::ensure(&pki_dir, &[]).expect("reused");
        assert_eq!(fs::read(again.ca_cert()).expect("ca"), ca);
        let mode = fs::metadata(pki.admin_key()).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let kubeconfig = dir.path().join("admin.kubeconfig");
        pki.write_admin_kubeconfig(&kubeconfig, "https://127.0.0.1:6443").expect("kubeconfig");
        let text = fs::read_to_string(&kubeconfig).expect("read");
        assert!(text.contains("server: https://127.0.0.1:6443"));
        assert!(text.contains("client-key-data: "));
    }

    #[test]
    fn component_kubeconfigs_carry_their_own_user() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::ensure(&dir.path().join("pki"), &[]).expect("created");
        let path = dir.path().join("scheduler.kubeconfig");
        pki.write_component_kubeconfig(&path, "https://127.0.0.1:6443", "system:kube-scheduler", None)
            .expect("written");
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.contains("- name: system:kube-scheduler\n"));
        assert!(text.contains("current-context: system:kube-scheduler@capstan"));
    }
}
