//! A throwaway certificate authority for TLS tests: a server certificate for 127.0.0.1 and
//! localhost, and client certificates, all signed by it, as PEM.

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

pub struct TestAuthority {
    certificate: Certificate,
    key: KeyPair,
}

impl TestAuthority {
    pub fn new(name: &str) -> TestAuthority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        TestAuthority { certificate, key }
    }

    /// The authority's certificate, for a truststore or a client's `--ca`.
    pub fn pem(&self) -> String {
        self.certificate.pem()
    }

    /// A certificate for `127.0.0.1` and `localhost` followed by its private key, as one PEM
    /// keystore.
    pub fn server_keystore(&self) -> String {
        self.issue("127.0.0.1", &["127.0.0.1", "localhost"], ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for `user` followed by its private key.
    pub fn client_identity(&self, user: &str) -> String {
        self.issue(user, &[], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, common_name: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> String {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.certificate, &self.key).unwrap();
        format!("{}{}", certificate.pem(), key.serialize_pem())
    }
}
