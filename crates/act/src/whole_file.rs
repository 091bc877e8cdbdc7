//! Files the mail server reads (Postfix's lock map, Exim's lock list),
//! rewritten whole: a temporary file beside the old one, then a rename, so
//! that the server never reads one half-written.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::ActError;

/// The mode of a file written for the first time: the mail server's own
/// user must read it, whatever mailfuse's umask (the unit's is 077).
const NEW_FILE_MODE: u32 = 0o644;

/// Replaces `path` with `text`. The new file keeps the old one's owner,
/// group and mode (an admin's `0640 root:Debian-exim` stays readable by
/// Exim), else is readable by all.
pub(crate) async fn replace(
    action: &'static str,
    path: &Path,
    text: String,
) -> Result<(), ActError> {
    let temporary = path.with_extension("mailfuse-new");
    let shown = temporary.display();
    tokio::fs::write(&temporary, text).await.map_err(|e| {
        ActError::new(
            action,
            format!("cannot write {shown}: {e} (is its directory writable?)"),
        )
    })?;
    let old = tokio::fs::metadata(path).await.ok();
    let mode = old.as_ref().map_or(NEW_FILE_MODE, |m| m.mode() & 0o7777);
    tokio::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(|e| ActError::new(action, format!("cannot set the mode of {shown}: {e}")))?;
    if let Some(old) = &old {
        let new = tokio::fs::metadata(&temporary)
            .await
            .map_err(|e| ActError::new(action, format!("cannot read {shown}: {e}")))?;
        if (new.uid(), new.gid()) != (old.uid(), old.gid()) {
            std::os::unix::fs::chown(&temporary, Some(old.uid()), Some(old.gid())).map_err(|e| {
                ActError::new(
                    action,
                    format!(
                        "cannot give {shown} the owner of {} ({}:{}): {e} (run mailfuse as root, or make the file mailfuse's)",
                        path.display(),
                        old.uid(),
                        old.gid()
                    ),
                )
            })?;
        }
    }
    tokio::fs::rename(&temporary, path)
        .await
        .map_err(|e| ActError::new(action, format!("cannot replace {}: {e}", path.display())))
}
