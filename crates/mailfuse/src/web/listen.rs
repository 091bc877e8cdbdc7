//! The dashboard's connections: accepted here rather than by `axum::serve`
//! so that each gets TLS when configured, a deadline for its request
//! headers (hyper's header read timeout) and the client's address for the
//! login limits. The deadline for a body is [`super::body_deadline`]'s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::debug;

/// The client's address, in each request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Serves `router` on `listener` until `stop` completes: HTTPS with `tls`,
/// else plain HTTP; a connection that does not finish its headers (or TLS
/// handshake) within `timeout` is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    timeout: Duration,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let tls = tls.map(TlsAcceptor::from);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of descriptors or a connection reset before accept:
                // the next one may do.
                Err(e) => {
                    debug!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer, router, tls, timeout).await {
                debug!(%peer, "dashboard connection: {e}");
            }
        });
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    tls: Option<TlsAcceptor>,
    timeout: Duration,
) -> Result<()> {
    let service = TowerToHyperService::new(router.layer(axum::Extension(Peer(peer))));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(timeout);
    match tls {
        Some(acceptor) => {
            let stream = tokio::time::timeout(timeout, acceptor.accept(stream)).await??;
            http.serve_connection(TokioIo::new(stream), service).await?;
        }
        None => http.serve_connection(TokioIo::new(stream), service).await?,
    }
    Ok(())
}
