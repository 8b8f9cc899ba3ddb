//! A test PKI shaped like the Thinger.io cloud's, generated at test time: a self-signed
//! RSA-4096 root (like USERTrust RSA, SHA-384), an RSA-2048 intermediate, an RSA-2048 leaf
//! for [`NAME`], and the wrong CAs and forgeries the tests need.
#![allow(dead_code)] // each test binary uses its part

use std::sync::OnceLock;
use std::time::Instant;

use rand_core::OsRng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair, PKCS_RSA_SHA256,
    PKCS_RSA_SHA384, SignatureAlgorithm,
};
use rsa::pkcs8::EncodePrivateKey;
use rustls::pki_types::PrivatePkcs8KeyDer;

/// The DNS name of the test server's certificate.
pub const NAME: &str = "iot.test.local";

pub struct Key {
    pkcs8: Vec<u8>,
}

impl Key {
    fn rsa(bits: usize) -> Key {
        let key = rsa::RsaPrivateKey::new(&mut OsRng, bits).expect("RSA key");
        Key { pkcs8: key.to_pkcs8_der().expect("PKCS#8").as_bytes().to_vec() }
    }
    fn signer(&self, alg: &'static SignatureAlgorithm) -> KeyPair {
        KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(self.pkcs8.clone()), alg).expect("key pair")
    }
}

pub struct Pki {
    pub root: Vec<u8>,
    pub intermediate: Vec<u8>,
    pub leaf: Vec<u8>,
    pub leaf_key: Vec<u8>,
    /// A root with the same name as `root` but another key (a wrong CA that looks right).
    pub impostor_root: Vec<u8>,
    /// A root of another name.
    pub other_root: Vec<u8>,
    /// A leaf certificate (not a CA) of the real intermediate, and a certificate for
    /// NAME that its key signed: the classic basicConstraints attack.
    pub non_ca: Vec<u8>,
    pub forged_leaf: Vec<u8>,
    pub forged_key: Vec<u8>,
    /// The server's chain (leaf, intermediate) and key as PEM, for thinger-server.
    pub chain_pem: String,
    pub leaf_key_pem: String,
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "US");
    dn.push(DnType::OrganizationName, "The Test TRUST Network");
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, path: BasicConstraints) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = name(cn);
    params.is_ca = IsCa::Ca(path);
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2038, 1, 18);
    params
}

fn leaf_params(dns: &str) -> CertificateParams {
    let mut params = CertificateParams::new(vec![dns.to_string()]).expect("params");
    params.distinguished_name = name(dns);
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2030, 1, 1);
    params
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let started = Instant::now();
        let (root_key, inter_key, leaf_key, impostor_key, other_key, non_ca_key, forged_key) = (
            Key::rsa(4096),
            Key::rsa(2048),
            Key::rsa(2048),
            Key::rsa(2048),
            Key::rsa(2048),
            Key::rsa(2048),
            Key::rsa(2048),
        );
        println!("RSA keys generated in {:?}", started.elapsed());

        let root_params = ca_params("Test RSA Certification Authority", BasicConstraints::Unconstrained);
        let root_signer = root_key.signer(&PKCS_RSA_SHA384);
        let root = root_params.self_signed(&root_signer).expect("root");
        let root_issuer = Issuer::new(root_params, root_signer);

        let inter_params = ca_params("Test RSA Domain Validation Secure Server CA", BasicConstraints::Constrained(0));
        let inter_signer = inter_key.signer(&PKCS_RSA_SHA256);
        let intermediate = inter_params.signed_by(&inter_signer, &root_issuer).expect("intermediate");
        let inter_issuer = Issuer::new(inter_params, inter_signer);

        let leaf = leaf_params(NAME).signed_by(&leaf_key.signer(&PKCS_RSA_SHA256), &inter_issuer).expect("leaf");

        let impostor_params = ca_params("Test RSA Certification Authority", BasicConstraints::Unconstrained);
        let impostor_root = impostor_params.self_signed(&impostor_key.signer(&PKCS_RSA_SHA384)).expect("impostor");
        let other_params = ca_params("Other Root CA", BasicConstraints::Unconstrained);
        let other_root = other_params.self_signed(&other_key.signer(&PKCS_RSA_SHA384)).expect("other");

        let non_ca_params = leaf_params("attacker.test.local");
        let non_ca_signer = non_ca_key.signer(&PKCS_RSA_SHA256);
        let non_ca = non_ca_params.signed_by(&non_ca_signer, &inter_issuer).expect("non-CA leaf");
        let non_ca_issuer = Issuer::new(non_ca_params, non_ca_signer);
        let forged_leaf =
            leaf_params(NAME).signed_by(&forged_key.signer(&PKCS_RSA_SHA256), &non_ca_issuer).expect("forged");

        let chain_pem = format!("{}{}", leaf.pem(), intermediate.pem());
        let leaf_key_pem = leaf_key.signer(&PKCS_RSA_SHA256).serialize_pem();
        Pki {
            chain_pem,
            leaf_key_pem,
            root: root.der().to_vec(),
            intermediate: intermediate.der().to_vec(),
            leaf: leaf.der().to_vec(),
            leaf_key: leaf_key.pkcs8,
            impostor_root: impostor_root.der().to_vec(),
            other_root: other_root.der().to_vec(),
            non_ca: non_ca.der().to_vec(),
            forged_leaf: forged_leaf.der().to_vec(),
            forged_key: forged_key.pkcs8,
        }
    })
}
