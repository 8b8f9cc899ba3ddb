//! The few X.509 fields the verifier needs besides what embedded-tls checks: names to find
//! the trust anchor, validity dates, the public key (for pins) and the CA flag.

use der::asn1::{GeneralizedTime, UtcTime};
use der::{Decode, Header, Reader, SliceReader, Tag, TagNumber};

/// DER of the basicConstraints extension's OID (2.5.29.19).
const BASIC_CONSTRAINTS_OID: &[u8] = &[0x06, 0x03, 0x55, 0x1d, 0x13];
/// DER of the rsaEncryption OID (1.2.840.113549.1.1.1).
#[cfg(feature = "tls-rsa")]
const RSA_ENCRYPTION_OID: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// Fields of one certificate, borrowed from its DER.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CertInfo<'a> {
    /// The issuer's distinguished name (DER).
    pub(crate) issuer: &'a [u8],
    /// The subject's distinguished name (DER).
    pub(crate) subject: &'a [u8],
    /// Start of validity, seconds since the Unix epoch.
    pub(crate) not_before: u64,
    /// End of validity, seconds since the Unix epoch.
    pub(crate) not_after: u64,
    /// The whole SubjectPublicKeyInfo (DER), what a pin hashes.
    pub(crate) spki: &'a [u8],
    /// basicConstraints says this certificate is a CA.
    pub(crate) is_ca: bool,
}

impl<'a> CertInfo<'a> {
    /// Reads the fields of the certificate `der` (one DER `Certificate`, nothing after it).
    pub(crate) fn parse(der: &'a [u8]) -> Result<Self, der::Error> {
        let mut reader = SliceReader::new(der)?;
        let info = reader.sequence(|cert| {
            let info = cert.sequence(tbs_certificate)?;
            cert.tlv_bytes()?; // signatureAlgorithm
            cert.tlv_bytes()?; // signatureValue
            Ok::<_, der::Error>(info)
        })?;
        reader.finish()?;
        Ok(info)
    }

    /// Whether `unix_time` lies within the validity period.
    pub(crate) fn valid_at(&self, unix_time: u64) -> bool {
        self.not_before <= unix_time && unix_time <= self.not_after
    }

    /// SHA-256 of the SubjectPublicKeyInfo: the pin of this certificate's key.
    pub(crate) fn spki_sha256(&self) -> [u8; 32] {
        use sha2::Digest;
        sha2::Sha256::digest(self.spki).into()
    }

    /// Whether the key is an RSA key that decodes (PKCS#1 inside the SPKI).
    #[cfg(feature = "tls-rsa")]
    pub(crate) fn has_rsa_key(&self) -> bool {
        use rsa::pkcs1::DecodeRsaPublicKey;
        let parsed = SliceReader::new(self.spki).and_then(|mut r| {
            r.sequence(|spki| {
                let algorithm = spki.sequence(|alg| {
                    let oid = alg.tlv_bytes()?;
                    while !alg.is_finished() {
                        alg.tlv_bytes()?;
                    }
                    Ok::<_, der::Error>(oid)
                })?;
                let key = primitive(spki, Tag::BitString)?;
                Ok((algorithm, key))
            })
        });
        match parsed {
            Ok((oid, key)) => {
                oid == RSA_ENCRYPTION_OID
                    // A BIT STRING's first byte counts the unused bits: 0 for a key.
                    && key.split_first().is_some_and(|(&unused, k)| unused == 0 && rsa::RsaPublicKey::from_pkcs1_der(k).is_ok())
            }
            Err(_) => false,
        }
    }
}

fn tbs_certificate<'a>(tbs: &mut SliceReader<'a>) -> Result<CertInfo<'a>, der::Error> {
    if Tag::peek(tbs)? == context(0) {
        tbs.tlv_bytes()?; // version
    }
    tbs.tlv_bytes()?; // serialNumber
    tbs.tlv_bytes()?; // signature
    let issuer = tbs.tlv_bytes()?;
    let (not_before, not_after) = tbs.sequence(|validity| Ok::<_, der::Error>((time(validity)?, time(validity)?)))?;
    let subject = tbs.tlv_bytes()?;
    let spki = tbs.tlv_bytes()?;
    let mut is_ca = false;
    while !tbs.is_finished() {
        if Tag::peek(tbs)? == context(3) {
            let header = Header::decode(tbs)?;
            is_ca = tbs.read_nested(header.length(), |r| r.sequence(extensions_is_ca))?;
        } else {
            tbs.tlv_bytes()?; // issuerUniqueID, subjectUniqueID
        }
    }
    Ok(CertInfo { issuer, subject, not_before, not_after, spki, is_ca })
}

/// Walks `Extensions` and returns basicConstraints' cA flag (false without the extension).
fn extensions_is_ca(extensions: &mut SliceReader<'_>) -> Result<bool, der::Error> {
    let mut is_ca = false;
    while !extensions.is_finished() {
        extensions.sequence(|extension| {
            let oid = extension.tlv_bytes()?;
            if Tag::peek(extension)? == Tag::Boolean {
                extension.tlv_bytes()?; // critical
            }
            let value = primitive(extension, Tag::OctetString)?;
            if oid == BASIC_CONSTRAINTS_OID {
                let mut inner = SliceReader::new(value)?;
                is_ca = inner.sequence(|constraints| {
                    let ca = if !constraints.is_finished() && Tag::peek(constraints)? == Tag::Boolean {
                        bool::decode(constraints)?
                    } else {
                        false
                    };
                    while !constraints.is_finished() {
                        constraints.tlv_bytes()?; // pathLenConstraint
                    }
                    Ok::<_, der::Error>(ca)
                })?;
            }
            Ok::<_, der::Error>(())
        })?;
    }
    Ok(is_ca)
}

/// The contents of a primitive element with this tag.
fn primitive<'a>(reader: &mut SliceReader<'a>, tag: Tag) -> Result<&'a [u8], der::Error> {
    let header = Header::decode(reader)?;
    header.tag().assert_eq(tag)?;
    reader.read_slice(header.length())
}

fn time(reader: &mut SliceReader<'_>) -> Result<u64, der::Error> {
    match Tag::peek(reader)? {
        Tag::UtcTime => Ok(UtcTime::decode(reader)?.to_unix_duration().as_secs()),
        _ => Ok(GeneralizedTime::decode(reader)?.to_unix_duration().as_secs()),
    }
}

const fn context(number: u8) -> Tag {
    Tag::ContextSpecific { constructed: true, number: TagNumber(number as u32) }
}

/// The certificates of a bundle: DER certificates one after the other (`cat a.der b.der`).
/// Stops at the first bytes that are not a whole DER `SEQUENCE`.
pub(crate) fn split_bundle(bundle: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bundle;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut reader = SliceReader::new(rest).ok()?;
        if Header::peek(&reader).ok()?.tag() != Tag::Sequence {
            return None;
        }
        let tlv = reader.tlv_bytes().ok()?;
        rest = rest.get(tlv.len()..).unwrap_or(&[]);
        Some(tlv)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::roots;

    #[test]
    fn reads_the_usertrust_root() {
        let info = CertInfo::parse(roots::USERTRUST_RSA).unwrap();
        assert_eq!(info.issuer, info.subject, "a self-signed root");
        assert!(info.is_ca);
        // notAfter=Jan 18 23:59:59 2038 GMT (openssl x509 -noout -enddate)
        assert_eq!(info.not_after, 2_147_471_999);
        assert!(info.valid_at(1_800_000_000) && !info.valid_at(2_200_000_000));
        // openssl x509 -noout -pubkey | openssl pkey -pubin -outform der | openssl dgst -sha256
        let pin = info.spki_sha256();
        assert_eq!(&pin[..4], &[0xc7, 0x84, 0x33, 0x3d]);
    }

    #[cfg(feature = "tls-rsa")]
    #[test]
    fn tells_rsa_keys_from_others() {
        assert!(CertInfo::parse(roots::USERTRUST_RSA).unwrap().has_rsa_key());
        let ecdsa = rcgen::generate_simple_self_signed(std::vec!["x.test".into()]).unwrap();
        let info = CertInfo::parse(ecdsa.cert.der()).unwrap();
        assert!(!info.has_rsa_key() && !info.is_ca);
    }

    #[test]
    fn splits_a_bundle() {
        let certs: std::vec::Vec<&[u8]> = split_bundle(roots::THINGER_CLOUD).collect();
        assert_eq!(certs, [roots::USERTRUST_RSA, roots::ISRG_ROOT_X1]);
        assert_eq!(split_bundle(&[0x30, 0x05, 0x01]).count(), 0, "a truncated certificate is no certificate");
        assert_eq!(split_bundle(&[0x02, 0x01, 0x00]).count(), 0, "an INTEGER is no certificate");
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        let root = roots::USERTRUST_RSA;
        for cut in 0..root.len() {
            assert!(CertInfo::parse(root.get(..cut).unwrap()).is_err(), "cut at {cut}");
        }
        let mut flipped = root.to_vec();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = CertInfo::parse(&flipped);
            flipped[i] ^= 0xff;
        }
    }
}
