//! JSON-RPC 2.0 over HTTPS with Kerio's session: a token sent as `X-Token`
//! plus the session cookie, both from `Session.login`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::tls::{pinned_config, Fingerprint, MismatchSlot};
use super::KerioConfig;
use crate::{chain, ActError};

/// Kerio's "session expired" JSON-RPC error code.
const SESSION_EXPIRED: i64 = -32001;

/// How much of an unexpected reply body goes into an error message.
const EXCERPT_BYTES: usize = 200;

fn error(message: impl Into<String>) -> ActError {
    ActError::new("kerio", message)
}

/// A logged-in session: what every later call must present.
struct Session {
    token: String,
    /// `name=value` pairs from the login's `Set-Cookie` headers.
    cookie: String,
}

/// Why a call failed, before it becomes an [`ActError`]: the session layer
/// needs to tell an expired session from everything else.
enum Failure {
    /// A JSON-RPC `error {code, message}`.
    Rpc { code: i64, message: String },
    /// Anything else, already in words for the admin.
    Other(String),
}

impl Failure {
    fn into_act_error(self, method: &str) -> ActError {
        match self {
            Failure::Rpc { code, message } => {
                error(format!("{method} failed: {message} (code {code})"))
            }
            Failure::Other(message) => error(message),
        }
    }
}

/// A successful reply: the `result`, and the cookies the server set.
struct Reply {
    result: Value,
    cookie: String,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct RpcError {
    code: i64,
    #[serde(default)]
    message: String,
}

/// One entry of Kerio's `result.errors[]` (refusals reported with HTTP 200).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemError {
    #[serde(default)]
    input_index: Option<i64>,
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: String,
}

impl std::fmt::Display for ItemError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(code) = self.code {
            write!(f, " (code {code})")?;
        }
        if let Some(index) = self.input_index {
            write!(f, " [item {index}]")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct LoginResult {
    token: String,
}

/// A client of one Kerio Connect Admin API endpoint.
pub(super) struct Client {
    http: reqwest::Client,
    url: Url,
    user: String,
    password: String,
    next_id: AtomicU64,
    /// Held for the whole call, so an expired session is renewed once, not
    /// by every concurrent caller.
    session: Mutex<Option<Session>>,
    /// Set when a TLS pin is configured.
    pin_mismatch: Option<MismatchSlot>,
}

impl Client {
    pub(super) fn new(config: &KerioConfig) -> Result<Client, ActError> {
        let url = Url::parse(&config.url)
            .map_err(|e| error(format!("url `{}` is not a URL: {e}", config.url)))?;
        if url.scheme() != "https" {
            return Err(error(format!(
                "url `{url}` must be https:// (the Admin API listens on https, port 4040 by \
                 default; the password must not travel in clear)"
            )));
        }
        if config.timeout_secs == 0 {
            return Err(error("timeout_secs must be at least 1"));
        }
        // Already installed (by us or by the program) is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let timeout = Duration::from_secs(config.timeout_secs);
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        let (builder, pin_mismatch) = match &config.tls_pin_sha256 {
            Some(pin) => {
                let slot = MismatchSlot::default();
                let tls = pinned_config(Fingerprint::parse(pin)?, MismatchSlot::clone(&slot))?;
                (builder.tls_backend_preconfigured(tls), Some(slot))
            }
            None => (builder, None),
        };
        let http = builder
            .build()
            .map_err(|e| error(format!("cannot build the HTTPS client: {e}")))?;
        Ok(Client {
            http,
            url,
            user: config.user.clone(),
            password: config.password.clone(),
            next_id: AtomicU64::new(1),
            session: Mutex::new(None),
            pin_mismatch,
        })
    }

    /// Calls `method`, logging in first if needed and once more if the
    /// session expired, and decodes the result.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: Value,
    ) -> Result<T, ActError> {
        let mut session = self.session.lock().await;
        if session.is_none() {
            *session = Some(self.login().await?);
        }
        let mut outcome = self.send(method, &params, session.as_ref()).await;
        if let Err(Failure::Rpc {
            code: SESSION_EXPIRED,
            ..
        }) = outcome
        {
            *session = None;
            let fresh = self.login().await?;
            outcome = self.send(method, &params, Some(&fresh)).await;
            *session = Some(fresh);
        }
        let reply = outcome.map_err(|failure| failure.into_act_error(method))?;
        serde_json::from_value(reply.result)
            .map_err(|e| error(format!("unexpected reply to {method}: {e}")))
    }

    /// Ends the session, if there is one.
    pub(super) async fn logout(&self) -> Result<(), ActError> {
        let mut session = self.session.lock().await;
        let Some(current) = session.take() else {
            return Ok(());
        };
        match self
            .send("Session.logout", &json!({}), Some(&current))
            .await
        {
            // Already gone on the server's side: the goal is reached.
            Ok(_)
            | Err(Failure::Rpc {
                code: SESSION_EXPIRED,
                ..
            }) => Ok(()),
            Err(failure) => Err(failure.into_act_error("Session.logout")),
        }
    }

    async fn login(&self) -> Result<Session, ActError> {
        let params = json!({
            "userName": self.user,
            "password": self.password,
            "application": {
                "name": "mailfuse",
                "vendor": "mailfuse",
                "version": env!("CARGO_PKG_VERSION"),
            },
        });
        let reply =
            self.send("Session.login", &params, None)
                .await
                .map_err(|failure| match failure {
                    Failure::Rpc { code, message } => error(format!(
                        "login as {} refused (wrong user or password?): {message} (code {code})",
                        self.user
                    )),
                    Failure::Other(message) => error(message),
                })?;
        let login: LoginResult = serde_json::from_value(reply.result)
            .map_err(|e| error(format!("unexpected reply to Session.login: {e}")))?;
        Ok(Session {
            token: login.token,
            cookie: reply.cookie,
        })
    }

    /// One HTTP round trip; `result.errors[]` counts as a failure.
    async fn send(
        &self,
        method: &str,
        params: &Value,
        session: Option<&Session>,
    ) -> Result<Reply, Failure> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut request = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json-rpc; charset=UTF-8")
            .header(ACCEPT, "application/json-rpc")
            .json(&body);
        if let Some(session) = session {
            request = request.header("X-Token", &session.token);
            if !session.cookie.is_empty() {
                request = request.header(COOKIE, &session.cookie);
            }
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Other(self.describe_transport_error(&e)))?;
        let status = response.status();
        let cookie = session_cookie(response.headers());
        let bytes = response.bytes().await.map_err(|e| {
            Failure::Other(format!(
                "reading the reply to {method} from {} failed: {}",
                self.url,
                chain(&e)
            ))
        })?;
        if status != StatusCode::OK {
            return Err(Failure::Other(format!(
                "{method}: HTTP {status} from {} (is `url` the Admin API endpoint, \
                 …/admin/api/jsonrpc/?): {}",
                self.url,
                excerpt(&bytes)
            )));
        }
        let envelope: Envelope = serde_json::from_slice(&bytes).map_err(|_| {
            Failure::Other(format!(
                "{method}: the reply from {} is not JSON-RPC (is `url` the Admin API endpoint, \
                 …/admin/api/jsonrpc/?): {}",
                self.url,
                excerpt(&bytes)
            ))
        })?;
        if let Some(RpcError { code, message }) = envelope.error {
            return Err(Failure::Rpc { code, message });
        }
        let Some(result) = envelope.result else {
            return Err(Failure::Other(format!(
                "{method}: the reply has neither result nor error: {}",
                excerpt(&bytes)
            )));
        };
        refusals(method, &result)?;
        Ok(Reply { result, cookie })
    }

    fn describe_transport_error(&self, e: &reqwest::Error) -> String {
        let pin_mismatch = self
            .pin_mismatch
            .as_ref()
            .and_then(|slot| slot.lock().ok().and_then(|mut slot| slot.take()));
        if let Some(mismatch) = pin_mismatch {
            return mismatch;
        }
        let details = chain(e);
        let hint = if self.pin_mismatch.is_none() && details.contains("certificate") {
            " (Kerio's default certificate is self-signed: set tls_pin_sha256 to its \
             SHA-256 fingerprint)"
        } else {
            ""
        };
        format!("cannot reach {}: {details}{hint}", self.url)
    }
}

/// Kerio reports refused items inside `result.errors[]` with HTTP 200.
fn refusals(method: &str, result: &Value) -> Result<(), Failure> {
    let Some(errors) = result.get("errors") else {
        return Ok(());
    };
    let errors: Vec<ItemError> = serde_json::from_value(errors.clone())
        .map_err(|e| Failure::Other(format!("{method}: unreadable result.errors: {e}")))?;
    if errors.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = errors.iter().map(ItemError::to_string).collect();
    Err(Failure::Other(format!(
        "{method} refused: {}",
        list.join("; ")
    )))
}

/// The `name=value` parts of every `Set-Cookie`, ready for a `Cookie` header.
fn session_cookie(headers: &HeaderMap) -> String {
    let pairs: Vec<&str> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .map(str::trim)
        .filter(|pair| pair.contains('='))
        .collect();
    pairs.join("; ")
}

/// The start of a body, quoted so control characters stay visible.
fn excerpt(bytes: &[u8]) -> String {
    let head = bytes.get(..EXCERPT_BYTES).unwrap_or(bytes);
    let text = String::from_utf8_lossy(head);
    if head.len() < bytes.len() {
        format!("{text:?}…")
    } else {
        format!("{text:?}")
    }
}
