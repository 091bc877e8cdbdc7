//! A Kerio Connect Administration API emulator for the tests.
//!
//! Kerio Connect is proprietary and cannot be installed here, so this
//! follows Kerio's published JSON-RPC API (the Admin API reference): HTTPS
//! with a self-signed certificate, `Session.login` giving a token and the
//! `SESSION_CONNECT_WEBADMIN` cookie, both required on every later call,
//! error -32001 for an unknown or expired session, refusals in
//! `result.errors[]` with HTTP 200, and the `Domains`, `Users`, `Queue` and
//! `IpAddressGroups` methods the action uses, with Kerio's field names
//! (for the audit: `Users.get` with `emailForwarding`, `lastLoginInfo`,
//! `authType` and `isPasswordReversible`; `Domains.get` with the domain's
//! password policy, `passwordComplexityEnabled`, `passwordMinimumLength`,
//! `passwordExpirationEnabled`, `passwordExpirationDays`,
//! `passwordHistoryCount`).
//! The mailfuse crate's tests include this file too (`#[path]`).
//! Search queries support the `Eq` comparator and `start`/`limit` paging.
//! It keeps everything in memory and records the calls it received.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse";
const COOKIE_NAME: &str = "SESSION_CONNECT_WEBADMIN";
const PATH: &str = "/admin/api/jsonrpc/";

/// A call the emulator received.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: Value,
}

#[derive(Debug, Clone)]
pub struct QueuedMessage {
    pub id: String,
    pub from: String,
    pub auth_sender: String,
    pub to: String,
}

struct User {
    id: String,
    domain_id: String,
    login_name: String,
    enabled: bool,
    /// Users.set answers with `result.errors` for this user.
    refusal: Option<String>,
    /// `emailForwarding`: the mode and the addresses.
    forwarding: (&'static str, Vec<String>),
    /// `lastLoginInfo`: seconds since 1970 (0: never) and the protocol.
    last_login: (i64, String),
    /// `authType`: `UInternalAuth`, or a directory service's.
    auth_type: &'static str,
    /// `isPasswordReversible`.
    password_reversible: bool,
}

impl User {
    /// The user as Users.get shows it, with Kerio's field names.
    fn json(&self) -> Value {
        json!({
            "id": self.id, "loginName": self.login_name, "isEnabled": self.enabled,
            "emailForwarding": {"mode": self.forwarding.0, "emailAddresses": self.forwarding.1},
            "lastLoginInfo": {"dateTime": self.last_login.0, "protocol": self.last_login.1},
            "authType": self.auth_type, "isPasswordReversible": self.password_reversible,
        })
    }
}

/// A domain, with its password policy (none, as a new domain's).
struct Domain {
    id: String,
    name: String,
    complexity: bool,
    minimum_length: u32,
    /// `passwordExpirationEnabled` and `passwordExpirationDays`.
    expiration: (bool, u32),
    history: u32,
}

impl Domain {
    /// The domain as Domains.get shows it, with Kerio's field names.
    fn json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name,
            "passwordComplexityEnabled": self.complexity,
            "passwordMinimumLength": self.minimum_length,
            "passwordExpirationEnabled": self.expiration.0,
            "passwordExpirationDays": self.expiration.1,
            "passwordHistoryCount": self.history,
        })
    }
}

#[derive(Clone)]
struct IpEntry {
    id: String,
    group_id: String,
    group_name: String,
    host: String,
    description: String,
}

/// A reply to send instead of the real one, once.
struct BrokenReply {
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
}

#[derive(Default)]
struct State {
    /// token → cookie value.
    sessions: HashMap<String, String>,
    domains: Vec<Domain>,
    users: Vec<User>,
    queue: Vec<QueuedMessage>,
    ip_entries: Vec<IpEntry>,
    calls: Vec<Call>,
    next_id: u64,
    broken_reply: Option<BrokenReply>,
}

impl State {
    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("keriodb://{prefix}/{:08x}", self.next_id)
    }
}

pub struct Emulator {
    pub addr: SocketAddr,
    cert_der: Vec<u8>,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Emulator {
    /// Starts on a free loopback port with a fresh self-signed certificate.
    pub async fn start() -> Emulator {
        let rcgen::CertifiedKey { cert, signing_key } =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .unwrap();
        let cert_der = cert.der().to_vec();
        let key = rustls::pki_types::PrivatePkcs8KeyDer::from(signing_key.serialize_der());
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key.into())
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let server = tokio::spawn(serve(listener, acceptor, Arc::clone(&state)));
        Emulator {
            addr,
            cert_der,
            state,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("https://{}{PATH}", self.addr)
    }

    /// SHA-256 of the certificate, `AB:CD:…`.
    pub fn pin(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.cert_der);
        let hex: Vec<String> = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        hex.join(":")
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    pub fn add_user(&self, address: &str, enabled: bool) {
        let (local, domain) = address.split_once('@').unwrap();
        self.with(|state| {
            let domain_id = match state.domains.iter().find(|d| d.name == domain) {
                Some(known) => known.id.clone(),
                None => {
                    let id = state.new_id("domain");
                    state.domains.push(Domain {
                        id: id.clone(),
                        name: domain.to_owned(),
                        complexity: false,
                        minimum_length: 8,
                        expiration: (false, 0),
                        history: 0,
                    });
                    id
                }
            };
            let id = state.new_id("user");
            state.users.push(User {
                id,
                domain_id,
                login_name: local.to_owned(),
                enabled,
                refusal: None,
                forwarding: ("UForwardNone", Vec::new()),
                last_login: (0, String::new()),
                auth_type: "UInternalAuth",
                password_reversible: false,
            });
        });
    }

    /// Sets the password policy of `domain` (of a user added before):
    /// complexity from `minimum_length` characters, expiry after
    /// `expires_after_days`, `history` passwords remembered.
    pub fn password_policy(
        &self,
        domain: &str,
        complexity: bool,
        minimum_length: u32,
        expires_after_days: Option<u32>,
        history: u32,
    ) {
        self.with(|state| {
            let domain = state.domains.iter_mut().find(|d| d.name == domain).unwrap();
            domain.complexity = complexity;
            domain.minimum_length = minimum_length;
            domain.expiration = (
                expires_after_days.is_some(),
                expires_after_days.unwrap_or(0),
            );
            domain.history = history;
        });
    }

    /// The user's password is checked by a directory service (`authType`,
    /// e.g. `ULDAPAuth`), not by Kerio.
    pub fn authenticated_by(&self, address: &str, auth_type: &'static str) {
        self.with_user(address, |user| user.auth_type = auth_type);
    }

    /// The user's password is stored reversibly (`isPasswordReversible`).
    pub fn store_password_reversibly(&self, address: &str) {
        self.with_user(address, |user| user.password_reversible = true);
    }

    /// Users.set will refuse any change to this user, in `result.errors`.
    pub fn refuse_changes_to(&self, address: &str, message: &str) {
        let (local, _) = address.split_once('@').unwrap();
        self.with(|state| {
            for user in state.users.iter_mut().filter(|u| u.login_name == local) {
                user.refusal = Some(message.to_owned());
            }
        });
    }

    /// Forwards the user's mail to `to`; `keep`: a copy stays in its
    /// mailbox (`UForwardDelivery`), else not (`UForwardYes`).
    pub fn forward(&self, address: &str, to: &str, keep: bool) {
        let mode = if keep {
            "UForwardDelivery"
        } else {
            "UForwardYes"
        };
        self.with_user(address, |user| {
            user.forwarding = (mode, vec![to.to_owned()])
        });
    }

    /// Records the user's last login: `at` in seconds since 1970.
    pub fn last_login(&self, address: &str, at: i64, protocol: &str) {
        self.with_user(address, |user| user.last_login = (at, protocol.to_owned()));
    }

    fn with_user(&self, address: &str, f: impl FnOnce(&mut User)) {
        let (local, _) = address.split_once('@').unwrap();
        self.with(|state| {
            f(state
                .users
                .iter_mut()
                .find(|u| u.login_name == local)
                .unwrap())
        });
    }

    pub fn user_enabled(&self, address: &str) -> bool {
        let (local, _) = address.split_once('@').unwrap();
        self.with(|state| {
            state
                .users
                .iter()
                .find(|u| u.login_name == local)
                .unwrap()
                .enabled
        })
    }

    pub fn queue_message(&self, from: &str, auth_sender: &str, to: &str) -> String {
        self.with(|state| {
            let id = format!("{:08X}-{:05}", 0x5D3A_1B2Cu32, state.next_id);
            state.next_id += 1;
            state.queue.push(QueuedMessage {
                id: id.clone(),
                from: from.to_owned(),
                auth_sender: auth_sender.to_owned(),
                to: to.to_owned(),
            });
            id
        })
    }

    pub fn queue(&self) -> Vec<QueuedMessage> {
        self.with(|state| state.queue.clone())
    }

    pub fn add_ip_entry(&self, group: &str, host: &str) {
        self.with(|state| {
            let group_id = group_id_for(state, group);
            let id = state.new_id("ipentry");
            state.ip_entries.push(IpEntry {
                id,
                group_id,
                group_name: group.to_owned(),
                host: host.to_owned(),
                description: String::new(),
            });
        });
    }

    /// `(host, description)` of every entry of `group`.
    pub fn ip_group(&self, group: &str) -> Vec<(String, String)> {
        self.with(|state| {
            state
                .ip_entries
                .iter()
                .filter(|e| e.group_name == group)
                .map(|e| (e.host.clone(), e.description.clone()))
                .collect()
        })
    }

    /// Forgets every session, as Kerio does after its idle timeout.
    pub fn expire_sessions(&self) {
        self.with(|state| state.sessions.clear());
    }

    /// The next request gets this reply instead of the real one.
    pub fn break_next_reply(&self, status: u16, content_type: &'static str, body: &'static str) {
        self.with(|state| {
            state.broken_reply = Some(BrokenReply {
                status: StatusCode::from_u16(status).unwrap(),
                content_type,
                body,
            })
        });
    }

    pub fn calls(&self) -> Vec<Call> {
        self.with(|state| state.calls.clone())
    }

    pub fn methods(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.method).collect()
    }
}

fn group_id_for(state: &mut State, group: &str) -> String {
    match state.ip_entries.iter().find(|e| e.group_name == group) {
        Some(entry) => entry.group_id.clone(),
        None => state.new_id("ipgroup"),
    }
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<Mutex<State>>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            // A client that rejects the certificate ends here.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = hyper::service::service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(handle(request, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn handle(request: Request<Incoming>, state: &Mutex<State>) -> Response<Full<Bytes>> {
    if request.method() != hyper::Method::POST || request.uri().path() != PATH {
        return reply(
            StatusCode::NOT_FOUND,
            "text/html",
            "<h1>Not found</h1>".into(),
        );
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let token = header("x-token");
    let cookie = header("cookie");
    let Ok(body) = request.into_body().collect().await else {
        return reply(StatusCode::BAD_REQUEST, "text/plain", "bad body".into());
    };
    let mut state = state.lock().unwrap();
    if let Some(broken) = state.broken_reply.take() {
        return reply(broken.status, broken.content_type, broken.body.into());
    }
    let Ok(call) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
        return rpc_reply(Value::Null, Err((-32700, "Parse error".into())), None);
    };
    let id = call["id"].clone();
    let method = call["method"].as_str().unwrap_or_default().to_owned();
    let params = call["params"].clone();
    state.calls.push(Call {
        method: method.clone(),
        params: params.clone(),
    });
    if method == "Session.login" {
        return login(&mut state, id, &params);
    }
    let session_ok = token
        .as_ref()
        .and_then(|token| state.sessions.get(token))
        .is_some_and(|value| {
            let expected = format!("{COOKIE_NAME}={value}");
            cookie
                .as_deref()
                .is_some_and(|c| c.split("; ").any(|pair| pair == expected))
        });
    if !session_ok {
        return rpc_reply(id, Err((-32001, "Session expired.".into())), None);
    }
    if method == "Session.logout" {
        if let Some(token) = token {
            state.sessions.remove(&token);
        }
        return rpc_reply(id, Ok(json!({})), None);
    }
    let outcome = dispatch(&mut state, &method, &params);
    rpc_reply(id, outcome, None)
}

fn login(state: &mut State, id: Value, params: &Value) -> Response<Full<Bytes>> {
    if !params["application"].is_object() {
        return rpc_reply(id, Err((-32602, "Invalid params.".into())), None);
    }
    if params["userName"] != ADMIN || params["password"] != ADMIN_PASSWORD {
        return rpc_reply(
            id,
            Err((1000, "User name or password is incorrect.".into())),
            None,
        );
    }
    let token = state.new_id("token").replace('/', "");
    let cookie = state.new_id("cookie").replace('/', "");
    state.sessions.insert(token.clone(), cookie.clone());
    let set_cookie = format!("{COOKIE_NAME}={cookie}; path=/admin/; Secure; HttpOnly");
    rpc_reply(id, Ok(json!({ "token": token })), Some(set_cookie))
}

type Outcome = Result<Value, (i64, String)>;

fn dispatch(state: &mut State, method: &str, params: &Value) -> Outcome {
    match method {
        "Domains.get" => {
            let domains = state.domains.iter().map(Domain::json).collect();
            search(domains, &params["query"])
        }
        "Users.get" => {
            let domain_id = params["domainId"].as_str().unwrap_or_default();
            let users = state
                .users
                .iter()
                .filter(|u| u.domain_id == domain_id)
                .map(User::json)
                .collect();
            search(users, &params["query"])
        }
        "Users.set" => {
            let Some(ids) = params["userIds"].as_array() else {
                return Err((-32602, "Invalid params.".into()));
            };
            let enabled = params["pattern"]["isEnabled"].as_bool();
            let mut errors = Vec::new();
            for (index, id) in ids.iter().enumerate() {
                match state.users.iter_mut().find(|u| *id == u.id.as_str()) {
                    None => errors.push(item_error(index, "User does not exist.")),
                    Some(User {
                        refusal: Some(message),
                        ..
                    }) => errors.push(item_error(index, message)),
                    Some(user) => {
                        if let Some(enabled) = enabled {
                            user.enabled = enabled;
                        }
                    }
                }
            }
            Ok(json!({ "errors": errors }))
        }
        "Queue.get" => {
            let messages = state
                .queue
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id, "creationTime": "2026-05-04 10:01", "nextTry": "2026-05-04 10:31",
                        "messageSize": {"value": 4, "units": "KiloBytes"},
                        "from": m.from, "to": m.to, "status": "Backed off",
                        "authSender": m.auth_sender, "senderIp": "198.51.100.7",
                    })
                })
                .collect();
            search(messages, &params["query"])
        }
        "Queue.remove" => {
            let Some(ids) = params["messageIds"].as_array() else {
                return Err((-32602, "Invalid params.".into()));
            };
            let before = state.queue.len();
            state
                .queue
                .retain(|m| !ids.iter().any(|id| *id == m.id.as_str()));
            Ok(json!({ "deleteItems": before - state.queue.len() }))
        }
        "IpAddressGroups.get" => {
            let entries = state
                .ip_entries
                .iter()
                .map(|e| {
                    json!({
                        "id": e.id, "groupId": e.group_id, "groupName": e.group_name,
                        "type": "Host", "host": e.host, "description": e.description,
                        "enabled": true,
                    })
                })
                .collect();
            search(entries, &params["query"])
        }
        "IpAddressGroups.create" => {
            let Some(groups) = params["groups"].as_array() else {
                return Err((-32602, "Invalid params.".into()));
            };
            let mut created = Vec::new();
            for (index, group) in groups.iter().enumerate() {
                let name = group["groupName"].as_str().unwrap_or_default().to_owned();
                let group_id = match group["groupId"].as_str() {
                    Some(id) if !id.is_empty() => id.to_owned(),
                    _ => group_id_for(state, &name),
                };
                let id = state.new_id("ipentry");
                state.ip_entries.push(IpEntry {
                    id: id.clone(),
                    group_id,
                    group_name: name,
                    host: group["host"].as_str().unwrap_or_default().to_owned(),
                    description: group["description"].as_str().unwrap_or_default().to_owned(),
                });
                created.push(json!({"inputIndex": index, "id": id}));
            }
            Ok(json!({"errors": [], "result": created}))
        }
        "IpAddressGroups.remove" => {
            let Some(ids) = params["groupIds"].as_array() else {
                return Err((-32602, "Invalid params.".into()));
            };
            let mut errors = Vec::new();
            for (index, id) in ids.iter().enumerate() {
                let before = state.ip_entries.len();
                state.ip_entries.retain(|e| *id != e.id.as_str());
                if state.ip_entries.len() == before {
                    errors.push(item_error(index, "Item does not exist."));
                }
            }
            Ok(json!({ "errors": errors }))
        }
        _ => Err((-32601, "Method not found.".into())),
    }
}

fn item_error(index: usize, message: &str) -> Value {
    json!({
        "inputIndex": index, "code": 1000, "message": message,
        "messageParameters": {"positionalParameters": [], "plurality": 1},
    })
}

/// Kerio's SearchQuery: `Eq` conditions (case-insensitive), `start`, `limit`
/// (-1: all).
fn search(items: Vec<Value>, query: &Value) -> Outcome {
    let conditions = query["conditions"].as_array().cloned().unwrap_or_default();
    if conditions.iter().any(|c| c["comparator"] != "Eq") {
        return Err((-32602, "Comparator not supported by the emulator.".into()));
    }
    let matching: Vec<Value> = items
        .into_iter()
        .filter(|item| {
            conditions.iter().all(|c| {
                let field = c["fieldName"].as_str().unwrap_or_default();
                let wanted = c["value"].as_str().unwrap_or_default();
                item[field]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(wanted))
            })
        })
        .collect();
    let total = matching.len();
    let start = query["start"].as_u64().unwrap_or(0) as usize;
    let limit = match query["limit"].as_i64() {
        Some(limit) if limit >= 0 => limit as usize,
        _ => usize::MAX,
    };
    let list: Vec<Value> = matching.into_iter().skip(start).take(limit).collect();
    Ok(json!({"list": list, "totalItems": total}))
}

fn rpc_reply(id: Value, outcome: Outcome, set_cookie: Option<String>) -> Response<Full<Bytes>> {
    let body = match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err((code, message)) => json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": code, "message": message,
                      "data": {"messageParameters": {"positionalParameters": [], "plurality": 1}}},
        }),
    };
    let mut response = reply(StatusCode::OK, "application/json-rpc", body.to_string());
    if let Some(cookie) = set_cookie {
        response
            .headers_mut()
            .insert(hyper::header::SET_COOKIE, cookie.parse().unwrap());
    }
    response
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, content_type.parse().unwrap());
    response
}
