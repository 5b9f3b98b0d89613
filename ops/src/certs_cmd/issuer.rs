//! What certificates signed by an existing CA must repeat of its
//! certificate: its subject (as their issuer) and its key identifier (as
//! their authority key identifier, which OpenSSL matches strictly).

use rcgen::{DistinguishedName, DnType, DnValue};
use yasna::{ASN1Error, Tag, parse_der};

/// The subjectKeyIdentifier extension (2.5.29.14).
const SUBJECT_KEY_ID: &[u64] = &[2, 5, 29, 14];
/// The first byte of the `[3] EXPLICIT Extensions` field of a TBSCertificate.
const EXTENSIONS_FIELD: u8 = 0xa3;
/// The first byte of the `[0] EXPLICIT Version` field.
const VERSION_FIELD: u8 = 0xa0;

pub struct IssuerNames {
    pub subject: DistinguishedName,
    pub key_id: Option<Vec<u8>>,
}

/// Reads a CA certificate (DER). Single-valued name attributes of the usual
/// string types cover CAs this command wrote and most others; anything else
/// is refused.
pub fn read(der: &[u8]) -> Result<IssuerNames, String> {
    let fields = tbs_fields(der).map_err(not_der)?;
    // [0] version (optional), serial, signature, issuer, validity, subject, spki, …
    let skip = usize::from(fields.first().and_then(|f| f.first()) == Some(&VERSION_FIELD));
    let subject = fields.get(skip + 4).ok_or("a certificate without a subject")?;
    let key_id = match fields.iter().skip(skip + 6).find(|f| f.first() == Some(&EXTENSIONS_FIELD)) {
        Some(extensions) => subject_key_id(extensions).map_err(not_der)?,
        None => None,
    };
    Ok(IssuerNames { subject: distinguished_name(subject)?, key_id })
}

fn not_der(e: ASN1Error) -> String {
    format!("not a DER certificate ({e})")
}

/// The raw fields of the certificate's TBSCertificate.
fn tbs_fields(der: &[u8]) -> Result<Vec<Vec<u8>>, ASN1Error> {
    parse_der(der, |r| {
        r.read_sequence(|r| {
            let fields = r.next().collect_sequence_of(|r| r.read_der())?;
            r.next().read_der()?; // signatureAlgorithm
            r.next().read_der()?; // signatureValue
            Ok(fields)
        })
    })
}

fn subject_key_id(extensions: &[u8]) -> Result<Option<Vec<u8>>, ASN1Error> {
    let extensions =
        parse_der(extensions, |r| r.read_tagged(Tag::context(3), |r| r.collect_sequence_of(|r| r.read_der())))?;
    for extension in extensions {
        // Extension: extnID, critical (optional), extnValue.
        let parts = parse_der(&extension, |r| r.collect_sequence_of(|r| r.read_der()))?;
        let (Some(id), Some(value)) = (parts.first(), parts.last()) else { continue };
        if parse_der(id, |r| r.read_oid())?.components().as_slice() == SUBJECT_KEY_ID {
            let wrapped = parse_der(value, |r| r.read_bytes())?;
            return parse_der(&wrapped, |r| r.read_bytes()).map(Some);
        }
    }
    Ok(None)
}

fn distinguished_name(der: &[u8]) -> Result<DistinguishedName, String> {
    let rdns = parse_der(der, |r| {
        r.collect_sequence_of(|r| {
            r.collect_set_of(|r| r.read_sequence(|r| Ok((r.next().read_oid()?, r.next().read_tagged_der()?))))
        })
    })
    .map_err(not_der)?;
    let mut dn = DistinguishedName::new();
    for rdn in rdns {
        let [(oid, value)] = <[_; 1]>::try_from(rdn).map_err(|_| "a multi-valued name in the subject")?;
        let text = String::from_utf8(value.value().to_vec()).map_err(|_| "a subject attribute that is not text")?;
        let tag = value.tag();
        let value = if tag == yasna::tags::TAG_UTF8STRING {
            DnValue::Utf8String(text)
        } else if tag == yasna::tags::TAG_PRINTABLESTRING {
            DnValue::PrintableString(text.try_into().map_err(|_| "a bad PrintableString in the subject")?)
        } else if tag == yasna::tags::TAG_IA5STRING {
            DnValue::Ia5String(text.try_into().map_err(|_| "a bad IA5String in the subject")?)
        } else if tag == yasna::tags::TAG_TELETEXSTRING {
            DnValue::TeletexString(text.try_into().map_err(|_| "a bad TeletexString in the subject")?)
        } else {
            return Err(format!("a subject attribute of an unsupported string type ({tag:?})"));
        };
        let kind = DnType::from_oid(oid.components());
        if dn.get(&kind).is_some() {
            return Err("a subject that repeats an attribute".into());
        }
        dn.push(kind, value);
    }
    Ok(dn)
}

#[cfg(test)]
mod tests {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

    use super::*;

    #[test]
    fn reads_back_what_rcgen_wrote() {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        let country = DnValue::PrintableString("DE".try_into().expect("printable"));
        params.distinguished_name.push(DnType::CountryName, country);
        params.distinguished_name.push(DnType::OrganizationName, "Example Org");
        params.distinguished_name.push(DnType::CommonName, "Example Root");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("CA");
        let names = read(cert.der()).expect("reads");
        assert_eq!(names.subject, params.distinguished_name);
        assert_eq!(names.key_id, Some(params.key_identifier(&key)));
    }

    #[test]
    fn refuses_what_is_not_a_certificate() {
        assert!(read(b"\x30\x00").is_err());
        assert!(read(b"not DER").is_err());
    }
}
