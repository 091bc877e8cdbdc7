//! Alert by HTTP POST of JSON: Slack, Mattermost and Teams incoming webhooks
//! show its `text`; anything else can read `incident`.

use std::collections::BTreeMap;
use std::time::Duration;

use mailfuse_detect::Incident;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{redirect, Client, Url};
use serde::{Deserialize, Serialize};

use crate::capability::Fault;
use crate::message::{clean, compose, compose_fault};
use crate::ActError;

const ACTION: &str = "webhook";
/// How much of an error reply is quoted.
const REPLY_QUOTED: usize = 200;
/// How much of an error reply is read at most (the rest is not waited for).
const REPLY_READ: usize = 4096;

/// Where to POST alerts (`[alerts.webhook]` in the configuration).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `https://…` (certificates checked against the system's roots), or
    /// `http://` for a receiver on a trusted network.
    pub url: String,
    /// How long one POST may take in all.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Extra headers, e.g. `Authorization = "Bearer …"`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_timeout_secs() -> u64 {
    10
}

/// Shows the receiver's host and header names only: webhook URLs (Slack's)
/// and header values are secrets.
impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &redacted(&self.url))
            .field("timeout_secs", &self.timeout_secs)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Shows the receiver without its secret path.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("url", &self.shown).finish()
    }
}

/// The header that carries the alert's id (also `alert_id` in the JSON),
/// the one HTTP APIs read to act once per key: a receiver drops a request
/// whose key it has seen.
const ID_HEADER: &str = "Idempotency-Key";

/// What is POSTed.
#[derive(Serialize)]
struct Payload<'a> {
    /// Subject and summary, escaped for chat markup.
    text: String,
    /// The same at every attempt at this alert ([`crate::capability::alert_id`]).
    alert_id: &'a str,
    incident: &'a Incident,
    actions: &'a [String],
}

/// What a fault is POSTed as: chat's `text`, and the fault for programs.
#[derive(Serialize)]
struct FaultPayload<'a> {
    text: String,
    alert_id: &'a str,
    fault: &'a Fault,
}

/// POSTs alerts; the configuration is checked once, in [`Webhook::new`].
pub struct Webhook {
    client: Client,
    url: Url,
    /// The URL without path or query (which may hold a token), for messages.
    shown: String,
}

impl Webhook {
    /// Checks `config` (URL, header names and values) and builds the client.
    pub fn new(config: WebhookConfig) -> Result<Self, ActError> {
        let shown = redacted(&config.url);
        let url = Url::parse(&config.url)
            .map_err(|e| ActError::new(ACTION, format!("`url` {shown}: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(ActError::new(ACTION, "`url` must be https:// or http://"));
        }
        if config.timeout_secs == 0 {
            return Err(ActError::new(ACTION, "`timeout_secs` must be at least 1"));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ActError::new(ACTION, format!("invalid header name {name:?}")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| ActError::new(ACTION, format!("invalid value for header {name}")))?;
            value.set_sensitive(true);
            headers.insert(header, value);
        }
        install_crypto_provider();
        let client = Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(config.timeout_secs))
            // A receiver that moved is a configuration error to report, not a
            // reason to send the alert (and its headers) elsewhere.
            .redirect(redirect::Policy::none())
            .build()
            .map_err(|e| ActError::new(ACTION, format!("HTTP client: {e}")))?;
        Ok(Webhook { client, url, shown })
    }

    /// POSTs the alert `id` for `incident`; `host` names the mail server it
    /// was seen on and `done` what mailfuse did about it. A reply other than
    /// 2xx is an error quoting the status and the start of the reply.
    pub async fn send(
        &self,
        incident: &Incident,
        host: &str,
        done: &[String],
        id: &str,
    ) -> Result<(), ActError> {
        let payload = Payload {
            text: chat_safe(&compose(incident, host, done).summary),
            alert_id: id,
            incident,
            actions: done,
        };
        self.post(&payload, id).await
    }

    /// POSTs `payload` as JSON, with the alert's `id` in a header; a reply
    /// other than 2xx is an error quoting it.
    async fn post(&self, payload: &impl Serialize, id: &str) -> Result<(), ActError> {
        let mut reply = self
            .client
            .post(self.url.clone())
            .header(ID_HEADER, id)
            .json(payload)
            .send()
            .await
            .map_err(|e| {
                ActError::new(
                    ACTION,
                    format!("POST to {}: {}", self.shown, e.without_url()),
                )
            })?;
        let status = reply.status();
        if status.is_success() {
            return Ok(());
        }
        let mut body = Vec::new();
        while body.len() < REPLY_READ {
            match reply.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        Err(ActError::new(
            ACTION,
            format!(
                "{} answered {status}: {}",
                self.shown,
                clean(&String::from_utf8_lossy(&body), REPLY_QUOTED)
            ),
        ))
    }
}

/// reqwest is built without a default crypto provider (see the workspace
/// Cargo.toml); it panics unless one is installed. Installing twice fails
/// harmlessly.
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// `scheme://host[:port]` of a URL, or a placeholder: the path and query of
/// a webhook URL are often its secret.
fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(url) => match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}/…", url.scheme()),
            (Some(host), None) => format!("{}://{host}/…", url.scheme()),
            (None, _) => "(URL without host)".to_string(),
        },
        Err(_) => "(unparsable URL)".to_string(),
    }
}

/// Text made inert for chat markup: Slack reads `<…>` as links and mentions
/// (`<!channel>`) and wants `&`, `<`, `>` escaped; Mattermost and Teams
/// decode those entities back. `@all`/`@channel`/`@here` at a word start
/// would notify everyone in Mattermost: a zero-width space after the `@`
/// defuses it. Markdown emphasis is left alone (it can restyle, not notify).
fn chat_safe(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut word_start = true;
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' if word_start => out.push_str("@\u{200b}"),
            _ => out.push(c),
        }
        word_start = c.is_whitespace() || matches!(c, '(' | '[' | ',' | ';' | ':');
    }
    out
}

impl crate::capability::Action for Webhook {
    fn alert(&self) -> Option<&dyn crate::capability::Alert> {
        Some(self)
    }
}

impl crate::capability::Alert for Webhook {
    fn alert<'a>(
        &'a self,
        incident: &'a Incident,
        host: &'a str,
        done: &'a [String],
        id: &'a str,
    ) -> crate::capability::ActFuture<'a, String> {
        Box::pin(async move {
            self.send(incident, host, done, id).await?;
            Ok("webhook called".to_string())
        })
    }

    fn fault<'a>(
        &'a self,
        fault: &'a Fault,
        host: &'a str,
        id: &'a str,
    ) -> crate::capability::ActFuture<'a, String> {
        Box::pin(async move {
            let payload = FaultPayload {
                text: chat_safe(&compose_fault(fault, host).summary),
                alert_id: id,
                fault,
            };
            self.post(&payload, id).await?;
            Ok("webhook called".to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_text_cannot_mention_or_link() {
        assert_eq!(
            chat_safe("<!channel> a&b @here x@y.z (@all)"),
            "&lt;!channel&gt; a&amp;b @\u{200b}here x@y.z (@\u{200b}all)"
        );
    }

    #[test]
    fn url_secrets_stay_out_of_messages() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
        assert_eq!(redacted(url), "https://hooks.slack.com/…");
        assert_eq!(
            redacted("http://127.0.0.1:8080/x?token=1"),
            "http://127.0.0.1:8080/…"
        );
        let config = WebhookConfig {
            url: url.into(),
            timeout_secs: 5,
            headers: BTreeMap::from([("Authorization".into(), "Bearer SECRET".into())]),
        };
        assert!(!format!("{config:?}").contains("SECRET"));
        assert!(!format!("{:?}", Webhook::new(config).unwrap()).contains("SECRET"));
    }

    #[test]
    fn bad_configuration_is_refused() {
        let config = |url: &str, header: (&str, &str)| WebhookConfig {
            url: url.into(),
            timeout_secs: 5,
            headers: BTreeMap::from([(header.0.into(), header.1.into())]),
        };
        let ok = ("X-Token", "1");
        assert!(Webhook::new(config("ftp://host/x", ok)).is_err());
        assert!(Webhook::new(config("not a url", ok)).is_err());
        assert!(Webhook::new(config("https://h/x", ("Bad Name", "1"))).is_err());
        assert!(Webhook::new(config("https://h/x", ("X-Token", "a\r\nInjected: 1"))).is_err());
        assert!(Webhook::new(config("https://h/x", ok)).is_ok());
        let unknown = r#"{"url": "https://h/x", "header": {}}"#;
        assert!(serde_json::from_str::<WebhookConfig>(unknown).is_err());
    }
}
