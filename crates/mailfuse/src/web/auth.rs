//! Who may change things: the admin who logged in with `web.token`. A login
//! starts a session (a random id in an HttpOnly, SameSite=Strict cookie)
//! with its own CSRF token, which every form carries in a hidden field and
//! every change must send back. Tokens are compared in constant time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, StatusCode};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "mailfuse_session";
/// How long a login lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most: logging in again and again cannot fill memory.
const MAX_SESSIONS: usize = 256;

/// Why a change was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No valid session: log in first.
    NotLoggedIn,
    /// The form's CSRF token is missing or is not the session's.
    BadCsrf,
    /// `web.read_only` is set.
    ReadOnly,
}

impl Denied {
    pub fn status(self) -> StatusCode {
        match self {
            Denied::NotLoggedIn => StatusCode::UNAUTHORIZED,
            Denied::BadCsrf | Denied::ReadOnly => StatusCode::FORBIDDEN,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Denied::NotLoggedIn => "Log in first.",
            Denied::BadCsrf => {
                "The form is stale or did not come from this page: reload and try again."
            }
            Denied::ReadOnly => "This dashboard is read-only (web.read_only).",
        }
    }
}

struct Session {
    csrf: String,
    expires: Instant,
}

/// The live sessions and the token that starts one.
pub struct Sessions {
    token: Option<String>,
    live: Mutex<HashMap<String, Session>>,
}

/// A started session: the cookie's value and the forms' CSRF token.
pub struct Started {
    pub id: String,
    pub csrf: String,
}

impl Sessions {
    pub fn new(token: Option<String>) -> Sessions {
        Sessions {
            token,
            live: Mutex::new(HashMap::new()),
        }
    }

    /// Whether logging in is possible at all (a token is configured).
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// Starts a session if `given` is the configured token.
    pub fn log_in(&self, given: &str) -> Option<Started> {
        let token = self.token.as_deref()?;
        if !same_secret(given, token) {
            return None;
        }
        let started = Started {
            id: random_hex(32)?,
            csrf: random_hex(32)?,
        };
        let mut live = self.live.lock().ok()?;
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        if live.len() >= MAX_SESSIONS {
            let oldest = live
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                live.remove(&oldest);
            }
        }
        live.insert(
            started.id.clone(),
            Session {
                csrf: started.csrf.clone(),
                expires: now + SESSION_LIFETIME,
            },
        );
        Some(started)
    }

    /// The CSRF token of the request's live session, if it has one.
    pub fn csrf_of(&self, headers: &HeaderMap) -> Option<String> {
        let id = cookie(headers, COOKIE_NAME)?;
        let live = self.live.lock().ok()?;
        live.get(id)
            .filter(|s| s.expires > Instant::now())
            .map(|s| s.csrf.clone())
    }

    /// Ends the request's session.
    pub fn log_out(&self, headers: &HeaderMap) {
        if let (Some(id), Ok(mut live)) = (cookie(headers, COOKIE_NAME), self.live.lock()) {
            live.remove(id);
        }
    }

    /// Whether a change may be made: a live session, and the form sent its
    /// CSRF token.
    pub fn authorize(
        &self,
        headers: &HeaderMap,
        form_csrf: Option<&str>,
        read_only: bool,
    ) -> Result<(), Denied> {
        if read_only {
            return Err(Denied::ReadOnly);
        }
        let expected = self.csrf_of(headers).ok_or(Denied::NotLoggedIn)?;
        match form_csrf {
            Some(given) if same_secret(given, &expected) => Ok(()),
            _ => Err(Denied::BadCsrf),
        }
    }
}

/// The `Set-Cookie` value that keeps a session.
pub fn session_cookie(id: &str) -> String {
    format!(
        "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that forgets the session.
pub fn cleared_cookie() -> String {
    format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// Compares secrets in time that does not depend on where they differ.
fn same_secret(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then_some(value)
        })
}

/// `bytes` random bytes from the system, in hex; none if the system has
/// no randomness to give.
pub fn random_hex(bytes: usize) -> Option<String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).ok()?;
    Some(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const TOKEN: &str = "correct-horse-battery-staple";

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_change_needs_a_session_and_its_csrf_token() {
        let sessions = Sessions::new(Some(TOKEN.into()));
        assert!(sessions.log_in("wrong").is_none());
        assert!(sessions.log_in("").is_none());
        assert!(sessions.log_in(&format!("{TOKEN}x")).is_none());
        let started = sessions.log_in(TOKEN).unwrap();
        assert_eq!(started.id.len(), 64);
        assert_ne!(started.id, started.csrf);
        let headers = with_cookie(&format!("theme=dark; {COOKIE_NAME}={}", started.id));
        assert_eq!(
            sessions.authorize(&headers, Some(&started.csrf), false),
            Ok(())
        );
        assert_eq!(
            sessions.authorize(&headers, None, false),
            Err(Denied::BadCsrf)
        );
        assert_eq!(
            sessions.authorize(&headers, Some("00"), false),
            Err(Denied::BadCsrf)
        );
        assert_eq!(
            sessions.authorize(&HeaderMap::new(), Some(&started.csrf), false),
            Err(Denied::NotLoggedIn)
        );
        let forged = with_cookie(&format!("{COOKIE_NAME}={}", started.csrf));
        assert_eq!(
            sessions.authorize(&forged, Some(&started.csrf), false),
            Err(Denied::NotLoggedIn)
        );
        assert_eq!(
            sessions.authorize(&headers, Some(&started.csrf), true),
            Err(Denied::ReadOnly)
        );
        sessions.log_out(&headers);
        assert_eq!(
            sessions.authorize(&headers, Some(&started.csrf), false),
            Err(Denied::NotLoggedIn)
        );
    }

    #[test]
    fn without_a_token_nobody_logs_in() {
        let sessions = Sessions::new(None);
        assert!(!sessions.enabled());
        assert!(sessions.log_in("").is_none());
    }

    #[test]
    fn sessions_are_capped() {
        let sessions = Sessions::new(Some(TOKEN.into()));
        let first = sessions.log_in(TOKEN).unwrap();
        for _ in 0..MAX_SESSIONS {
            sessions.log_in(TOKEN).unwrap();
        }
        assert_eq!(sessions.live.lock().unwrap().len(), MAX_SESSIONS);
        let headers = with_cookie(&format!("{COOKIE_NAME}={}", first.id));
        assert!(sessions.csrf_of(&headers).is_none(), "the oldest went");
    }

    #[test]
    fn odd_cookie_headers_find_nothing() {
        for value in ["", ";;;", "mailfuse_session", "x=1; mailfuse_sessionx=2"] {
            assert_eq!(cookie(&with_cookie(value), COOKIE_NAME), None, "{value}");
        }
    }
}
