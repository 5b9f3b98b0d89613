//! `capstan certs create`: a CA and the certificates a store cluster needs
//! for TLS. Members get one certificate for client and peer traffic (server
//! and client use, the member's hosts as SANs); clients such as etcdctl get a
//! client certificate with their name as CN. An existing CA in the directory
//! is reused, so members and clients can be added later.

use std::fs::{self, OpenOptions, Permissions};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use capstan_store::server::tls::{CertificateDer, cert_from_pem, verify_issued};
use clap::{Args, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, SanType,
};

mod issuer;

const DAY: Duration = Duration::from_secs(24 * 3600);
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const CERT_VALIDITY: Duration = Duration::from_secs(5 * 365 * 24 * 3600);
const KEY_MODE: u32 = 0o600;
const CERT_MODE: u32 = 0o644;

#[derive(Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Write a CA (or reuse the one in --dir) and the certificates it signs.
    Create(CreateArgs),
}

#[derive(Args)]
struct CreateArgs {
    /// Directory for ca.crt, ca.key and NAME.crt, NAME.key (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// A member's certificate for client and peer traffic, valid for its hosts
    /// (IP addresses or DNS names). Repeatable.
    #[arg(long = "member", value_name = "NAME=HOST[,HOST…]", value_parser = parse_member)]
    members: Vec<MemberSpec>,
    /// A client certificate with CN=NAME (for etcdctl --cert/--key). Repeatable.
    #[arg(long = "client", value_name = "NAME", value_parser = parse_name)]
    clients: Vec<String>,
}

#[derive(Clone)]
struct MemberSpec {
    name: String,
    hosts: Vec<String>,
}

/// Names become file names: letters, digits, `.`, `_` and `-` only.
fn parse_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && !s.starts_with('.')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(format!("{s:?} is not a usable name (letters, digits, '.', '_', '-')"));
    }
    if s == "ca" {
        return Err("\"ca\" is the CA's own file name".into());
    }
    Ok(s.to_string())
}

fn parse_member(s: &str) -> Result<MemberSpec, String> {
    let (name, hosts) = s.split_once('=').ok_or_else(|| format!("{s:?} is not NAME=HOST[,HOST…]"))?;
    let name = parse_name(name)?;
    let hosts: Vec<String> = hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(String::from).collect();
    if hosts.is_empty() {
        return Err(format!("member {name} has no host"));
    }
    Ok(MemberSpec { name, hosts })
}

pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    match args.command {
        CertsCommand::Create(args) => create(&args),
    }
}

fn create(args: &CreateArgs) -> anyhow::Result<()> {
    let mut names: Vec<&str> =
        args.members.iter().map(|m| m.name.as_str()).chain(args.clients.iter().map(String::as_str)).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        bail!("{} is named twice; every member and client needs its own name", w[0]);
    }
    fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let ca = Ca::open_or_create(&args.dir)?;
    for member in &args.members {
        let sans = member.hosts.iter().map(|h| san(h)).collect::<anyhow::Result<Vec<_>>>()?;
        let usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        ca.issue(&args.dir, &member.name, sans, usages, &member.hosts)?;
    }
    for client in &args.clients {
        ca.issue(&args.dir, client, Vec::new(), vec![ExtendedKeyUsagePurpose::ClientAuth], &[])?;
    }
    Ok(())
}

/// IP addresses become IP SANs (what clients dialing an IP check), anything
/// else a DNS SAN.
fn san(host: &str) -> anyhow::Result<SanType> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(match host.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(host.try_into().with_context(|| format!("{host:?} is not a DNS name"))?),
    })
}

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
    /// Whether the CA certificate carries a subject key identifier for new
    /// certificates to point to.
    names_key: bool,
}

impl Ca {
    fn open_or_create(dir: &Path) -> anyhow::Result<Ca> {
        let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
        match (cert_path.exists(), key_path.exists()) {
            (true, true) => Ca::open(&cert_path, &key_path),
            (false, false) => Ca::create(&cert_path, &key_path),
            (true, false) => {
                bail!("{} exists without {}; restore the key or remove both", cert_path.display(), key_path.display())
            }
            (false, true) => bail!(
                "{} exists without {}; restore the certificate or remove both",
                key_path.display(),
                cert_path.display()
            ),
        }
    }

    fn create(cert_path: &Path, key_path: &Path) -> anyhow::Result<Ca> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        // A name of its own, so that certificates of two CAs are told apart.
        let tag: String = key.public_key_raw().iter().skip(1).take(4).map(|b| format!("{b:02x}")).collect();
        params.distinguished_name = common_name(&format!("capstan CA {tag}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = ca_key_usages();
        set_validity(&mut params, CA_VALIDITY);
        let cert = params.self_signed(&key)?;
        write_file(key_path, &key.serialize_pem(), KEY_MODE)?;
        write_file(cert_path, &cert.pem(), CERT_MODE)?;
        println!("wrote {} and {} (the CA)", cert_path.display(), key_path.display());
        Ok(Ca { der: cert.der().clone(), issuer: Issuer::new(params, key), names_key: true })
    }

    fn open(cert_path: &Path, key_path: &Path) -> anyhow::Result<Ca> {
        let key_pem = fs::read_to_string(key_path).with_context(|| format!("reading {}", key_path.display()))?;
        let key =
            KeyPair::from_pem(&key_pem).with_context(|| format!("{}: not a PEM private key", key_path.display()))?;
        let cert_pem = fs::read(cert_path).with_context(|| format!("reading {}", cert_path.display()))?;
        let der = cert_from_pem(&cert_pem).map_err(|e| anyhow::anyhow!("{}: {e}", cert_path.display()))?;
        let names =
            issuer::read(&der).map_err(|e| anyhow::anyhow!("{}: cannot reuse this CA: {e}", cert_path.display()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = names.subject;
        params.key_usages = ca_key_usages();
        // New certificates name the CA's key as the CA itself does (or not at all).
        if let Some(key_id) = &names.key_id {
            params.key_identifier_method = KeyIdMethod::PreSpecified(key_id.clone());
        }
        let names_key = names.key_id.is_some();
        println!("reusing the CA in {}", cert_path.display());
        Ok(Ca { der, issuer: Issuer::new(params, key), names_key })
    }

    /// Writes NAME.crt and NAME.key, after checking that members and clients
    /// trusting this CA will accept the certificate.
    fn issue(
        &self,
        dir: &Path,
        name: &str,
        sans: Vec<SanType>,
        usages: Vec<ExtendedKeyUsagePurpose>,
        server_hosts: &[String],
    ) -> anyhow::Result<()> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = common_name(name);
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages;
        params.use_authority_key_identifier_extension = self.names_key;
        set_validity(&mut params, CERT_VALIDITY);
        let cert = params.signed_by(&key, &self.issuer)?;
        let hosts: Vec<String> =
            server_hosts.iter().map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string()).collect();
        if let Err(e) = verify_issued(&self.der, cert.der(), &hosts) {
            bail!(
                "the certificate for {name} would be refused ({e}); is ca.key the key of ca.crt in {}?",
                dir.display()
            );
        }
        let (cert_path, key_path) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        write_file(&key_path, &key.serialize_pem(), KEY_MODE)?;
        write_file(&cert_path, &cert.pem(), CERT_MODE)?;
        let what = if hosts.is_empty() { "client".to_string() } else { format!("member, {}", hosts.join(", ")) };
        println!("wrote {} and {} ({what})", cert_path.display(), key_path.display());
        Ok(())
    }
}

fn ca_key_usages() -> Vec<KeyUsagePurpose> {
    vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature]
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// Valid from a day ago (clocks differ) for `length`.
fn set_validity(params: &mut CertificateParams, length: Duration) {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - DAY;
    params.not_after = now + length;
}

/// Writes a file with `mode` through a temporary file and a rename, so that
/// a key is never readable by others, not even while it is written.
fn write_file(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp"));
    let written = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp)?;
        // An earlier leftover keeps its old mode: set it explicitly.
        f.set_permissions(Permissions::from_mode(mode))?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        bail!("writing {}: {e}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_specs() {
        let m = parse_member("m1=127.0.0.1,m1.example,::1").expect("parses");
        assert_eq!(m.name, "m1");
        assert_eq!(m.hosts, ["127.0.0.1", "m1.example", "::1"]);
        assert!(parse_member("m1").is_err());
        assert!(parse_member("m1=").is_err());
        assert!(parse_member("../x=127.0.0.1").is_err());
        assert!(parse_name("ca").is_err());
    }

    #[test]
    fn sans_by_kind() {
        assert!(matches!(san("10.0.0.1").expect("ip"), SanType::IpAddress(_)));
        assert!(matches!(san("[::1]").expect("ip"), SanType::IpAddress(_)));
        assert!(matches!(san("node-1.example").expect("dns"), SanType::DnsName(_)));
    }

    #[test]
    fn reused_ca_signs_what_the_new_one_did() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args =
            |members: Vec<MemberSpec>, clients: Vec<String>| CreateArgs { dir: dir.path().into(), members, clients };
        create(&args(vec![parse_member("m1=127.0.0.1").expect("spec")], vec![])).expect("first run");
        let ca_before = fs::read(dir.path().join("ca.crt")).expect("ca.crt");
        // The second run opens the CA from its files and signs with it.
        create(&args(vec![], vec!["admin".into()])).expect("second run");
        assert_eq!(fs::read(dir.path().join("ca.crt")).expect("ca.crt"), ca_before, "the CA is reused");
        let mode = |name: &str| fs::metadata(dir.path().join(name)).expect("file").permissions().mode() & 0o777;
        assert_eq!(mode("ca.key"), 0o600);
        assert_eq!(mode("m1.key"), 0o600);
        assert_eq!(mode("admin.key"), 0o600);
        assert_eq!(mode("m1.crt"), 0o644);
    }

    #[test]
    fn a_key_of_another_ca_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let other = tempfile::tempdir().expect("tempdir");
        let args = |dir: &Path| CreateArgs { dir: dir.into(), members: vec![], clients: vec!["c".into()] };
        create(&args(dir.path())).expect("first CA");
        create(&args(other.path())).expect("second CA");
        fs::copy(other.path().join("ca.key"), dir.path().join("ca.key")).expect("copy");
        let err = create(&args(dir.path())).expect_err("mismatched CA key");
        assert!(err.to_string().contains("would be refused"), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let args = CreateArgs {
            dir: dir.path().into(),
            members: vec![parse_member("x=127.0.0.1").expect("spec")],
            clients: vec!["x".into()],
        };
        assert!(create(&args).is_err());
        assert!(!dir.path().join("ca.crt").exists(), "nothing written");
    }
}
