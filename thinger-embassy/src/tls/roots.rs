//! Trust anchors shipped with the crate: public root certificates (DER), to pass as
//! [`Tls::ca_der`](crate::Tls::ca_der).
//!
//! * [`USERTRUST_RSA`]: *USERTrust RSA Certification Authority* (Sectigo), RSA-4096, valid to
//!   2038-01-18. The Thinger.io community servers (`iot.thinger.io`) chain to it; the
//!   official Arduino library embeds the same root.
//! * [`ISRG_ROOT_X1`]: *ISRG Root X1* (Let's Encrypt), RSA-4096, valid to 2035-06-04: for a
//!   self-hosted Thinger.io server with a Let's Encrypt certificate.
//! * [`THINGER_CLOUD`]: both, one after the other (a bundle; any of them may start the
//!   chain).
//!
//! Both are RSA roots: verifying a chain that ends at them needs the `tls-rsa` feature.
//!
//! # Refreshing the bundle
//!
//! The files come from the Mozilla-derived store of Debian's `ca-certificates` package:
//!
//! ```text
//! cd thinger-embassy/src/tls/roots
//! for n in USERTrust_RSA_Certification_Authority ISRG_Root_X1; do
//!   openssl x509 -in /etc/ssl/certs/$n.pem -outform der -out $n.der
//! done
//! cat USERTrust_RSA_Certification_Authority.der ISRG_Root_X1.der > thinger-cloud.der
//! ```
//!
//! Check what your server chains to with
//! `openssl s_client -connect iot.thinger.io:25206 -showcerts </dev/null` (the last
//! `i:` line names the root). A bundle of your own is the same: DER certificates
//! concatenated (`cat a.der b.der > bundle.der`), then `include_bytes!("bundle.der")`.

/// USERTrust RSA Certification Authority (DER): the root of Thinger.io's community servers.
pub const USERTRUST_RSA: &[u8] = include_bytes!("roots/USERTrust_RSA_Certification_Authority.der");

/// ISRG Root X1 (DER): the root of Let's Encrypt certificates.
pub const ISRG_ROOT_X1: &[u8] = include_bytes!("roots/ISRG_Root_X1.der");

/// [`USERTRUST_RSA`] then [`ISRG_ROOT_X1`], concatenated: a bundle for `Tls::ca_der`.
///
/// ```
/// use thinger_embassy::Tls;
/// use thinger_embassy::tls::roots;
/// let tls = Tls::new("iot.thinger.io", roots::THINGER_CLOUD);
/// assert_eq!(tls.ca_der.len(), roots::USERTRUST_RSA.len() + roots::ISRG_ROOT_X1.len());
/// ```
pub const THINGER_CLOUD: &[u8] = include_bytes!("roots/thinger-cloud.der");
