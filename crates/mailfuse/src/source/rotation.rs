//! Rotated log sets: `mail.log`, `mail.log.1`, `mail.log.2.gz`, …, or
//! logrotate's `dateext` names (`mail.log-20251101.gz`), read as one log,
//! oldest member first.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Compression suffixes logrotate and admins add.
const COMPRESSED: [&str; 5] = [".gz", ".zst", ".bz2", ".xz", ".zstd"];

/// Whether a file's name says it is compressed (its content is judged by
/// its first bytes when read; the name only tells whether its size on disk
/// measures what reading it gives).
pub fn named_compressed(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy());
    name.is_some_and(|name| COMPRESSED.iter().any(|ext| name.ends_with(ext)))
}

/// Where a file stands in its set; ordered oldest first.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Age {
    /// `-YYYYMMDD` (or with hours): older dates first.
    Dated(String),
    /// `.N`: larger numbers are older.
    Numbered(Reverse<u64>),
    /// The file being written.
    Current,
}

/// The set a file name belongs to (the name without rotation and
/// compression suffixes) and its place in it.
fn rotation_key(name: &str) -> (&str, Age) {
    let mut base = name;
    if let Some(stripped) = COMPRESSED.iter().find_map(|ext| base.strip_suffix(ext)) {
        base = stripped;
    }
    if let Some((stem, number)) = base.rsplit_once('.') {
        let digits = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
        if let (true, false, Ok(n)) = (digits, stem.is_empty(), number.parse::<u64>()) {
            return (stem, Age::Numbered(Reverse(n)));
        }
    }
    if let Some((stem, date)) = base.rsplit_once('-') {
        let is_date = matches!(date.len(), 8 | 10) && date.bytes().all(|b| b.is_ascii_digit());
        if is_date && !stem.is_empty() {
            return (stem, Age::Dated(date.to_string()));
        }
    }
    (base, Age::Current)
}

/// The rotated members of the set `live` is the current file of (same
/// folder, same base name, `mail.log.1`, `mail.log-20251101.gz`), oldest
/// first; `live` itself and names that are not rotated copies are left out.
/// A folder that cannot be listed has none.
pub fn rotated_members(live: &Path) -> Vec<PathBuf> {
    let Some(name) = live.file_name().map(|n| n.to_string_lossy()) else {
        return Vec::new();
    };
    let dir = match live.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut members: Vec<(Age, PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let member = entry.file_name().to_string_lossy().into_owned();
            match rotation_key(&member) {
                (base, Age::Current) if base == name => None,
                (base, age) if base == name => Some((age, live.with_file_name(&member))),
                _ => None,
            }
        })
        .collect();
    members.sort();
    members.into_iter().map(|(_, path)| path).collect()
}

/// Groups `files` into rotation sets (same folder, same base name), each
/// ordered oldest first; sets are ordered by their base path.
pub fn group(files: Vec<PathBuf>) -> Vec<Vec<PathBuf>> {
    let mut sets: BTreeMap<PathBuf, Vec<(Age, PathBuf)>> = BTreeMap::new();
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (base, age) = rotation_key(&name);
        let set = file.parent().unwrap_or(Path::new("")).join(base);
        sets.entry(set).or_default().push((age, file));
    }
    sets.into_values()
        .map(|mut members| {
            members.sort();
            members.dedup_by(|a, b| a.1 == b.1);
            members.into_iter().map(|(_, path)| path).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sets: Vec<Vec<PathBuf>>) -> Vec<Vec<String>> {
        sets.into_iter()
            .map(|set| set.iter().map(|p| p.display().to_string()).collect())
            .collect()
    }

    #[test]
    fn a_numbered_set_is_read_oldest_first() {
        let files = [
            "log/mail.log",
            "log/mail.log.1",
            "log/mail.log.10.gz",
            "log/mail.log.2.gz",
        ]
        .map(PathBuf::from)
        .to_vec();
        assert_eq!(
            names(group(files)),
            [[
                "log/mail.log.10.gz",
                "log/mail.log.2.gz",
                "log/mail.log.1",
                "log/mail.log"
            ]]
        );
    }

    #[test]
    fn dated_members_and_separate_sets() {
        let files = [
            "mail.log",
            "mail.err",
            "mail.log-20251108",
            "mail.log-20251101.zst",
            "mail.err.1",
            "security.log",
        ]
        .map(PathBuf::from)
        .to_vec();
        assert_eq!(
            names(group(files)),
            [
                vec!["mail.err.1", "mail.err"],
                vec!["mail.log-20251101.zst", "mail.log-20251108", "mail.log"],
                vec!["security.log"],
            ]
        );
    }

    #[test]
    fn the_rotated_members_of_a_live_file_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "mail.log",
            "mail.log.1",
            "mail.log.2.gz",
            "mail.log.10.zst",
            "mail.log.gz",
            "mail.err.1",
            "mail.logger.1",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let names: Vec<String> = rotated_members(&dir.path().join("mail.log"))
            .iter()
            .filter_map(|p| Some(p.file_name()?.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(names, ["mail.log.10.zst", "mail.log.2.gz", "mail.log.1"]);
    }

    #[test]
    fn names_that_only_look_rotated_stay_whole() {
        assert_eq!(rotation_key("mainlog"), ("mainlog", Age::Current));
        assert_eq!(rotation_key(".1"), (".1", Age::Current));
        assert_eq!(rotation_key("backup-2025"), ("backup-2025", Age::Current));
        assert_eq!(rotation_key("exim.log.gz"), ("exim.log", Age::Current));
    }
}
