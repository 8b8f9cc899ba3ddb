//! The certificate verifier: a bundle of trust anchors, validity dates, CA flags and SPKI
//! pins around embedded-tls's chain and signature checks.

use embedded_tls::pki::CertVerifier;
use embedded_tls::{
    Aes128GcmSha256, Certificate, CertificateEntryRef, CertificateRef, CertificateVerifyRef, NoClock, TlsError,
    TlsVerifier,
};

use super::MAX_CERTIFICATE;
use super::cert::{CertInfo, split_bundle};
use crate::Tls;

/// Checks the server's certificate chain as [`Tls`] says (see the crate documentation for
/// the whole list), for embedded-tls's `TlsConnection`.
///
/// Per handshake: the chain is cut at the first certificate (from the leaf up) whose issuer
/// is one of the anchors (or that carries an anchor's key); every kept link's signature is
/// checked (embedded-tls), every certificate above the leaf must be a CA, every kept
/// certificate must be within its validity dates when the time is known, one of them (or
/// the anchor) must match a pin when pins are given, and the leaf must carry the server
/// name and sign the handshake.
///
/// Anchors are matched by name: if several anchors of a bundle share a subject name, the
/// first one is used.
pub struct Verifier<'a> {
    tls: Tls<'a>,
    host: Option<heapless::String<64>>,
    inner: Option<CertVerifier<'a, Aes128GcmSha256, NoClock, MAX_CERTIFICATE>>,
    chain_verified: bool,
    #[cfg(feature = "tls-rsa")]
    leaf_rsa: bool,
}

impl<'a> Verifier<'a> {
    /// A verifier for one handshake.
    pub fn new(tls: Tls<'a>) -> Self {
        Verifier {
            tls,
            host: None,
            inner: None,
            chain_verified: false,
            #[cfg(feature = "tls-rsa")]
            leaf_rsa: false,
        }
    }

    /// The anchor the chain leads to and how many of the server's certificates lead there.
    fn find_anchor(&self, chain: &CertificateRef<'_>) -> Result<(usize, &'a [u8]), TlsError> {
        for (i, entry) in chain.entries.iter().enumerate() {
            let info = CertInfo::parse(x509(entry)?).map_err(|_| TlsError::DecodeError)?;
            for anchor_der in split_bundle(self.tls.ca_der) {
                let Ok(anchor) = CertInfo::parse(anchor_der) else { continue };
                // The server sent the anchor itself (or a cross-signed copy of its key).
                if i > 0 && info.spki == anchor.spki {
                    return Ok((i, anchor_der));
                }
                if info.issuer == anchor.subject {
                    return Ok((i + 1, anchor_der));
                }
            }
        }
        Err(TlsError::InvalidCertificate)
    }

    /// What embedded-tls does not check: dates, CA flags, pins.
    fn check_kept(&mut self, chain: &CertificateRef<'_>, anchor_der: &[u8]) -> Result<(), TlsError> {
        let now = self.tls.time.and_then(|t| t.unix_time());
        let pins = self.tls.pins;
        let anchor = CertInfo::parse(anchor_der).map_err(|_| TlsError::DecodeError)?;
        let mut pinned = pins.is_empty() || pins.contains(&anchor.spki_sha256());
        for (i, entry) in chain.entries.iter().enumerate() {
            let info = CertInfo::parse(x509(entry)?).map_err(|_| TlsError::DecodeError)?;
            if now.is_some_and(|now| !info.valid_at(now)) {
                return Err(TlsError::InvalidCertificate);
            }
            if i > 0 && !info.is_ca {
                return Err(TlsError::InvalidCertificate);
            }
            pinned = pinned || pins.contains(&info.spki_sha256());
            #[cfg(feature = "tls-rsa")]
            if i == 0 {
                self.leaf_rsa = info.has_rsa_key();
            }
        }
        if pinned { Ok(()) } else { Err(TlsError::InvalidCertificate) }
    }
}

fn x509<'e>(entry: &CertificateEntryRef<'e>) -> Result<&'e [u8], TlsError> {
    match entry {
        CertificateEntryRef::X509(der) => Ok(der),
        CertificateEntryRef::RawPublicKey(_) => Err(TlsError::InvalidCertificate),
    }
}

impl TlsVerifier<Aes128GcmSha256> for Verifier<'_> {
    fn set_hostname_verification(&mut self, hostname: &str) -> Result<(), TlsError> {
        self.host = Some(heapless::String::try_from(hostname).map_err(|_| TlsError::InsufficientSpace)?);
        Ok(())
    }

    fn verify_certificate(
        &mut self,
        transcript: &<Aes128GcmSha256 as embedded_tls::TlsCipherSuite>::Hash,
        mut chain: CertificateRef<'_>,
    ) -> Result<(), TlsError> {
        self.chain_verified = false;
        let (kept, anchor_der) = self.find_anchor(&chain)?;
        chain.entries.truncate(kept);
        self.check_kept(&chain, anchor_der)?;
        let inner = self.inner.insert(CertVerifier::new(Certificate::X509(anchor_der)));
        if let Some(host) = &self.host {
            inner.set_hostname_verification(host)?;
        }
        inner.verify_certificate(transcript, chain)?;
        self.chain_verified = true;
        Ok(())
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef<'_>) -> Result<(), TlsError> {
        let inner = match self.inner.as_mut() {
            Some(inner) if self.chain_verified => inner,
            _ => return Err(TlsError::InvalidCertificate),
        };
        // embedded-tls unwraps the RSA key for RSA-PSS-SHA256: make sure it is one.
        #[cfg(feature = "tls-rsa")]
        {
            use embedded_tls::SignatureScheme as S;
            let rsa_scheme =
                matches!(verify.signature_scheme, S::RsaPssRsaeSha256 | S::RsaPssRsaeSha384 | S::RsaPssRsaeSha512);
            if rsa_scheme && !self.leaf_rsa {
                return Err(TlsError::InvalidSignature);
            }
        }
        inner.verify_signature(verify)
    }
}
