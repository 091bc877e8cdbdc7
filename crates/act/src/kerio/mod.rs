//! Kerio Connect through its Administration API (JSON-RPC 2.0 on
//! `https://HOST:4040/admin/api/jsonrpc/`): disable a hijacked account,
//! remove the messages it queued, and block the attacker's IP through an IP
//! address group (which Kerio must reference, e.g. in the spam filter's
//! custom blacklist set to Block, or in an access-policy rule).

mod rpc;
mod tls;

use std::net::IpAddr;

use mailfuse_core::Timestamp;
use mailfuse_detect::audit::{DirectoryUser, PasswordPolicy};
use serde::Deserialize;
use serde_json::json;

use crate::capability::{ActFuture, Action, BlockIp, Blocking, LockAccount, QueuedMail};
use crate::ActError;

/// Kerio Connect's section of the configuration.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KerioConfig {
    /// Admin API endpoint, e.g. `https://mail.example.com:4040/admin/api/jsonrpc/`.
    pub url: String,
    /// Administrator login (an account with the right to edit users, the
    /// queue and IP address groups).
    pub user: String,
    /// Its password; the caller reads it from a secrets file.
    pub password: String,
    /// IP address group the blocked IPs are added to.
    #[serde(default = "default_ip_group")]
    pub ip_group: String,
    /// Hex SHA-256 of the server's leaf certificate (DER), colons allowed,
    /// for Kerio's self-signed certificate: when set, only that certificate
    /// is accepted and chain validation is skipped; when unset, the
    /// certificate must chain to the system's roots.
    #[serde(default)]
    pub tls_pin_sha256: Option<String>,
    /// Connect and request timeout, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_ip_group() -> String {
    "mailfuse blocked".to_owned()
}

fn default_timeout_secs() -> u64 {
    10
}

/// Keeps the password out of logs.
impl std::fmt::Debug for KerioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerioConfig")
            .field("url", &self.url)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("ip_group", &self.ip_group)
            .field("tls_pin_sha256", &self.tls_pin_sha256)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// What an action did: the caller records `AlreadyDone` differently (the
/// admin, or an earlier run, got there first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The server changed: the account was disabled, the IP added…
    Done,
    /// The server was already in that state: nothing was changed.
    AlreadyDone,
}

impl Change {
    /// What the change did, in words: `done`, or that it was so already.
    fn said(self, done: &str) -> String {
        match self {
            Change::Done => done.to_string(),
            Change::AlreadyDone => format!("{done} (already)"),
        }
    }
}

/// Queue messages fetched per `Queue.get` call.
const QUEUE_PAGE: u64 = 500;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct List<T> {
    list: Vec<T>,
    /// Absent from some replies; paging then stops at a short page.
    #[serde(default)]
    total_items: Option<u64>,
}

/// A domain found by name: its id.
#[derive(Deserialize)]
struct Domain {
    id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct User {
    id: String,
    login_name: String,
    is_enabled: bool,
}

/// The `Domains.get` fields the audit reads (Kerio's `Domain` structure):
/// the password policy, set per domain. A Kerio without these fields
/// reports no policy, and the audit judges none.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditedDomain {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password_complexity_enabled: Option<bool>,
    #[serde(default)]
    password_minimum_length: i64,
    #[serde(default)]
    password_expiration_enabled: bool,
    #[serde(default)]
    password_expiration_days: i64,
    #[serde(default)]
    password_history_count: i64,
}

/// The domain fields [`Kerio::users`] asks for.
const DOMAIN_FIELDS: [&str; 7] = [
    "id",
    "name",
    "passwordComplexityEnabled",
    "passwordMinimumLength",
    "passwordExpirationEnabled",
    "passwordExpirationDays",
    "passwordHistoryCount",
];

impl AuditedDomain {
    /// The domain's policy as it applies to one of its users, or `None`
    /// when Kerio did not report it.
    fn policy_for(&self, user: &AuditedUser) -> Option<PasswordPolicy> {
        let complexity = self.password_complexity_enabled?;
        let count = |n: i64| u32::try_from(n).unwrap_or(0);
        Some(PasswordPolicy {
            scope: format!("domain {}", self.name),
            complexity,
            minimum_length: count(self.password_minimum_length),
            expires_after_days: (self.password_expiration_enabled
                && self.password_expiration_days > 0)
                .then(|| count(self.password_expiration_days)),
            history: count(self.password_history_count),
            stored_reversibly: user.is_password_reversible,
        })
    }
}

/// The `Users.get` fields the audit reads (Kerio's `User` structure).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditedUser {
    login_name: String,
    is_enabled: bool,
    #[serde(default)]
    email_forwarding: Option<EmailForwarding>,
    #[serde(default)]
    last_login_info: Option<LastLogin>,
    /// `UInternalAuth` (Kerio checks the password), or a directory
    /// service's (`ULDAPAuth`, `UKerberosAuth`, `UWindowsNTAuth`,
    /// `UPamAuth`, `UAppleAuth`), whose own policy applies.
    #[serde(default)]
    auth_type: Option<String>,
    #[serde(default)]
    is_password_reversible: bool,
}

/// The user fields [`Kerio::users`] asks for.
const USER_FIELDS: [&str; 6] = [
    "loginName",
    "isEnabled",
    "emailForwarding",
    "lastLoginInfo",
    "authType",
    "isPasswordReversible",
];

/// `EmailForwarding`: `mode` is `UForwardNone` (no forwarding),
/// `UForwardYes` (forward only: nothing stays in the mailbox) or
/// `UForwardDelivery` (forward and keep a copy).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EmailForwarding {
    mode: String,
    #[serde(default)]
    email_addresses: Vec<String>,
}

/// `LastLogin`: `dateTime` in seconds since 1970 (0: never), and the
/// protocol of that login.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LastLogin {
    #[serde(default)]
    date_time: i64,
    #[serde(default)]
    protocol: String,
}

impl AuditedUser {
    /// Whether Kerio itself checks the password (its domain's policy
    /// applies), not a directory service.
    fn has_internal_password(&self) -> bool {
        self.auth_type
            .as_deref()
            .is_none_or(|kind| kind == "UInternalAuth")
    }

    fn into_directory(self, domain: &AuditedDomain) -> DirectoryUser {
        let password_policy = match self.has_internal_password() {
            true => domain.policy_for(&self),
            false => None,
        };
        let forwarding = self.email_forwarding;
        DirectoryUser {
            address: format!("{}@{}", self.login_name, domain.name),
            enabled: self.is_enabled,
            forwards_only: forwarding.as_ref().is_some_and(|f| f.mode == "UForwardYes"),
            forward_to: forwarding.map(|f| f.email_addresses).unwrap_or_default(),
            last_login: self
                .last_login_info
                .filter(|login| login.date_time > 0)
                .map(|login| (Timestamp(login.date_time), login.protocol)),
            password_policy,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueuedMessage {
    id: String,
    /// Empty for messages that arrived without SMTP authentication.
    #[serde(default)]
    auth_sender: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueueRemoved {
    delete_items: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IpEntry {
    id: String,
    group_id: String,
    group_name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    host: String,
}

impl IpEntry {
    fn is_host(&self, ip: IpAddr) -> bool {
        self.kind == "Host" && self.host.trim().parse::<IpAddr>().ok() == Some(ip)
    }
}

/// A Kerio Connect server. Logs in on first use and keeps the session.
pub struct Kerio {
    client: rpc::Client,
    ip_group: String,
}

impl Kerio {
    /// Checks the configuration and prepares the HTTPS client; nothing is
    /// sent until the first action.
    pub fn new(config: KerioConfig) -> Result<Kerio, ActError> {
        Ok(Kerio {
            client: rpc::Client::new(&config)?,
            ip_group: config.ip_group,
        })
    }

    /// Disables the account `login` (`user@domain`).
    pub async fn disable_user(&self, login: &str) -> Result<Change, ActError> {
        self.set_enabled(login, false).await
    }

    /// Enables the account `login` again (`user@domain`).
    pub async fn enable_user(&self, login: &str) -> Result<Change, ActError> {
        self.set_enabled(login, true).await
    }

    /// Removes the queued messages submitted by `login`, recognised by the
    /// authenticated sender: the envelope From is the attacker's choice, and
    /// legitimate mail with the same From must stay. Returns how many the
    /// server removed. Messages that leave the queue while it is being paged
    /// through may shift the pages and let one escape; a second run catches
    /// it.
    pub async fn remove_queued_from(&self, login: &str) -> Result<u64, ActError> {
        let mut ids = Vec::new();
        let mut start = 0;
        loop {
            let page: List<QueuedMessage> = self
                .client
                .call(
                    "Queue.get",
                    json!({"query": {"start": start, "limit": QUEUE_PAGE}}),
                )
                .await?;
            let fetched = page.list.len() as u64;
            ids.extend(
                page.list
                    .into_iter()
                    .filter(|message| message.auth_sender.eq_ignore_ascii_case(login))
                    .map(|message| message.id),
            );
            start += fetched;
            let last_page = match page.total_items {
                Some(total) => start >= total,
                None => fetched < QUEUE_PAGE,
            };
            if fetched == 0 || last_page {
                break;
            }
        }
        if ids.is_empty() {
            return Ok(0);
        }
        let removed: QueueRemoved = self
            .client
            .call("Queue.remove", json!({"messageIds": ids}))
            .await?;
        Ok(removed.delete_items)
    }

    /// Adds `ip` to the blocking group, with `description` shown in Kerio's
    /// administration (say why and until when).
    pub async fn block_ip(&self, ip: IpAddr, description: &str) -> Result<Change, ActError> {
        let entries = self.group_entries().await?;
        if entries.iter().any(|entry| entry.is_host(ip)) {
            return Ok(Change::AlreadyDone);
        }
        // An empty groupId with a name creates the group.
        let group_id = entries
            .first()
            .map(|entry| entry.group_id.as_str())
            .unwrap_or_default();
        let entry = json!({
            "groupId": group_id,
            "groupName": self.ip_group,
            "type": "Host",
            "host": ip.to_string(),
            "description": description,
            "enabled": true,
        });
        self.client
            .call::<serde::de::IgnoredAny>("IpAddressGroups.create", json!({"groups": [entry]}))
            .await?;
        Ok(Change::Done)
    }

    /// Removes every entry for `ip` from the blocking group.
    pub async fn unblock_ip(&self, ip: IpAddr) -> Result<Change, ActError> {
        let ids: Vec<String> = self
            .group_entries()
            .await?
            .into_iter()
            .filter(|entry| entry.is_host(ip))
            .map(|entry| entry.id)
            .collect();
        if ids.is_empty() {
            return Ok(Change::AlreadyDone);
        }
        self.client
            .call::<serde::de::IgnoredAny>("IpAddressGroups.remove", json!({"groupIds": ids}))
            .await?;
        Ok(Change::Done)
    }

    /// Every user of every domain, with what the audit needs: forwarding,
    /// last login, the password policy of the domain for users whose
    /// password Kerio checks (`mailfuse audit`).
    pub async fn users(&self) -> Result<Vec<DirectoryUser>, ActError> {
        let domains: List<AuditedDomain> = self
            .client
            .call(
                "Domains.get",
                json!({"query": {"start": 0, "limit": -1, "fields": DOMAIN_FIELDS}}),
            )
            .await?;
        let mut users = Vec::new();
        for domain in &domains.list {
            let list: List<AuditedUser> = self
                .client
                .call(
                    "Users.get",
                    json!({
                        "query": {"start": 0, "limit": -1, "fields": USER_FIELDS},
                        "domainId": domain.id,
                    }),
                )
                .await?;
            users.extend(
                list.list
                    .into_iter()
                    .map(|user| user.into_directory(domain)),
            );
        }
        Ok(users)
    }

    /// Logs out. A later action logs in again.
    pub async fn close(&self) -> Result<(), ActError> {
        self.client.logout().await
    }

    async fn set_enabled(&self, login: &str, enabled: bool) -> Result<Change, ActError> {
        let user = self.find_user(login).await?;
        if user.is_enabled == enabled {
            return Ok(Change::AlreadyDone);
        }
        self.client
            .call::<serde::de::IgnoredAny>(
                "Users.set",
                json!({"userIds": [user.id], "pattern": {"isEnabled": enabled}}),
            )
            .await?;
        Ok(Change::Done)
    }

    /// The entries of the blocking group.
    async fn group_entries(&self) -> Result<Vec<IpEntry>, ActError> {
        let entries: List<IpEntry> = self
            .client
            .call(
                "IpAddressGroups.get",
                json!({"query": {
                    "conditions": [{"fieldName": "groupName", "comparator": "Eq", "value": self.ip_group}],
                    "start": 0, "limit": -1,
                }}),
            )
            .await?;
        Ok(entries
            .list
            .into_iter()
            // Kerio's Eq ignores case; matching the same way avoids a
            // second group that differs only in case.
            .filter(|entry| entry.group_name.eq_ignore_ascii_case(&self.ip_group))
            .collect())
    }

    /// The account behind `user@domain`: Kerio's login name is the local part.
    async fn find_user(&self, login: &str) -> Result<User, ActError> {
        let Some((local, domain)) = login.rsplit_once('@') else {
            return Err(ActError::new(
                "kerio",
                format!("`{login}` has no domain: give the account as user@domain"),
            ));
        };
        let domains: List<Domain> = self
            .client
            .call(
                "Domains.get",
                json!({"query": {
                    "conditions": [{"fieldName": "name", "comparator": "Eq", "value": domain}],
                    "start": 0, "limit": 1, "fields": ["id"],
                }}),
            )
            .await?;
        let Some(domain_id) = domains.list.into_iter().next().map(|d| d.id) else {
            return Err(ActError::new(
                "kerio",
                format!("domain `{domain}` (of {login}) is not a domain of this Kerio Connect"),
            ));
        };
        let users: List<User> = self
            .client
            .call(
                "Users.get",
                json!({
                    "query": {
                        "conditions": [{"fieldName": "loginName", "comparator": "Eq", "value": local}],
                        "combining": "And", "start": 0, "limit": -1,
                        "fields": ["id", "loginName", "isEnabled"],
                    },
                    "domainId": domain_id,
                }),
            )
            .await?;
        // The server's match may be looser than ours (Like-style or with
        // the domain): keep only the exact account.
        users
            .list
            .into_iter()
            .find(|user| {
                user.login_name.eq_ignore_ascii_case(local)
                    || user.login_name.eq_ignore_ascii_case(login)
            })
            .ok_or_else(|| {
                ActError::new(
                    "kerio",
                    format!("no user `{local}` in domain {domain} (renamed or deleted?)"),
                )
            })
    }
}

/// Kerio locks accounts, removes their queued mail and blocks IPs.
impl Action for Kerio {
    fn lock(&self) -> Option<&dyn LockAccount> {
        Some(self)
    }
    fn queue(&self) -> Option<&dyn QueuedMail> {
        Some(self)
    }
    fn block(&self) -> Option<&dyn BlockIp> {
        Some(self)
    }
}

impl LockAccount for Kerio {
    fn journal_name(&self) -> &'static str {
        "kerio.disable_user"
    }

    fn lock<'a>(&'a self, account: &'a str, _locked: &'a [String]) -> ActFuture<'a, String> {
        Box::pin(async move {
            let change = self.disable_user(account).await?;
            Ok(change.said("account disabled in Kerio"))
        })
    }

    fn unlock<'a>(&'a self, account: &'a str, _locked: &'a [String]) -> ActFuture<'a, String> {
        Box::pin(async move {
            let change = self.enable_user(account).await?;
            Ok(change.said("account enabled in Kerio"))
        })
    }
}

/// Kerio lists its queue with each message's authenticated sender: the ids
/// the log gave are not needed.
impl QueuedMail for Kerio {
    fn journal_name(&self) -> &'static str {
        "kerio.remove_queued"
    }

    fn stop_queued<'a>(&'a self, account: &'a str, _queued: &'a [String]) -> ActFuture<'a, String> {
        Box::pin(async move {
            let removed = self.remove_queued_from(account).await?;
            Ok(format!(
                "{removed} queued messages it submitted removed from Kerio's queue"
            ))
        })
    }
}

impl BlockIp for Kerio {
    fn journal_name(&self) -> &'static str {
        "kerio.block_ip"
    }

    fn block<'a>(&'a self, blocking: Blocking<'a>) -> ActFuture<'a, String> {
        Box::pin(async move {
            let description = format!(
                "mailfuse {}, until {}",
                blocking.incident_key, blocking.until
            );
            let change = self.block_ip(blocking.ip.ip(), &description).await?;
            Ok(change.said("IP added to Kerio's blocked group"))
        })
    }

    fn unblock(&self, ip: IpAddr) -> ActFuture<'_, Option<String>> {
        Box::pin(async move {
            let change = self.unblock_ip(ip).await?;
            Ok(Some(change.said("IP removed from Kerio's blocked group")))
        })
    }
}
