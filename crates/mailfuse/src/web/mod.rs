//! `mailfuse serve`: a small dashboard over the state database that
//! `watch` writes — incidents, locked accounts (Unlock), blocked IPs
//! (Unblock), top senders, recent actions — and `/metrics` with the
//! store's gauges.
//!
//! Security: it listens on localhost unless told otherwise; with a token
//! (`web.token`, in the secrets file) every page needs a login, and every
//! change is a POST with the session's CSRF token; `web.read_only` shows
//! the state to anyone who can reach it and changes nothing. Everything
//! from the store is escaped ([`html_escape`](crate::html_escape)), and a strict
//! Content-Security-Policy allows no script at all.

mod auth;
mod listen;
mod pages;
mod throttle;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, HOST, LOCATION, REFERRER_POLICY, RETRY_AFTER,
    SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use mailfuse_store::Store;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tracing::{info, warn};

use crate::config::Config;
use crate::hint::cannot_listen;
use crate::metrics::{KindLabel, PREFIX};
use crate::respond::{RespondMetrics, Responder};
use auth::{Denied, Sessions};
use listen::Peer;
use pages::{View, Viewer};
use throttle::Throttle;

/// Rows of each list the dashboard shows.
const ROWS: usize = 100;
/// Largest form accepted.
const MAX_BODY: usize = 16 * 1024;

/// Runs the dashboard until SIGTERM or SIGINT.
pub fn serve(config: Config) -> Result<()> {
    let web = config.web.clone();
    if web.token.is_none() && !web.read_only {
        bail!(
            "web.token is not set: put it in the secrets file (watch.secrets), \
             or set web.read_only = true to only show the state"
        );
    }
    let store = crate::open_state(&config.watch.state)?;
    let responder = Responder::new(&config, RespondMetrics::default())?;
    let app = Arc::new(App {
        backend: Mutex::new(Backend { store, responder }),
        sessions: Sessions::new(web.token.clone()),
        read_only: web.read_only,
        hosts: web
            .hosts
            .iter()
            .map(|host| host.to_ascii_lowercase())
            .collect(),
        gauges: StoreGauges::default(),
        throttle: Throttle::new(web.login_attempts, web.login_attempts_global),
        request_timeout: Duration::from_secs(web.request_timeout.unsigned_abs()),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(web.listen)
            .await
            .map_err(|e| cannot_listen(&e, "the dashboard", web.listen, "web.listen"))?;
        info!(
            listen = %web.listen,
            read_only = web.read_only,
            tls = web.tls_config.is_some(),
            "serving the dashboard"
        );
        listen::serve(
            listener,
            router(app.clone()),
            web.tls_config.clone(),
            app.request_timeout,
            crate::signals::stopped(),
        )
        .await
        .context("the dashboard stopped")
    });
    // The responder's own runtime must not be dropped inside this one.
    drop(runtime);
    drop(app);
    served
}

/// The store and the actions, used by one request at a time.
struct Backend {
    store: Store,
    responder: Responder,
}

struct App {
    backend: Mutex<Backend>,
    sessions: Sessions,
    read_only: bool,
    /// Lower-cased host names allowed in `Host:` besides IPs and localhost.
    hosts: Vec<String>,
    gauges: StoreGauges,
    throttle: Throttle,
    /// How long a client may take to send a request's headers, and its body.
    request_timeout: Duration,
}

impl App {
    /// Whether the change `form` asks for may be made (session, CSRF token,
    /// not read-only).
    fn authorize(&self, headers: &HeaderMap, form: &ChangeForm) -> Result<(), Denied> {
        self.sessions
            .authorize(headers, form.csrf.as_deref(), self.read_only)
    }

    /// Runs `work` on the backend on a blocking thread (the store and the
    /// actions block).
    async fn with_backend<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut Backend) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut backend = app
                .backend
                .lock()
                .map_err(|_| anyhow::anyhow!("a request failed while holding the store"))?;
            work(&mut backend)
        })
        .await?
    }
}

/// The store's gauges, refreshed at each scrape.
#[derive(Default)]
struct StoreGauges {
    locks: Gauge,
    blocks: Gauge,
    incidents: Family<KindLabel, Gauge>,
}

impl StoreGauges {
    fn registry(&self, throttle: &Throttle) -> Registry {
        let mut registry = Registry::with_prefix(PREFIX);
        registry.register(
            "web_login_throttled",
            "Login attempts refused (429) by the per-client or the global limit",
            throttle.throttled.clone(),
        );
        registry.register(
            "store_locks",
            "Accounts locked, as the store says",
            self.locks.clone(),
        );
        registry.register(
            "store_blocks",
            "IPs blocked, as the store says",
            self.blocks.clone(),
        );
        registry.register(
            "store_incidents",
            "Incidents in the store, by kind",
            self.incidents.clone(),
        );
        registry
    }
}

/// The CSP nonce of this response's inline style.
#[derive(Clone)]
struct Nonce(String);

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/unlock", post(unlock))
        .route("/unblock", post(unblock))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(app.clone(), body_deadline))
        .layer(middleware::from_fn_with_state(app.clone(), known_host))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

/// Reads a request's body (at most [`MAX_BODY`]) within the request
/// timeout, so a client that sends its headers and then trickles or holds
/// back the body gets 408 and its connection closed instead of holding it.
async fn body_deadline(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let read = axum::body::to_bytes(body, MAX_BODY);
    match tokio::time::timeout(app.request_timeout, read).await {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, bytes.into())).await,
        Ok(Err(_)) => (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response(),
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "request body too slow").into_response(),
    }
}

/// Adds the headers every response needs: a CSP that allows only this
/// response's inline style (no script, no frames, forms to here only).
async fn security_headers(mut request: Request, next: Next) -> Response {
    let Some(nonce) = auth::random_hex(16) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    request.extensions_mut().insert(Nonce(nonce.clone()));
    let mut response = next.run(request).await;
    let csp = format!(
        "default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Refuses a request whose `Host:` names a host the dashboard does not know
/// (DNS rebinding: an attacker's name resolving to 127.0.0.1). Without a
/// `Host:` (scrapers speaking HTTP/1.0) it is not a browser: let through.
async fn known_host(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(HOST)
        .map(|value| value.to_str().map(host_name));
    match host {
        None => next.run(request).await,
        Some(Ok(name)) if allowed_host(&name, &app.hosts) => next.run(request).await,
        _ => (
            StatusCode::MISDIRECTED_REQUEST,
            "unknown Host: add the name you reach the dashboard by to web.hosts\n",
        )
            .into_response(),
    }
}

/// The host of a `Host:` value, lower-cased, without port or brackets.
fn host_name(value: &str) -> String {
    let value = value.trim();
    let name = match value.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => value.rsplit_once(':').map_or(value, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                value
            }
        }),
    };
    name.to_ascii_lowercase()
}

fn allowed_host(name: &str, hosts: &[String]) -> bool {
    name.parse::<IpAddr>().is_ok() || name == "localhost" || hosts.iter().any(|h| h == name)
}

fn see_other(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

fn refused(nonce: &Nonce, denied: Denied) -> Response {
    (
        denied.status(),
        Html(pages::message(&nonce.0, denied.message())),
    )
        .into_response()
}

fn failed(nonce: &Nonce, error: &anyhow::Error) -> Response {
    warn!("{error:#}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(pages::message(&nonce.0, &format!("{error:#}"))),
    )
        .into_response()
}

async fn dashboard(
    State(app): State<Arc<App>>,
    Extension(nonce): Extension<Nonce>,
    headers: HeaderMap,
) -> Response {
    let csrf = app.sessions.csrf_of(&headers);
    let viewer = match (&csrf, app.sessions.enabled(), app.read_only) {
        (Some(csrf), _, false) => Viewer::Admin { csrf },
        // Logged in, or nothing to log in with: the read-only view.
        (Some(_), _, true) | (None, false, _) => Viewer::ReadOnly,
        (None, true, _) => return see_other("/login"),
    };
    let view = app
        .with_backend(|backend| {
            let store = &backend.store;
            Ok(View {
                incidents: store.recent_incidents(ROWS)?,
                locks: store.locks()?,
                blocks: store.blocks()?,
                senders: store.senders()?.into_iter().take(ROWS).collect(),
                actions: store.recent_actions(ROWS)?,
                now: crate::source::now(),
            })
        })
        .await;
    match view {
        Ok(view) => Html(pages::dashboard(&nonce.0, &view, &viewer)).into_response(),
        Err(e) => failed(&nonce, &e),
    }
}

async fn login_form(Extension(nonce): Extension<Nonce>) -> Response {
    Html(pages::login(&nonce.0, false)).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    token: String,
}

async fn login(
    State(app): State<Arc<App>>,
    Extension(nonce): Extension<Nonce>,
    Extension(Peer(peer)): Extension<Peer>,
    Form(form): Form<LoginForm>,
) -> Response {
    let permit = match app.throttle.attempt(peer.ip()) {
        Ok(permit) => permit,
        Err(wait) => return throttled(wait),
    };
    match app.sessions.log_in(&form.token) {
        Some(started) => {
            app.throttle.succeeded(permit);
            info!("logged in");
            let mut response = see_other("/");
            if let Ok(cookie) = HeaderValue::from_str(&auth::session_cookie(&started.id)) {
                response.headers_mut().insert(SET_COOKIE, cookie);
            }
            response
        }
        None => {
            warn!(client = %peer.ip(), "wrong token at login");
            // Slows guessing down.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            (StatusCode::UNAUTHORIZED, Html(pages::login(&nonce.0, true))).into_response()
        }
    }
}

/// The answer to a login attempt over the limits: 429, and when to retry.
fn throttled(wait: Duration) -> Response {
    let seconds = wait.as_secs();
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        format!("Too many login attempts: try again in {seconds} s."),
    )
        .into_response();
    response
        .headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(seconds));
    response
}

/// A form that changes something: which, and the CSRF token.
#[derive(Deserialize)]
struct ChangeForm {
    csrf: Option<String>,
    account: Option<String>,
    ip: Option<String>,
}

async fn logout(
    State(app): State<Arc<App>>,
    Extension(nonce): Extension<Nonce>,
    headers: HeaderMap,
    Form(form): Form<ChangeForm>,
) -> Response {
    // Logging out is allowed in read-only mode.
    if let Err(denied) = app
        .sessions
        .authorize(&headers, form.csrf.as_deref(), false)
    {
        return refused(&nonce, denied);
    }
    app.sessions.log_out(&headers);
    let mut response = see_other("/login");
    if let Ok(cookie) = HeaderValue::from_str(&auth::cleared_cookie()) {
        response.headers_mut().insert(SET_COOKIE, cookie);
    }
    response
}

async fn unlock(
    State(app): State<Arc<App>>,
    Extension(nonce): Extension<Nonce>,
    headers: HeaderMap,
    Form(form): Form<ChangeForm>,
) -> Response {
    if let Err(denied) = app.authorize(&headers, &form) {
        return refused(&nonce, denied);
    }
    let Some(account) = form.account.filter(|a| !a.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "which account?").into_response();
    };
    change(&app, &nonce, move |backend| {
        let unlocked = backend.responder.unlock(&mut backend.store, &account)?;
        info!(account, unlocked, "unlock from the dashboard");
        Ok(())
    })
    .await
}

async fn unblock(
    State(app): State<Arc<App>>,
    Extension(nonce): Extension<Nonce>,
    headers: HeaderMap,
    Form(form): Form<ChangeForm>,
) -> Response {
    if let Err(denied) = app.authorize(&headers, &form) {
        return refused(&nonce, denied);
    }
    let Some(ip) = form.ip.and_then(|ip| ip.parse::<IpAddr>().ok()) else {
        return (StatusCode::BAD_REQUEST, "not an IP address").into_response();
    };
    change(&app, &nonce, move |backend| {
        let unblocked = backend.responder.unblock(&mut backend.store, ip)?;
        info!(%ip, unblocked, "unblock from the dashboard");
        Ok(())
    })
    .await
}

/// Makes an authorized change, then shows the dashboard again.
async fn change(
    app: &Arc<App>,
    nonce: &Nonce,
    work: impl FnOnce(&mut Backend) -> Result<()> + Send + 'static,
) -> Response {
    match app.with_backend(work).await {
        Ok(()) => see_other("/"),
        Err(e) => failed(nonce, &e),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let counts = app
        .with_backend(|backend| {
            let store = &backend.store;
            Ok((
                store.locks()?.len(),
                store.blocks()?.len(),
                store.incident_counts()?,
            ))
        })
        .await;
    let (locks, blocks, incidents) = match counts {
        Ok(counts) => counts,
        Err(e) => {
            warn!("metrics: {e:#}");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let gauges = &app.gauges;
    gauges.locks.set(i64::try_from(locks).unwrap_or(i64::MAX));
    gauges.blocks.set(i64::try_from(blocks).unwrap_or(i64::MAX));
    gauges.incidents.clear();
    for (kind, count) in incidents {
        if let Some(kind) = known_kind(&kind) {
            gauges
                .incidents
                .get_or_create(&KindLabel { kind })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
    crate::metrics::exposition(&gauges.registry(&app.throttle))
}

/// The incident kinds there are: a label takes no other value.
fn known_kind(kind: &str) -> Option<&'static str> {
    use mailfuse_detect::IncidentKind;
    IncidentKind::ALL
        .into_iter()
        .map(IncidentKind::name)
        .find(|name| *name == kind)
}

#[cfg(test)]
mod host_tests {
    use super::*;

    #[test]
    fn ips_localhost_and_listed_names_are_known_hosts() {
        let hosts = vec!["mail.example.com".to_string()];
        for value in [
            "127.0.0.1:8025",
            "127.0.0.1",
            "[::1]:8025",
            "localhost:8025",
            "LOCALHOST",
            "Mail.Example.com:8025",
            "192.0.2.7",
        ] {
            assert!(allowed_host(&host_name(value), &hosts), "{value}");
        }
        for value in [
            "evil.example:8025",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "mail.example.com.evil.example",
            "",
        ] {
            assert!(!allowed_host(&host_name(value), &hosts), "{value}");
        }
    }
}
