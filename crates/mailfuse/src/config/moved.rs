//! The limits' keys from before `[limits]`, which scan, watch and policy
//! now share: each is taken out of the table and reported with the key
//! that replaced it, so `check-config` tells how to rewrite an old file.

use toml::{Table, Value};

use super::Problem;

/// Old places of the limits, children before their parent, with where
/// they went.
const MOVED: [(&[&str], &str); 7] = [
    (
        &["detect", "limits", "default"],
        "moved to [[limits.default]] (window, messages, recipients), which `mailfuse policy` enforces too",
    ),
    (
        &["detect", "limits", "override"],
        "moved to [[limits.override]] (account, window, messages, recipients)",
    ),
    (
        &["detect", "limits", "exempt"],
        "moved to `allow` in [limits]",
    ),
    (
        &["detect", "limits"],
        "moved to the top-level [limits] section",
    ),
    (
        &["policy", "limits"],
        "moved to [[limits.default]]: `max = 30` with `counts = \"recipients\"` is now `recipients = 30` (a window's messages and recipients in one entry); without a [limits] section policy keeps its built-in limits",
    ),
    (
        &["policy", "overrides"],
        "moved to [[limits.override]]: one entry per window, with `account` (was `key`) and its window, messages, recipients",
    ),
    (&["policy", "allow"], "moved to `allow` in [limits]"),
];

/// Old field names inside `[limits]`' entries, with their new spelling.
const RENAMED: [(&str, &str); 4] = [
    (
        "max",
        "`max` and `counts` are gone: write `messages = N` or `recipients = N`",
    ),
    (
        "counts",
        "`max` and `counts` are gone: write `messages = N` or `recipients = N`",
    ),
    ("key", "now `account`"),
    (
        "limits",
        "write one [[limits.override]] per window, with window, messages, recipients",
    ),
];

/// Takes the old keys out of `table`, noting each as a problem.
pub(super) fn take_old_limit_keys(table: &mut Table, problems: &mut Vec<Problem>) {
    let mut reported: Vec<String> = Vec::new();
    for (path, message) in MOVED {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let Some(parent) = table_at(table, parents) else {
            continue;
        };
        let dotted = path.join(".");
        let children_reported = reported
            .iter()
            .any(|r| r.starts_with(&format!("{dotted}.")));
        match parent.remove(*last) {
            // Its children were reported: an emptied table says no more.
            Some(Value::Table(rest)) if rest.is_empty() && children_reported => {}
            Some(_) => {
                problems.push(Problem {
                    path: dotted.clone(),
                    message: message.to_string(),
                });
                reported.push(dotted);
            }
            None => {}
        }
    }
    let Some(limits) = table.get_mut("limits").and_then(Value::as_table_mut) else {
        return;
    };
    if limits.remove("exempt").is_some() {
        problems.push(Problem {
            path: "limits.exempt".into(),
            message: "now `allow`".into(),
        });
    }
    for name in ["default", "override"] {
        let Some(Value::Array(entries)) = limits.get_mut(name) else {
            continue;
        };
        for (i, entry) in entries.iter_mut().enumerate() {
            let Some(entry) = entry.as_table_mut() else {
                continue;
            };
            for (old, message) in RENAMED {
                if entry.remove(old).is_some() {
                    problems.push(Problem {
                        path: format!("limits.{name}[{i}].{old}"),
                        message: message.to_string(),
                    });
                }
            }
        }
    }
}

/// The table at `path` in `table`, if every step is one.
fn table_at<'t>(table: &'t mut Table, path: &[&str]) -> Option<&'t mut Table> {
    path.iter().try_fold(table, |table, key| {
        table.get_mut(*key).and_then(Value::as_table_mut)
    })
}
