//! The device's certificate verifier (thinger-embassy `tls::Verifier`) on arbitrary bytes:
//! a server-sent chain and a trust-anchor bundle. Must never panic, whatever the DER.
//!
//! Input: 2 bytes (big-endian) = length of the anchor bundle, the bundle, 2 bytes = length
//! of the first chain certificate, that certificate, the rest = a second chain certificate.
#![no_main]

use embedded_tls::{CertificateEntryRef, CertificateRef, Sha256, TlsVerifier};
use libfuzzer_sys::fuzz_target;
use thinger_embassy::Tls;
use thinger_embassy::tls::{FixedTime, Verifier, roots};

fn take<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let Some((head, rest)) = data.split_first_chunk::<2>() else {
        return core::mem::take(data);
    };
    let (part, rest) = rest.split_at(usize::from(u16::from_be_bytes(*head)).min(rest.len()));
    *data = rest;
    part
}

fuzz_target!(|data: &[u8]| {
    let mut data = data;
    let anchors = take(&mut data);
    let leaf = take(&mut data);
    let intermediate = data;
    let time = FixedTime(1_800_000_000);
    let pins = [[0x5a; 32]];
    for (ca, pinned) in [(anchors, false), (roots::THINGER_CLOUD, false), (anchors, true)] {
        let mut tls = Tls::new("iot.thinger.io", ca).time_source(&time);
        if pinned {
            tls = tls.pins(&pins);
        }
        let mut verifier = Verifier::new(tls);
        let _ = verifier.set_hostname_verification("iot.thinger.io");
        let mut chain = CertificateRef::with_context(&[]);
        let _ = chain.add(CertificateEntryRef::X509(leaf));
        if !intermediate.is_empty() {
            let _ = chain.add(CertificateEntryRef::X509(intermediate));
        }
        let _ = verifier.verify_certificate(&Sha256::default(), chain);
    }
});
