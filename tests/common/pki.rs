//! A throwaway PKI made at run time for the TLS tests: a CA, a server certificate for 127.0.0.1, client
//! certificates (with a subjectAltName URI, expired, revoked, from another CA) and a CRL, written as PEM
//! files into a folder of the test's own.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use std::path::{Path, PathBuf};
use time::{Duration, OffsetDateTime};

pub struct Ca {
    pub issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem: String,
}

/// A client or server certificate and its key, as PEM, and where they were written.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl Issued {
    /// SHA-256 of the certificate, 64 lowercase hex digits.
    pub fn fingerprint(&self) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(&self.der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The certificate and key in one PEM, as reqwest's `Identity::from_pem` takes it.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

pub fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(365);
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let pem = issuer.pem();
    Ca { issuer, pem }
}

/// What a certificate to issue looks like.
pub struct Leaf<'a> {
    pub name: &'a str,
    pub sans: Vec<SanType>,
    pub serial: u64,
    pub server: bool,
    /// Days from now (negative = in the past).
    pub not_before: i64,
    pub not_after: i64,
}

impl Leaf<'_> {
    pub fn client(name: &str, sans: Vec<SanType>, serial: u64) -> Leaf<'_> {
        Leaf {
            name,
            sans,
            serial,
            server: false,
            not_before: -1,
            not_after: 365,
        }
    }
}

/// A SAN URI `urn:qcvn102:<code>`.
pub fn agency_uri(code: &str) -> SanType {
    SanType::URI(format!("urn:qcvn102:{code}").try_into().unwrap())
}

pub fn issue(ca: &Ca, leaf: Leaf<'_>, dir: &Path) -> Issued {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, leaf.name);
    params.distinguished_name = dn;
    params.subject_alt_names = leaf.sans;
    params.serial_number = Some(SerialNumber::from(leaf.serial));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![if leaf.server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    params.use_authority_key_identifier_extension = true;
    params.not_before = OffsetDateTime::now_utc() + Duration::days(leaf.not_before);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(leaf.not_after);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    let issued = Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
        cert_file: dir.join(format!("{}.pem", leaf.name)),
        key_file: dir.join(format!("{}.key", leaf.name)),
    };
    std::fs::write(&issued.cert_file, &issued.cert_pem).unwrap();
    std::fs::write(&issued.key_file, &issued.key_pem).unwrap();
    issued
}

/// A server certificate for 127.0.0.1 and localhost.
pub fn server(ca: &Ca, dir: &Path, name: &str, days: i64) -> Issued {
    let sans = vec![
        SanType::IpAddress("127.0.0.1".parse().unwrap()),
        SanType::DnsName("localhost".try_into().unwrap()),
    ];
    issue(
        ca,
        Leaf {
            name,
            sans,
            serial: 1,
            server: true,
            not_before: -1,
            not_after: days,
        },
        dir,
    )
}

/// A CRL of `ca` revoking `serials`, as PEM (`der` false) or DER.
pub fn crl(ca: &Ca, serials: &[u64], file: &Path, der: bool) {
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + Duration::days(30),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: now - Duration::hours(1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    let crl = params.signed_by(&ca.issuer).unwrap();
    if der {
        std::fs::write(file, crl.der()).unwrap();
    } else {
        std::fs::write(file, crl.pem().unwrap()).unwrap();
    }
}
