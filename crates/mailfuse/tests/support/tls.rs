//! A self-signed certificate for `localhost` for a server under test, and
//! a client that trusts only it.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A certificate for `localhost`, with its PEM files in a directory.
pub struct SelfSigned {
    pub cert: rcgen::Certificate,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl SelfSigned {
    /// Generates one and writes `cert.pem` and `key.pem` in `dir`.
    pub fn new(dir: &Path) -> SelfSigned {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, signing_key.serialize_pem()).unwrap();
        SelfSigned {
            cert,
            cert_path,
            key_path,
        }
    }

    /// The configuration lines naming the files.
    pub fn config_lines(&self) -> String {
        format!(
            "tls_certificate = \"{}\"\ntls_key = \"{}\"",
            self.cert_path.display(),
            self.key_path.display()
        )
    }

    /// A TLS connection to `localhost` on `port` that trusts this
    /// certificate only.
    pub fn connect(&self, port: u16) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let connection = rustls::ClientConnection::new(Arc::new(client), name).unwrap();
        rustls::StreamOwned::new(connection, TcpStream::connect(("127.0.0.1", port)).unwrap())
    }
}
