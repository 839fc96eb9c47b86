//! A node's operations endpoint (`ops` feature): what orchestrators and scrapers ask a running
//! service, over HTTP/1.1 on a thread of its own (a slow scrape never delays the net thread).
//!
//! | path | answer |
//! |---|---|
//! | `GET /health` | liveness: `200 ok` while the runtime runs and the node is open (and, in a cluster, its membership machinery runs, fenced or not); `503` with the reason otherwise |
//! | `GET /ready` | readiness: live, and in a cluster a member that may serve (in the member set, not fenced, minimum reached); `503` with the reason otherwise |
//! | `GET /metrics` | `200`, the text the `metrics` closure renders (Prometheus' exposition format from metrics-exporter-prometheus' handle, say); `404` without one |
//! | anything else | `404`; a method other than GET or HEAD: `405` |
//!
//! What a client can make it hold is bounded: at most [`MAX_CONNECTIONS`] connections at once
//! (more wait in the listen backlog), each closed after [`CONNECTION_TIMEOUT`].
//!
//! ```
//! use corelane::Runtime;
//! use corelane_net::{ops::Ops, Node, RemoteConfig};
//!
//! let rt = Runtime::builder().build()?;
//! let node = Node::start(&rt, RemoteConfig::dev())?;
//! let ops = Ops::start(&node, "127.0.0.1:0".parse()?, || "# no metrics here\n".to_string())?;
//! println!("probes at http://{}/health and /ready", ops.addr());
//! ops.stop();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::node::{Inner, Node};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// A connection's longest life.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);

type Render = dyn Fn() -> String + Send + Sync;

/// A running operations endpoint; stopped by [`Ops::stop`] or when dropped.
pub struct Ops {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ops {
    /// Serves `/health`, `/ready` and `/metrics` (the text `metrics` renders) for `node` on
    /// `bind` (`127.0.0.1:0`: loopback, any free port; expose it only where probes come from).
    ///
    /// # Errors
    /// The address cannot be bound, or the endpoint's thread cannot start.
    pub fn start(
        node: &Node,
        bind: SocketAddr,
        metrics: impl Fn() -> String + Send + Sync + 'static,
    ) -> std::io::Result<Ops> {
        let listener = std::net::TcpListener::bind(bind)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let node = Arc::downgrade(&node.inner);
        let metrics: Arc<Render> = Arc::new(metrics);
        let thread = std::thread::Builder::new().name("corelane-ops".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => return tracing::error!(error = %e, "operations endpoint: no runtime"),
            };
            rt.block_on(serve(listener, node, metrics, stopped));
        })?;
        Ok(Ops { addr, stop: Some(stop), thread: Some(thread) })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for its thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        self.halt();
    }
}

async fn serve(
    listener: std::net::TcpListener,
    node: Weak<Inner>,
    metrics: Arc<Render>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => return tracing::error!(error = %e, "operations endpoint: cannot listen"),
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let permit = tokio::select! {
            _ = &mut stopped => return,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let stream = tokio::select! {
            _ = &mut stopped => return,
            s = listener.accept() => match s {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "operations endpoint: accept failed");
                    continue;
                }
            },
        };
        let (node, metrics) = (node.clone(), metrics.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let answer = answer(&req, &node, &metrics);
                async move { Ok::<_, Infallible>(answer) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
            drop(permit);
        });
    }
}

/// The answer to one request.
fn answer(req: &Request<Incoming>, node: &Weak<Inner>, metrics: &Arc<Render>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD\n".into());
    }
    match req.uri().path() {
        "/health" => probe(live(node)),
        "/ready" => probe(live(node).and_then(|()| ready(node))),
        "/metrics" => {
            let mut r = text(StatusCode::OK, metrics());
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "not found: /health, /ready, /metrics\n".into()),
    }
}

fn probe(state: Result<(), &'static str>) -> Response<Full<Bytes>> {
    match state {
        Ok(()) => text(StatusCode::OK, "ok\n".into()),
        Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

/// Liveness: the runtime runs, the node is open, its cluster machinery (if any) runs.
fn live(node: &Weak<Inner>) -> Result<(), &'static str> {
    let n = node.upgrade().ok_or("node gone")?;
    if !n.rt.is_running() {
        return Err("runtime stopped");
    }
    if !n.is_open() {
        return Err("node shut down");
    }
    match n.cluster() {
        Some(c) if !c.running() => Err("left its cluster"),
        _ => Ok(()),
    }
}

/// Readiness beyond liveness: in a cluster, a member that may serve.
fn ready(node: &Weak<Inner>) -> Result<(), &'static str> {
    let n = node.upgrade().ok_or("node gone")?;
    match n.cluster() {
        Some(c) if !c.in_cluster() => {
            Err("not serving in its cluster (joining, fenced, or below its minimum)")
        }
        _ => Ok(()),
    }
}
