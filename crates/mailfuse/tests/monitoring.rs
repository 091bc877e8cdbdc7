//! The monitoring files of `dist/`: the Prometheus alerting rules
//! (`dist/prometheus/mailfuse-rules.yml`) and the Grafana dashboard
//! (`dist/grafana/mailfuse.json`). promtool, from Debian's prometheus
//! package, checks the rules, runs their unit tests
//! (`tests/monitoring/mailfuse-rules.test.yml`) and checks the dashboard's
//! queries as PromQL; every metric they name must be one that a running
//! `mailfuse watch` or `mailfuse policy` exports, as their `/metrics` says.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic in a test is a failed test

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use support::watch::Watch;
use support::{free_port, run_ok, tool, wait_until};

fn dist(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../dist")
        .join(name)
}

const RULES: &str = "prometheus/mailfuse-rules.yml";
const DASHBOARD: &str = "grafana/mailfuse.json";

/// The metric families watch and policy export, each with the names its
/// samples take (`_total` of a counter, `_bucket`, `_sum`, `_count` of a
/// histogram).
fn exported() -> &'static BTreeMap<String, Vec<String>> {
    static EXPORTED: OnceLock<BTreeMap<String, Vec<String>>> = OnceLock::new();
    EXPORTED.get_or_init(scrape_watch_and_policy)
}

/// Every sample name of [`exported`].
fn exported_names() -> BTreeSet<&'static str> {
    exported().values().flatten().map(String::as_str).collect()
}

/// `mailfuse policy` killed when dropped (even when the test fails).
struct Policy(Child);

impl Drop for Policy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A family shows in an exposition once it has a sample: watch reads the
/// bundled Kerio example (a hijack: an incident, a lock, actions; then a
/// save, which counts the detector's entries) with a syslog listener and
/// policy runs beside it, on one configuration (their shared state, as
/// installed). Both `/metrics` are read, then both are stopped.
fn scrape_watch_and_policy() -> BTreeMap<String, Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kerio");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    let mut lines = 0;
    for entry in std::fs::read_dir(&example).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read(&path).unwrap();
        lines += text.iter().filter(|&&b| b == b'\n').count();
        std::fs::write(logs.join(path.file_name().unwrap()), text).unwrap();
    }
    let (watch_metrics, policy_metrics) = (free_port(), free_port());
    let config = dir.path().join("mailfuse.toml");
    std::fs::write(
        &config,
        format!(
            "[watch]\nlogs = [{logs:?}]\nstate = {:?}\npoll_ms = 20\nsave_every_secs = 1\n\
             timezone = \"+01:00\"\nmetrics_listen = \"127.0.0.1:{watch_metrics}\"\n\n\
             [watch.syslog]\nudp = [\"127.0.0.1:{}\"]\n\n\
             [actions]\nact_within = \"3650d\"\n\n\
             [policy]\nlisten = [\"127.0.0.1:{}\"]\nmetrics_listen = \"127.0.0.1:{policy_metrics}\"\n",
            dir.path().join("state.db"),
            free_port(),
            free_port(),
        ),
    )
    .unwrap();
    let watch = Watch::start(&config, &dir.path().join("watch.log"));
    let mut watched = String::new();
    wait_until(
        "watch to read the example, lock its hijack and save",
        Duration::from_secs(60),
        || {
            let before = metrics_text(watch_metrics);
            let caught_up = value(&before, "mailfuse_lines_read_total") == lines as f64
                && value(&before, "mailfuse_locks") == 1.0;
            if !caught_up {
                return false;
            }
            // A save after catching up: every entry counted.
            let saves = value(&before, "mailfuse_state_save_seconds_count");
            std::thread::sleep(Duration::from_millis(1_100));
            watched = metrics_text(watch_metrics);
            value(&watched, "mailfuse_state_save_seconds_count") > saves
        },
    );
    let policy_log = dir.path().join("policy.log");
    let mut policy = Policy(
        Command::new(env!("CARGO_BIN_EXE_mailfuse"))
            .args(["policy", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&policy_log).unwrap())
            .spawn()
            .expect("policy starts"),
    );
    let mut served = None;
    wait_until("policy's /metrics", Duration::from_secs(20), || {
        if let Some(status) = policy.0.try_wait().unwrap() {
            let log = std::fs::read_to_string(&policy_log).unwrap_or_default();
            panic!("policy exited ({status}):\n{log}");
        }
        served = try_metrics_text(policy_metrics);
        served.is_some()
    });
    watch.stop();
    let mut families = families_of(&watched);
    families.extend(families_of(&served.unwrap()));
    families
}

/// The sum of the samples named `name` in an exposition.
fn value(exposition: &str, name: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(['{', ' ']))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `GET /metrics` on loopback `port`: the body, or None if nothing answers.
fn try_metrics_text(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    assert!(head.contains(" 200 "), "{head}");
    Some(body.to_string())
}

fn metrics_text(port: u16) -> String {
    try_metrics_text(port).unwrap_or_else(|| panic!("nothing serves /metrics on port {port}"))
}

/// The families of an exposition, by their `# TYPE` lines (a family with
/// no sample yet has one too), and the names of their samples.
fn families_of(exposition: &str) -> BTreeMap<String, Vec<String>> {
    let mut families = BTreeMap::new();
    for line in exposition.lines() {
        let Some(declared) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (family, kind) = declared.split_once(' ').unwrap();
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "gauge" => &[""],
            "histogram" => &["_bucket", "_sum", "_count"],
            other => panic!("{family}: a {other}: say which names its samples take"),
        };
        let names = suffixes.iter().map(|s| format!("{family}{s}")).collect();
        families.insert(family.to_string(), names);
    }
    assert!(!families.is_empty(), "no metric in\n{exposition}");
    families
}

/// The names in a PromQL expression that are mailfuse's metrics.
fn metric_names(expr: &str) -> BTreeSet<&str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("mailfuse_"))
        .collect()
}

/// The dashboard's panels' queries, each with its panel's title.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dist(DASHBOARD)).unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut queries = Vec::new();
    let mut panels: Vec<&Value> = dashboard["panels"].as_array().unwrap().iter().collect();
    while let Some(panel) = panels.pop() {
        // A collapsed row holds its panels.
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap().to_string();
            let expr = target["expr"].as_str().expect("each target has an expr");
            queries.push((title, expr.to_string()));
        }
    }
    assert!(queries.len() > 20, "{queries:?}");
    queries
}

/// The queries of the dashboard's variables (Grafana's `label_values(…)`,
/// not PromQL).
fn variable_queries() -> Vec<String> {
    let text = std::fs::read_to_string(dist(DASHBOARD)).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|variable| variable["type"] == "query")
        .map(|variable| {
            let query = &variable["query"];
            query["query"]
                .as_str()
                .or(query.as_str())
                .unwrap()
                .to_string()
        })
        .collect()
}

fn promtool() -> Command {
    Command::new(tool("promtool"))
}

#[test]
fn the_alerting_rules_pass_promtool_check() {
    let output = run_ok(promtool().args(["check", "rules"]).arg(dist(RULES)));
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn the_alerting_rules_fire_as_their_unit_tests_say() {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/monitoring");
    run_ok(
        promtool()
            .current_dir(&tests)
            .args(["test", "rules", "mailfuse-rules.test.yml"]),
    );
}

#[test]
fn the_alerting_rules_name_only_metrics_mailfuse_exports() {
    let rules = std::fs::read_to_string(dist(RULES)).unwrap();
    let named = metric_names(&rules);
    assert!(named.len() > 10, "{named:?}");
    let exported = exported_names();
    let unknown: Vec<_> = named.difference(&exported).collect();
    assert!(
        unknown.is_empty(),
        "{RULES} names metrics nothing exports: {unknown:?}"
    );
}

#[test]
fn every_dashboard_query_names_only_metrics_mailfuse_exports() {
    let exported = exported_names();
    let variables = variable_queries();
    assert!(!variables.is_empty());
    let queries = dashboard_queries()
        .into_iter()
        .chain(variables.into_iter().map(|q| ("(a variable)".into(), q)));
    for (panel, expr) in queries {
        let named = metric_names(&expr);
        assert!(
            !named.is_empty(),
            "{panel}: {expr} names no mailfuse metric"
        );
        for name in named {
            assert!(
                exported.contains(name),
                "{panel}: {name} is not exported by watch or policy ({expr})"
            );
        }
    }
}

#[test]
fn the_dashboard_shows_every_metric_of_watch_and_policy() {
    let shown: BTreeSet<String> = dashboard_queries()
        .iter()
        .flat_map(|(_, expr)| metric_names(expr))
        .map(str::to_string)
        .collect();
    let missing: Vec<&String> = exported()
        .iter()
        .filter(|(_, names)| !names.iter().any(|name| shown.contains(name)))
        .map(|(family, _)| family)
        .collect();
    assert!(
        missing.is_empty(),
        "{DASHBOARD} has no panel for {missing:?}"
    );
}

#[test]
fn the_dashboard_queries_are_valid_promql() {
    // Grafana's variables as Prometheus would receive them.
    let rules: Vec<Value> = dashboard_queries()
        .iter()
        .enumerate()
        .map(|(i, (panel, expr))| {
            let expr = expr
                .replace("$__rate_interval", "5m")
                .replace("$__interval", "5m")
                .replace("$instance", ".*");
            assert!(
                !expr.contains('$'),
                "{panel}: an unknown variable in {expr}"
            );
            serde_json::json!({ "record": format!("dashboard:query_{i}"), "expr": expr })
        })
        .collect();
    // JSON is YAML: promtool reads the queries as recording rules.
    let file = tempfile::NamedTempFile::new().unwrap();
    let groups = serde_json::json!({ "groups": [{ "name": "dashboard", "rules": rules }] });
    std::fs::write(file.path(), groups.to_string()).unwrap();
    run_ok(promtool().args(["check", "rules"]).arg(file.path()));
}
