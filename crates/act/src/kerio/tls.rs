//! TLS for the Admin API: Kerio ships a self-signed certificate, which no
//! root store accepts, so the admin can pin its SHA-256 fingerprint instead.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

use crate::ActError;

/// A SHA-256 certificate fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// Reads 64 hex digits; colons and spaces (as `openssl x509 -fingerprint`
    /// prints them) are ignored.
    pub(super) fn parse(text: &str) -> Result<Fingerprint, ActError> {
        let bad = || {
            ActError::new(
                "kerio",
                format!(
                    "tls_pin_sha256 `{text}` is not a SHA-256 fingerprint: expected 64 hex digits \
                     (colons allowed), e.g. from `openssl x509 -noout -fingerprint -sha256`"
                ),
            )
        };
        let mut digits = text
            .bytes()
            .filter(|b| *b != b':' && !b.is_ascii_whitespace());
        let mut bytes = [0u8; 32];
        for byte in &mut bytes {
            let high = digits.next().and_then(hex_value).ok_or_else(bad)?;
            let low = digits.next().and_then(hex_value).ok_or_else(bad)?;
            *byte = high << 4 | low;
        }
        if digits.next().is_some() {
            return Err(bad());
        }
        Ok(Fingerprint(bytes))
    }

    pub(super) fn of(der: &[u8]) -> Fingerprint {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(digest.as_ref());
        Fingerprint(bytes)
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// `AB:CD:…`, the way admin consoles and openssl show fingerprints.
impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut text = String::with_capacity(95);
        for (index, byte) in self.0.iter().enumerate() {
            if index > 0 {
                text.push(':');
            }
            let _ = write!(text, "{byte:02X}");
        }
        f.write_str(&text)
    }
}

/// The last pin mismatch, so the error the admin sees names both
/// fingerprints instead of reqwest's generic "error sending request".
pub(super) type MismatchSlot = Arc<Mutex<Option<String>>>;

/// Accepts exactly the pinned leaf certificate. Chain and host name are not
/// checked (the pin is stronger than both for a self-signed certificate);
/// the handshake signature still is, so the server must hold the key.
#[derive(Debug)]
struct PinnedCertificate {
    pin: Fingerprint,
    provider: Arc<CryptoProvider>,
    mismatch: MismatchSlot,
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity.as_ref());
        if presented == self.pin {
            return Ok(ServerCertVerified::assertion());
        }
        if let Ok(mut slot) = self.mismatch.lock() {
            *slot = Some(format!(
                "certificate fingerprint {presented} does not match the pinned {} \
                 (tls_pin_sha256): refusing to send the password; if the certificate was \
                 renewed on purpose, pin the new fingerprint",
                self.pin
            ));
        }
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A rustls client configuration that trusts only the pinned certificate.
pub(super) fn pinned_config(
    pin: Fingerprint,
    mismatch: MismatchSlot,
) -> Result<rustls::ClientConfig, ActError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = PinnedCertificate {
        pin,
        provider: Arc::clone(&provider),
        mismatch,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ActError::new("kerio", format!("TLS setup failed: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::Fingerprint;

    #[test]
    fn fingerprint_reads_openssl_form_and_bare_hex() {
        let bare = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        let a = Fingerprint::parse(&bare).unwrap();
        let b = Fingerprint::parse(&colons).unwrap();
        assert!(a == b);
        assert_eq!(a.to_string(), colons);
    }

    #[test]
    fn fingerprint_rejects_wrong_length_and_non_hex() {
        for text in ["", "ab", &"ab".repeat(33), &"zz".repeat(32), "é"] {
            let error = Fingerprint::parse(text).unwrap_err();
            assert!(error.message.contains("64 hex digits"), "{error}");
        }
    }
}
