use std::os::unix::fs::PermissionsExt;

use super::*;

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn problems(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "mailfuse.toml", text, 0o644);
    match Config::load(&path) {
        Ok(_) => Vec::new(),
        Err(Problems(found)) => found.iter().map(ToString::to_string).collect(),
    }
}

/// Without an `[actions]` section (policy's usual configuration), its
/// durations are still the documented ones, not zero: a zero `act_within`
/// skipped a lock whose incident was a second old.
#[test]
fn an_absent_actions_section_keeps_its_documented_durations() {
    let actions = Config::policy_defaults().actions;
    assert_eq!(actions.act_within, 3600);
    assert_eq!(actions.block_for, 21 * 86_400);
}

#[test]
fn a_minimal_file_takes_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mailfuse.toml",
        "[watch]\nlogs = [\"/var/log/mail.log\"]\n",
        0o644,
    );
    let config = Config::load(&path).unwrap();
    assert_eq!(config.watch.poll_ms, 250);
    assert_eq!(
        config.watch.state,
        PathBuf::from("/var/lib/mailfuse/state.db")
    );
    assert_eq!(config.detect.compromise.min_recipients, 15);
    assert!(!config.watch.dry_run);
}

#[test]
fn every_problem_is_reported_at_once_with_its_path() {
    let found = problems(
        "[watch]\nlogs = []\npoll_ms = \"fast\"\nsave_every_secs = -2\ncolour = true\n\n[detect.compromise]\nmin_recipients = -1\n\n[allow]\nnetworks = [\"10.0.0.0/33\", \"x\"]\n\n[alerts]\nx = 1\n",
    );
    let joined = found.join("\n");
    for expected in [
        "alerts: unknown section",
        "watch.poll_ms: invalid type",
        "watch.save_every_secs: invalid value",
        "watch.colour: unknown field `colour`",
        "allow.networks[1]: not an address or network",
        "detect.compromise.min_recipients: invalid value",
        "allow.networks[0]: not an address or network",
    ] {
        assert!(
            joined.contains(expected),
            "missing {expected:?} in:\n{joined}"
        );
    }
}

#[test]
fn passwords_in_the_main_file_are_refused() {
    let found = problems("[watch]\nlogs = [\"/x\"]\n\n[detect]\npassword = \"hunter2\"\n");
    assert!(found
        .iter()
        .any(|p| p.starts_with("detect.password: secrets belong")));
}

#[test]
fn a_secrets_file_others_can_read_is_refused_and_a_private_one_is_merged() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = write(
        dir.path(),
        "secrets.toml",
        "[detect.guessing]\nnetwork_min_ips = 7\n",
        0o640,
    );
    let main = format!(
        "[watch]\nlogs = [\"/x\"]\nsecrets = \"{}\"\n",
        secrets.display()
    );
    let path = write(dir.path(), "mailfuse.toml", &main, 0o644);
    let error = Config::load(&path).unwrap_err().to_string();
    assert!(
        error.contains("readable by others (mode 640): run chmod 600"),
        "{error}"
    );
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = Config::load(&path).unwrap();
    assert_eq!(config.detect.guessing.network_min_ips, 7);
}

#[test]
fn a_file_that_is_not_toml_says_where() {
    let found = problems("[watch\nlogs = 1");
    assert_eq!(found.len(), 1);
    assert!(found[0].contains("mailfuse.toml"), "{found:?}");
}

#[test]
fn a_policy_server_needs_no_logs_and_its_section_is_checked() {
    assert_eq!(problems("[policy]\n"), Vec::<String>::new());
    assert_eq!(
        problems("[policy]\n[watch]\nstate = \"/tmp/state.db\"\n"),
        Vec::<String>::new()
    );
    assert_eq!(
        problems("[watch]\nstate = \"/tmp/state.db\"\n"),
        ["watch.logs: name at least one log file or directory to follow, or [watch.journal], or [watch.syslog] listeners, or [watch.auth_policy]"]
    );
    let found = problems(
        "[policy]\nlisten = [\"127.0.0.1:10040\", \"localhost\"]\nover_limit = \"bounce\"\n",
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("policy.over_limit: unknown variant")),
        "{found:?}"
    );
    assert_eq!(
        problems("[policy.redis]\ncluster = [\"redis://10.0.0.1:7000/2\"]\n"),
        [
            "policy.redis: redis://10.0.0.1:7000/2: a Redis Cluster has only database 0: \
          drop the /2 from the URL"
        ]
    );
    let config = Config::policy_defaults();
    assert_eq!(config.policy.listen, ["127.0.0.1:10040"]);
    assert!(config.watch.logs.is_empty());
}

#[test]
fn policy_values_that_parse_but_cannot_work_are_reported() {
    let found = problems(
        "[policy]\nlisten = [\"127.0.0.1:10040\", \"localhost\"]\n\
         [[limits.override]]\naccount = \"a\"\nwindow = \"1h\"\nmessages = 1\n\
         [[limits.override]]\naccount = \"A\"\nwindow = \"60m\"\nmessages = 2\n",
    );
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(
        found[0].starts_with(
            "limits: two [[limits.override]] entries for \"A\" limit messages over 1h"
        ),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("policy.listen[1]: invalid listen address"),
        "{found:?}"
    );
}

#[test]
fn one_limits_section_for_watch_and_policy_and_built_in_limits_without_it() {
    let config = |text: &str| {
        let dir = tempfile::tempdir().unwrap();
        Config::load(&write(dir.path(), "mailfuse.toml", text, 0o644)).unwrap()
    };
    let per = |rules: &LimitRules, key: &str| -> Option<Vec<String>> {
        rules
            .limits_of(key)
            .map(|limits| limits.iter().map(|l| l.per()).collect())
    };
    let text = "[watch]\nlogs = [\"/x\"]\n[allow]\naccounts = [\"ceo@example.com\"]\n\
                [limits]\nallow = [\"news@example.com\"]\n\
                [[limits.default]]\nwindow = \"1h\"\nmessages = 200\nrecipients = 500\n\
                [[limits.override]]\naccount = \"Sales@example.com\"\nwindow = \"1d\"\nrecipients = 9000\n";
    let both = config(text);
    let policy = both.policy_limits().unwrap();
    for rules in [&both.detect.limits, &policy] {
        assert_eq!(
            per(rules, "bob@example.com"),
            Some(vec![
                "200 messages per 1h".into(),
                "500 recipients per 1h".into()
            ])
        );
        assert_eq!(
            per(rules, "sales@example.com"),
            Some(vec!["9000 recipients per 1d".into()])
        );
        assert_eq!(per(rules, "news@example.com"), None);
    }
    assert_eq!(
        per(&policy, "ceo@example.com"),
        None,
        "[allow] accounts too"
    );

    let without = config("[watch]\nlogs = [\"/x\"]\n");
    assert!(without.limits.is_none() && without.detect.limits.is_empty());
    assert_eq!(
        per(&without.policy_limits().unwrap(), "bob@example.com"),
        Some(vec![
            "50 recipients per 1m".into(),
            "300 recipients per 1h".into(),
            "1000 recipients per 1d".into()
        ])
    );
    let only_allow = config("[watch]\nlogs = [\"/x\"]\n[limits]\nallow = [\"a@example.com\"]\n");
    assert!(
        only_allow.policy_limits().unwrap().is_empty(),
        "a [limits] section says every limit there is"
    );
}

#[test]
fn check_config_points_the_old_limit_keys_to_the_new_ones() {
    let found = problems(
        "[watch]\nlogs = [\"/x\"]\n\
         [detect.limits]\nexempt = [\"a@example.com\"]\n\
         [[detect.limits.default]]\nwindow = \"1m\"\nmessages = 30\n\
         [[detect.limits.override]]\naccount = \"b@example.com\"\nwindow = \"1h\"\nmessages = 9\n\
         [policy]\nallow = [\"c@example.com\"]\n\
         [[policy.limits]]\nwindow = \"1m\"\nmax = 30\ncounts = \"recipients\"\n\
         [[policy.overrides]]\nkey = \"d@example.com\"\nlimits = []\n",
    );
    let expected = [
        ("detect.limits.default: moved to [[limits.default]]", ""),
        ("detect.limits.override: moved to [[limits.override]]", ""),
        ("detect.limits.exempt: moved to `allow` in [limits]", ""),
        (
            "policy.limits: moved to [[limits.default]]",
            "is now `recipients = 30`",
        ),
        (
            "policy.overrides: moved to [[limits.override]]",
            "`account` (was `key`)",
        ),
        ("policy.allow: moved to `allow` in [limits]", ""),
    ];
    assert_eq!(found.len(), expected.len(), "{found:#?}");
    for ((start, detail), problem) in expected.iter().zip(&found) {
        assert!(
            problem.starts_with(start) && problem.contains(detail),
            "{problem}"
        );
    }
    assert_eq!(
        problems("[watch]\nlogs = [\"/x\"]\n[detect.limits]\n"),
        ["detect.limits: moved to the top-level [limits] section"]
    );

    let found = problems(
        "[watch]\nlogs = [\"/x\"]\n[limits]\nexempt = []\n\
         [[limits.default]]\nwindow = \"1m\"\nmax = 30\ncounts = \"recipients\"\n\
         [[limits.override]]\nkey = \"d@example.com\"\nwindow = \"1h\"\nmessages = 5\n",
    )
    .join("\n");
    for expected in [
        "limits.exempt: now `allow`",
        "limits.default[0].max: `max` and `counts` are gone: write `messages = N` or `recipients = N`",
        "limits.default[0].counts: `max` and `counts` are gone",
        "limits.override[0].key: now `account`",
    ] {
        assert!(found.contains(expected), "missing {expected:?} in:\n{found}");
    }
}

#[test]
fn the_web_section_defaults_to_localhost_and_takes_its_token_from_the_secrets_file() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = write(
        dir.path(),
        "secrets.toml",
        "[web]\ntoken = \"a-long-enough-token\"\n",
        0o600,
    );
    let main = format!(
        "[watch]\nlogs = [\"/x\"]\nsecrets = \"{}\"\nmetrics_listen = \"127.0.0.1:9187\"\n\n[web]\nread_only = true\n",
        secrets.display()
    );
    let path = write(dir.path(), "mailfuse.toml", &main, 0o644);
    let config = Config::load(&path).unwrap();
    assert_eq!(config.web.listen, "127.0.0.1:8025".parse().unwrap());
    assert_eq!(config.web.token.as_deref(), Some("a-long-enough-token"));
    assert!(config.web.read_only);
    assert_eq!(
        config.watch.metrics_listen,
        Some("127.0.0.1:9187".parse().unwrap())
    );
    let minimal = problems("[watch]\nlogs = [\"/x\"]\n");
    assert!(minimal.is_empty(), "{minimal:?}");
}

#[test]
fn web_and_metrics_mistakes_are_reported() {
    let found = problems(
        "[watch]\nlogs = [\"/x\"]\nmetrics_listen = \"localhost\"\n\n[web]\nlisten = \"8025\"\ntoken = \"short\"\nport = 1\n",
    )
    .join("\n");
    for expected in [
        "watch.metrics_listen: invalid socket address",
        "web.listen: invalid socket address",
        "web.token: secrets belong in the secrets file",
        "web.port: unknown field",
    ] {
        assert!(
            found.contains(expected),
            "missing {expected:?} in:\n{found}"
        );
    }
}

#[test]
fn the_safety_section_names_the_servers_addresses_and_what_may_be_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[watch]\nlogs = [\"/var/log/mail.log\"]\n\n[safety]\nserver_addresses = [\"203.0.113.25\"]\nblockable = [\"10.9.0.0/16\"]\n";
    let path = write(dir.path(), "mailfuse.toml", text, 0o644);
    let ip = |text: &str| text.parse::<std::net::IpAddr>().unwrap();
    for config in [Config::load(&path), Config::load_for_scan(&path)] {
        let safety = config.unwrap().detect.safety;
        assert!(safety.is_this_server(ip("203.0.113.25")));
        assert!(safety.check(ip("10.9.1.1")).is_ok());
        assert!(safety.check(ip("10.8.1.1")).is_err());
        assert!(safety.check(ip("127.0.0.1")).is_err());
    }
    // Watch runs on the server: its loopback interface is its own (so a
    // blockable 127/8 would still not be).
    let watch = Config::load(&path).unwrap().detect.safety;
    assert!(watch.is_this_server(ip("127.0.0.1")));
    assert_eq!(
        problems("[watch]\nlogs = [\"x\"]\n[safety]\nblockable = [\"10.0.0.0/33\"]\nserver = []\n"),
        [
            "safety.blockable[0]: not an address or network like 198.51.100.0/24: \"10.0.0.0/33\"",
            "safety.server: unknown field `server`, expected `server_addresses` or `blockable`",
        ]
    );
}

#[test]
fn syslog_listeners_may_stand_for_the_logs_and_allow_loopback_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mailfuse.toml",
        "[watch]\n\n[watch.syslog]\ntcp = [\"127.0.0.1:5514\"]\nudp = [\"[::1]:5514\"]\n",
        0o644,
    );
    let config = Config::load(&path).unwrap();
    let syslog = &config.watch.syslog;
    assert!(config.watch.logs.is_empty() && syslog.listens());
    assert_eq!(syslog.max_connections, 256);
    for (ip, allowed) in [("127.0.0.2", true), ("::1", true), ("10.0.0.1", false)] {
        let ip = ip.parse().unwrap();
        assert_eq!(syslog.allow.iter().any(|c| c.contains(ip)), allowed, "{ip}");
    }
    assert!(
        problems("[watch]\n\n[watch.syslog]\nallow = [\"10.0.0.0/8\"]\n")
            .join("\n")
            .contains("watch.logs: name at least one log file")
    );
}

#[test]
fn the_journal_may_stand_for_the_logs_from_a_directory_or_files_not_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mailfuse.toml",
        "[watch]\n\n[watch.journal]\nunits = [\"postfix@-.service\", \"dovecot.service\"]\n",
        0o644,
    );
    let config = Config::load(&path).unwrap();
    let journal = config.watch.journal.as_ref().expect("followed");
    assert!(config.watch.logs.is_empty() && config.watch.listens());
    assert_eq!(journal.units, ["postfix@-.service", "dovecot.service"]);
    assert_eq!((&journal.directory, journal.files.len()), (&None, 0));
    assert_eq!(
        problems("[watch]\n\n[watch.journal]\ndirectory = \"/d\"\nfiles = [\"/f.journal\"]\n"),
        ["watch.journal.files: name journal files or a directory, not both (journalctl reads one or the other)"]
    );
    assert_eq!(
        problems("[watch]\n\n[watch.journal]\nunit = \"postfix\"\n"),
        ["watch.journal.unit: unknown field `unit`, expected one of `units`, `identifiers`, `directory`, `files`"]
    );
}

#[test]
fn tls_needs_a_readable_certificate_and_key() {
    let found = problems("[watch]\n\n[watch.syslog]\ntls = [\"0.0.0.0:6514\"]\n").join("\n");
    assert!(
        found.contains("watch.syslog.tls: TLS needs tls_certificate and tls_key"),
        "{found}"
    );
    let found = problems(
        "[watch]\n\n[watch.syslog]\ntls = [\"0.0.0.0:6514\"]\ntls_certificate = \"/nonexistent/c.pem\"\ntls_key = \"/nonexistent/k.pem\"\n",
    )
    .join("\n");
    assert!(
        found.contains("cannot read a PEM certificate chain from /nonexistent/c.pem"),
        "{found}"
    );
    // A good certificate and a missing key: the key is named.
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert_path = write(dir.path(), "c.pem", &cert.cert.pem(), 0o644);
    let found = problems(&format!(
        "[watch]\n\n[watch.syslog]\ntls = [\"0.0.0.0:6514\"]\ntls_certificate = \"{}\"\ntls_key = \"/nonexistent/k.pem\"\n",
        cert_path.display()
    ))
    .join("\n");
    assert!(
        found.contains(
            "watch.syslog.tls_key: cannot read a PEM private key from /nonexistent/k.pem"
        ),
        "{found}"
    );
}

#[test]
fn the_dashboard_tls_and_limits_are_checked_at_start() {
    let found = problems(
        "[watch]\nlogs = [\"/x\"]\n\n[web]\ntls_certificate = \"/nonexistent/c.pem\"\n\
         login_attempts = 0\n",
    )
    .join("\n");
    for expected in [
        "web.tls: TLS needs tls_certificate and tls_key",
        "web.login_attempts: must be at least 1",
    ] {
        assert!(found.contains(expected), "{found}");
    }
    let found = problems(
        "[watch]\nlogs = [\"/x\"]\n\n[web]\ntls_certificate = \"/nonexistent/c.pem\"\n\
         tls_key = \"/nonexistent/k.pem\"\n",
    )
    .join("\n");
    assert!(
        found.contains("web.tls_certificate: cannot read a PEM certificate chain"),
        "{found}"
    );
}

#[test]
fn example_domains_are_told_from_lookalikes() {
    for named in [
        "example.com",
        "mail.example.com",
        "postmaster@example.org",
        "https://chat.example.net/hooks/x",
    ] {
        let domain = EXAMPLE_DOMAINS.iter().find(|d| names_domain(named, d));
        assert!(domain.is_some(), "{named}");
    }
    for other in [
        "myexample.com",
        "example.community",
        "mail.example-com.cz",
        "acme.example",
    ] {
        assert!(
            !EXAMPLE_DOMAINS.iter().any(|d| names_domain(other, d)),
            "{other}"
        );
    }
}

#[test]
fn an_auth_policy_server_is_an_input_and_beyond_loopback_needs_a_long_key() {
    let with = |section: &str| {
        problems(&format!(
            "[watch]\nstate = \"/tmp/state.db\"\n[watch.auth_policy]\n{section}"
        ))
    };
    assert_eq!(with(""), Vec::<String>::new());
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mailfuse.toml",
        "[watch]\nstate = \"/tmp/state.db\"\n[watch.auth_policy]\n",
        0o644,
    );
    let policy = Config::load(&path).unwrap().watch.auth_policy.unwrap();
    assert_eq!(policy.listen.to_string(), "127.0.0.1:10041");
    assert_eq!(policy.logged_protocols, ["smtp"]);
    let beyond = with("listen = \"0.0.0.0:10041\"\n");
    assert!(
        beyond.len() == 1
            && beyond[0].starts_with("watch.auth_policy.api_key: listening on 0.0.0.0:10041"),
        "{beyond:?}"
    );
    let in_main_file = with("api_key = \"0123456789abcdef\"\n");
    assert!(
        in_main_file.len() == 1 && in_main_file[0].contains("secrets belong in the secrets file"),
        "{in_main_file:?}"
    );
    assert!(with("port = 1\n")[0].contains("unknown field"));
}

#[test]
fn canaries_reach_both_judges_and_a_bare_local_part_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mailfuse.toml",
        "[watch]\nlogs = [\"/x\"]\ndry_run = true\n\n[canary]\nrecipients = [\"Trap@Example.com\"]\n",
        0o644,
    );
    let config = Config::load(&path).unwrap();
    for canaries in [&config.detect.canaries, &config.policy.canaries] {
        assert_eq!(
            canaries.matching(b"trap@example.com"),
            Some("trap@example.com")
        );
    }
    assert!(config.policy.dry_run, "policy honours [watch] dry_run");
    let found = problems("[watch]\nlogs = [\"/x\"]\n\n[canary]\nrecipients = [\"info\"]\n");
    assert!(
        found.iter().any(|p| p
            .starts_with("canary.recipients: canary recipient \"info\" is not a whole address")),
        "{found:?}"
    );
}
