//! SIGTERM (systemd, `kill`) and SIGINT (Ctrl-C): how `watch`, `policy` and
//! `serve` are asked to stop, so that each saves its state on the way out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info};

/// Completes at the first SIGTERM or SIGINT, for the tokio servers'
/// graceful shutdown. If the handlers cannot be installed it says so and
/// never completes: only SIGKILL stops the process then.
pub async fn stopped() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("cannot catch SIGTERM/SIGINT: stop with SIGKILL (what is not saved yet is lost)");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: stopping"),
        _ = int.recv() => info!("SIGINT: stopping"),
    }
}

/// A flag that turns true at SIGTERM or SIGINT, for a loop that is not
/// async (watch polls it between reads); a small thread waits for the signal.
pub fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let flag = stop.clone();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            runtime.block_on(stopped());
            flag.store(true, Ordering::Relaxed);
        })?;
    Ok(stop)
}
