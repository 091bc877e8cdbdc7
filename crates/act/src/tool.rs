//! Running the mail server's and the system's own tools (`postmap`,
//! `postsuper`, `exim`, `nft`): argv only, never a shell, with a timeout and
//! their error output quoted when they fail.

use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::message::clean;
use crate::ActError;

/// How long a tool may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `program` with `args`, feeding `stdin`; returns what it wrote on
/// standard error (where Postfix tools report). An error when it cannot
/// start, times out, or exits non-zero (quoting its error output).
pub(crate) async fn run(
    action: &'static str,
    program: &str,
    args: &[&str],
    stdin: &[u8],
) -> Result<String, ActError> {
    let output = output(action, program, args, stdin).await?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(ActError::new(
            action,
            format!(
                "{program} {} failed ({}): {}",
                args.join(" "),
                output.status,
                clean(stderr.trim(), 500)
            ),
        ));
    }
    Ok(stderr)
}

/// Runs `program` like [`run`], but leaves judging its exit status and
/// output to the caller (Exim exits 1 when one of several messages was
/// already frozen). An error only when it cannot start or times out.
pub(crate) async fn output(
    action: &'static str,
    program: &str,
    args: &[&str],
    stdin: &[u8],
) -> Result<Output, ActError> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            ActError::new(
                action,
                format!("cannot run {program}: {e} (is it installed and on PATH?)"),
            )
        })?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin).await.map_err(|e| {
            ActError::new(action, format!("{program}: cannot write its input: {e}"))
        })?;
    }
    tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            ActError::new(
                action,
                format!("{program} took more than {}s: killed", TIMEOUT.as_secs()),
            )
        })?
        .map_err(|e| ActError::new(action, format!("{program}: {e}")))
}
