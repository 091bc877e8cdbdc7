//! Alert by mail, through an SMTP relay (the mail server itself, usually).

use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mailfuse_detect::Incident;
use serde::Deserialize;

use crate::message::{compose, compose_fault, AlertText};
use crate::ActError;

const ACTION: &str = "email";

/// Where and how to send alert mail (`[alerts.email]` in the configuration).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP relay's host name (checked against its TLS certificate) or IP.
    pub server: String,
    /// 587 (submission) by default; 465 goes with `security = "tls"`, 25 with
    /// a local relay.
    #[serde(default = "default_port")]
    pub port: u16,
    /// How the connection is secured: STARTTLS by default, implicit TLS, or none for a local relay.
    #[serde(default)]
    pub security: Security,
    /// SMTP AUTH user (PLAIN or LOGIN); none for a relay that trusts our IP.
    #[serde(default)]
    pub user: Option<String>,
    /// SMTP AUTH password; the caller fills it from the secrets file.
    #[serde(default)]
    pub password: Option<String>,
    /// The `From:` address, e.g. `mailfuse <mailfuse@example.com>`.
    pub from: String,
    /// Who gets the alerts; at least one.
    pub to: Vec<String>,
    /// How long one alert may take in all, connection included.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Accept any certificate, for a local relay with a self-signed one.
    /// RISK: anyone who can intercept the connection can then read the alerts
    /// and the SMTP password. Prefer a proper certificate, or `security =
    /// "none"` to a relay on the loopback.
    #[serde(default)]
    pub tls_accept_invalid_certs: bool,
}

/// How the connection to the relay is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    /// Plain connection upgraded with STARTTLS; refused if the server does
    /// not offer it (no silent downgrade).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
    /// No encryption: only for a relay on this machine. A password is only
    /// sent this way to a loopback address.
    None,
}

fn default_port() -> u16 {
    587
}

fn default_timeout_secs() -> u64 {
    30
}

/// Shows everything but the password.
impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("server", &self.server)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("timeout_secs", &self.timeout_secs)
            .field("tls_accept_invalid_certs", &self.tls_accept_invalid_certs)
            .finish()
    }
}

/// Sends alert mail; the configuration is checked once, in [`Email::new`].
#[derive(Debug)]
pub struct Email {
    transport: AsyncSmtpTransportBuilder,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// Our name for the server in alerts and errors, `host:port`.
    relay: String,
    timeout: Duration,
}

impl Email {
    /// Checks `config` (addresses, TLS settings, credentials).
    pub fn new(config: EmailConfig) -> Result<Self, ActError> {
        let from = mailbox(&config.from, "from")?;
        if config.to.is_empty() {
            return Err(ActError::new(ACTION, "`to` lists no recipient"));
        }
        let to = config
            .to
            .iter()
            .map(|to| mailbox(to, "to"))
            .collect::<Result<Vec<_>, _>>()?;
        if config.server.trim().is_empty() {
            return Err(ActError::new(ACTION, "`server` is empty"));
        }
        if config.timeout_secs == 0 {
            return Err(ActError::new(ACTION, "`timeout_secs` must be at least 1"));
        }
        let timeout = Duration::from_secs(config.timeout_secs);
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.server)
            .port(config.port)
            .timeout(Some(timeout))
            .tls(tls(&config)?);
        if let Some(credentials) = credentials(&config)? {
            transport = transport.credentials(credentials);
        }
        Ok(Email {
            transport,
            from,
            to,
            relay: format!("{}:{}", config.server, config.port),
            timeout,
        })
    }

    /// Mails the alert `id` for `incident`; `host` names the mail server it
    /// was seen on and `done` what mailfuse did about it.
    pub async fn send(
        &self,
        incident: &Incident,
        host: &str,
        done: &[String],
        id: &str,
    ) -> Result<(), ActError> {
        self.send_text(compose(incident, host, done), id).await
    }

    /// Mails `text` (an incident's or a fault's), its Message-ID made of
    /// the alert's `id`: the same at every attempt, so that a mail sent
    /// again is recognised (and dropped by some mail systems) as a repeat.
    async fn send_text(&self, text: AlertText, id: &str) -> Result<(), ActError> {
        let message_id = format!("<{id}.alert@{}>", self.from.email.domain());
        let mut message = Message::builder()
            .from(self.from.clone())
            .message_id(Some(message_id))
            .subject(text.subject);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .body(text.body),
            )
            .map_err(|e| ActError::new(ACTION, format!("could not build the message: {e}")))?;
        // A transport per alert: alerts are rare, and a pooled connection
        // would sit idle on the relay (and need a runtime at `new`).
        let transport = self.transport.clone().build::<Tokio1Executor>();
        let sent = tokio::time::timeout(self.timeout, transport.send(message)).await;
        transport.shutdown().await;
        match sent {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(ActError::new(
                ACTION,
                format!("could not send through {}: {e}", self.relay),
            )),
            Err(_) => Err(ActError::new(
                ACTION,
                format!(
                    "{} did not take the message within {} s",
                    self.relay,
                    self.timeout.as_secs()
                ),
            )),
        }
    }
}

fn mailbox(address: &str, field: &str) -> Result<Mailbox, ActError> {
    address
        .parse()
        .map_err(|e| ActError::new(ACTION, format!("`{field}` address {address:?}: {e}")))
}

fn tls(config: &EmailConfig) -> Result<Tls, ActError> {
    let parameters = || {
        TlsParameters::builder(config.server.clone())
            .dangerous_accept_invalid_certs(config.tls_accept_invalid_certs)
            .build_rustls()
            .map_err(|e| ActError::new(ACTION, format!("TLS settings: {e}")))
    };
    Ok(match config.security {
        Security::Starttls => Tls::Required(parameters()?),
        Security::Tls => Tls::Wrapper(parameters()?),
        Security::None => Tls::None,
    })
}

/// SMTP AUTH credentials, if configured; refuses to send a password in the
/// clear to anything but the loopback.
fn credentials(config: &EmailConfig) -> Result<Option<Credentials>, ActError> {
    match (&config.user, &config.password) {
        (None, None) => Ok(None),
        (Some(user), Some(password)) => {
            if config.security == Security::None && !is_loopback(&config.server) {
                return Err(ActError::new(
                    ACTION,
                    format!(
                        "refusing to send the SMTP password unencrypted to {}: use security = \"starttls\" or \"tls\"",
                        config.server
                    ),
                ));
            }
            Ok(Some(Credentials::new(user.clone(), password.clone())))
        }
        (Some(_), None) => Err(ActError::new(ACTION, "`user` is set but no password")),
        (None, Some(_)) => Err(ActError::new(ACTION, "a password is set but no `user`")),
    }
}

fn is_loopback(server: &str) -> bool {
    server.eq_ignore_ascii_case("localhost")
        || server
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl crate::capability::Action for Email {
    fn alert(&self) -> Option<&dyn crate::capability::Alert> {
        Some(self)
    }
}

impl crate::capability::Alert for Email {
    fn alert<'a>(
        &'a self,
        incident: &'a Incident,
        host: &'a str,
        done: &'a [String],
        id: &'a str,
    ) -> crate::capability::ActFuture<'a, String> {
        Box::pin(async move {
            self.send(incident, host, done, id).await?;
            Ok("alert mailed".to_string())
        })
    }

    fn fault<'a>(
        &'a self,
        fault: &'a crate::capability::Fault,
        host: &'a str,
        id: &'a str,
    ) -> crate::capability::ActFuture<'a, String> {
        Box::pin(async move {
            self.send_text(compose_fault(fault, host), id).await?;
            Ok("fault mailed".to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> EmailConfig {
        toml_like(
            r#"{"server": "mail.example.com", "from": "mailfuse@example.com", "to": ["admin@example.com"]}"#,
        )
    }

    fn toml_like(json: &str) -> EmailConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn defaults_are_submission_with_starttls() {
        let config = config();
        assert_eq!(config.port, 587);
        assert_eq!(config.security, Security::Starttls);
        assert_eq!(config.timeout_secs, 30);
        assert!(!config.tls_accept_invalid_certs);
        assert!(Email::new(config).is_ok());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let typo = r#"{"server": "m", "from": "a@b.c", "to": ["d@e.f"], "pasword": "x"}"#;
        assert!(serde_json::from_str::<EmailConfig>(typo).is_err());
        let bad_security = r#"{"server": "m", "from": "a@b.c", "to": [], "security": "ssl"}"#;
        assert!(serde_json::from_str::<EmailConfig>(bad_security).is_err());
        let no_to = EmailConfig {
            to: Vec::new(),
            ..config()
        };
        assert!(Email::new(no_to)
            .unwrap_err()
            .to_string()
            .contains("no recipient"));
        let bad_from = EmailConfig {
            from: "not an address".into(),
            ..config()
        };
        assert!(Email::new(bad_from)
            .unwrap_err()
            .to_string()
            .contains("`from`"));
    }

    #[test]
    fn password_never_goes_unencrypted_off_the_machine() {
        let plain = |server: &str| EmailConfig {
            server: server.into(),
            security: Security::None,
            user: Some("u".into()),
            password: Some("secret".into()),
            ..config()
        };
        let err = Email::new(plain("mail.example.com"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("refusing to send the SMTP password unencrypted"),
            "{err}"
        );
        for local in ["127.0.0.1", "localhost", "::1", "[::1]"] {
            assert!(Email::new(plain(local)).is_ok(), "{local}");
        }
        let half = EmailConfig {
            password: None,
            ..plain("127.0.0.1")
        };
        assert!(Email::new(half).is_err());
    }

    #[test]
    fn debug_hides_the_password() {
        let config = EmailConfig {
            user: Some("u".into()),
            password: Some("hunter2".into()),
            ..config()
        };
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!format!("{:?}", Email::new(config).unwrap()).contains("hunter2"));
    }
}
