//! Remoting over QUIC on loopback, next to bare quinn measured in the same run:
//! - `raw-quic`: two threads, each with its own current-thread tokio runtime and quinn endpoint
//!   (the node's TLS and transport settings, on a socket bound as nodes bind theirs), ping-pong
//!   64 bytes on one bidirectional stream.
//!   Every round trip is a sample.
//! - `remote-pingpong`: node A (a plain thread asking, A's net thread) asks an echo actor on
//!   node B with a 64-byte payload and blocks for each answer. Every ask is a sample.
//! - `remote-tell`: a plain thread on node A's core tells 64-byte messages to a counter on
//!   node B over one connection, in windows of 20 000; each window ends with an ask for the
//!   count, awaited after the next window is sent (at most two windows in flight, the
//!   transport's queue stays bounded, the pipe never drains); the last answer confirms every
//!   message arrived.
//! - `raw-quic-stream`: `remote-tell`'s limit on the same transport: bare quinn streams records
//!   of a remote tell's size on wire ([`RECORD`] bytes: frame prefix, envelope, 64-byte payload)
//!   on one unidirectional stream, written as a sender that batches well would (64 KiB chunks
//!   handed over without a copy), counted by the receiver as they arrive.

use crate::report::{fig, percentiles, Figure};
use crate::{pin, Cores};
use bytes::Bytes;
use corelane::{Actor, ActorError, Ctx, Idle, Reply, Runtime, Shards};
use corelane_net::{Node, Protocol, RemoteConfig};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// The 64-byte payload.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Payload {
    #[prost(bytes = "bytes", tag = "1")]
    pub(crate) data: Bytes,
}
impl prost::Name for Payload {
    const NAME: &'static str = "Payload";
    const PACKAGE: &'static str = "perf.v1";
}

/// The 64-byte request and answer of `remote-pingpong`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Ping {
    #[prost(bytes = "bytes", tag = "1")]
    pub(crate) data: Bytes,
}
impl prost::Name for Ping {
    const NAME: &'static str = "Ping";
    const PACKAGE: &'static str = "perf.v1";
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Count {
    #[prost(uint64, tag = "1")]
    pub(crate) n: u64,
}
impl prost::Name for Count {
    const NAME: &'static str = "Count";
    const PACKAGE: &'static str = "perf.v1";
}

/// What the measured echo (an actor here, a grain in `grain.rs`) handles.
pub(crate) enum EchoMsg {
    Echo(Ping, Reply<Ping>),
    Tell,
    Count(Reply<Count>),
}

impl EchoMsg {
    /// Echoes, or counts what is told into `count`.
    pub(crate) fn handle(self, count: &mut u64) {
        match self {
            EchoMsg::Echo(p, r) => r.send(p),
            EchoMsg::Tell => *count += 1,
            EchoMsg::Count(r) => r.send(Count { n: *count }),
        }
    }
}

#[derive(Default)]
pub(crate) struct Echo(pub(crate) u64);
impl Actor for Echo {
    type Msg = EchoMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, msg: EchoMsg) -> Result<(), ActorError> {
        msg.handle(&mut self.0);
        Ok(())
    }
}

pub(crate) fn protocol() -> Protocol<EchoMsg> {
    Protocol::new().ask(EchoMsg::Echo).tell(|_: Payload| EchoMsg::Tell).ask(|_: Count, r| EchoMsg::Count(r))
}

fn payload() -> Payload {
    Payload { data: Bytes::from(vec![7u8; 64]) }
}

/// A node on one core: a one-shard runtime that parks when idle (its net thread shares the
/// core; spinning would take it from the net thread) and the net thread, both pinned there.
pub(crate) fn node_on(core: Option<usize>) -> (Runtime, Node) {
    let b = Runtime::builder().idle(Idle::Park).name("perf-remote");
    let rt = match core {
        Some(c) => b.shards(Shards::Cores(vec![c])).pin(true),
        None => b.shards(Shards::Count(1)),
    }
    .build()
    .expect("runtime");
    let node = Node::start(&rt, RemoteConfig { net_core: core, ..RemoteConfig::dev() }).expect("node");
    (rt, node)
}

/// Two nodes, A on core a and B on core b, as the raw baseline's two threads; B serves an echo
/// actor registered as "echo"; A has found it.
fn nodes(cores: Cores) -> (Runtime, Runtime, Node, Node, corelane_net::RemoteRef) {
    let (rt_a, a) = node_on(cores.a);
    let (rt_b, b) = node_on(cores.b);
    b.serve(protocol());
    let echo = rt_b.spawn(Echo::default).expect("echo");
    rt_b.register("echo", &echo).expect("name");
    let remote = a.remote(b.addr()).lookup("echo").timeout(Duration::from_secs(10)).wait().expect("lookup");
    (rt_a, rt_b, a, b, remote)
}

pub(crate) fn remote_pingpong(cores: Cores, n: u64) -> Vec<Figure> {
    let (_rt_a, _rt_b, a, b, echo) = nodes(cores);
    let asker = std::thread::spawn(move || {
        pin(cores.a);
        let p = Ping { data: payload().data };
        let t = Duration::from_secs(10);
        timed_asks(n, || {
            let r = echo.ask::<_, Ping>(&p).timeout(t).wait().expect("ask");
            assert_eq!(r.data.len(), 64);
        })
    });
    let (total, h) = asker.join().unwrap();
    a.shutdown();
    b.shutdown();
    let mut v = vec![fig("remote-pingpong", "ns_per_roundtrip", total.as_nanos() as f64 / n as f64, "ns")];
    v.extend(percentiles("remote-pingpong", &h));
    v
}

/// `n` blocking asks after `n / 10` to warm up: the total time and every ask's latency.
pub(crate) fn timed_asks(n: u64, mut ask: impl FnMut()) -> (Duration, Histogram<u64>) {
    for _ in 0..n / 10 {
        ask();
    }
    let mut h = Histogram::<u64>::new(3).unwrap();
    let start = Instant::now();
    for _ in 0..n {
        let t0 = Instant::now();
        ask();
        h.record(t0.elapsed().as_nanos() as u64).unwrap();
    }
    (start.elapsed(), h)
}

pub(crate) fn remote_tell(cores: Cores, n: u64) -> Vec<Figure> {
    let (_rt_a, _rt_b, a, b, echo) = nodes(cores);
    let p = payload();
    let t = Duration::from_secs(30);
    let elapsed = on_core(cores.a, || {
        windowed_tells(
            n,
            || echo.tell(&p).expect("tell"),
            || echo.ask::<_, Count>(&Count { n: 0 }).timeout(t),
            |ask| ask.wait().expect("count").n,
        )
    });
    a.shutdown();
    b.shutdown();
    vec![fig("remote-tell", "msgs_per_sec", n as f64 / elapsed.as_secs_f64(), "msg/s")]
}

/// What `f` returns, run on a thread of its own pinned to `core`: node A's core, which the
/// telling thread shares with A's net thread as the raw baseline's writer has its core (left
/// to the scheduler, `main` ran on node B's core, beside B's net thread and shard, in the
/// processes looked at).
pub(crate) fn on_core<R: Send>(core: Option<usize>, f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        s.spawn(|| {
            pin(core);
            f()
        })
        .join()
        .expect("the measuring thread")
    })
}

/// `n` tells in windows of 20 000, each window followed by an ask for the receiver's count
/// that is waited for after the next window is sent (so the pipe never drains and at most two
/// windows are in flight); the time until the receiver counted them all.
pub(crate) fn windowed_tells<A>(
    n: u64,
    mut tell: impl FnMut(),
    mut ask: impl FnMut() -> A,
    wait: impl Fn(A) -> u64,
) -> Duration {
    const WINDOW: u64 = 20_000;
    for _ in 0..WINDOW {
        tell();
    }
    let base = wait(ask());
    let start = Instant::now();
    let mut sent = 0;
    let mut previous = None;
    while sent < n {
        let w = WINDOW.min(n - sent);
        for _ in 0..w {
            tell();
        }
        sent += w;
        if let Some(done) = previous.replace(ask()) {
            wait(done);
        }
    }
    if let Some(done) = previous {
        wait(done);
    }
    let got = wait(ask()) - base;
    let elapsed = start.elapsed();
    assert_eq!(got, n, "the receiver counted every message");
    elapsed
}

/// Bytes a remote tell of the 64-byte payload takes on the wire (frame prefix and envelope
/// included), the record `raw-quic-stream` streams.
pub(crate) const RECORD: usize = 96;

/// Bare quinn between two threads, each with its own current-thread tokio runtime and
/// endpoint (the node's TLS and transport settings), the server pinned to `cores.b` and the
/// client to `cores.a`: runs `serve` on the accepted connection and `dial` on the dialed one,
/// and returns both results once both endpoints are idle.
fn bare_quinn<S, SF, D, DF>(cores: Cores, serve: S, dial: D) -> (SF::Output, DF::Output)
where
    S: FnOnce(quinn::Connection) -> SF + Send + 'static,
    SF: std::future::Future,
    SF::Output: Send + 'static,
    D: FnOnce(quinn::Connection) -> DF + Send + 'static,
    DF: std::future::Future,
    DF::Output: Send + 'static,
{
    let crypto = corelane_net::quic_configs(&RemoteConfig::dev()).expect("configs");
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server_cfg = crypto.server;
    let server = std::thread::spawn(move || {
        pin(cores.b);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let ep = node_endpoint(Some(server_cfg));
            addr_tx.send(ep.local_addr().unwrap()).unwrap();
            let out = serve(ep.accept().await.unwrap().await.unwrap()).await;
            ep.wait_idle().await;
            out
        })
    });
    let addr = addr_rx.recv().unwrap();
    let (client_cfg, name) = (crypto.client, crypto.server_name);
    let client = std::thread::spawn(move || {
        pin(cores.a);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut ep = node_endpoint(None);
            ep.set_default_client_config(client_cfg);
            let out = dial(ep.connect(addr, &name).unwrap().await.unwrap()).await;
            ep.wait_idle().await;
            out
        })
    });
    let dialed = client.join().unwrap();
    (server.join().unwrap(), dialed)
}

/// A quinn endpoint on loopback on a socket as nodes bind it (its buffers included), in the
/// current tokio runtime.
fn node_endpoint(server: Option<quinn::ServerConfig>) -> quinn::Endpoint {
    let (socket, _) = corelane_net::udp_socket(&RemoteConfig::dev()).expect("socket");
    let runtime = quinn::default_runtime().expect("a tokio runtime");
    quinn::Endpoint::new(quinn::EndpointConfig::default(), server, socket, runtime).expect("endpoint")
}

pub(crate) fn raw_quic_stream(cores: Cores, n: u64) -> Vec<Figure> {
    const CHUNK: usize = 64 << 10;
    let total = n as usize * RECORD;
    let serve = move |conn: quinn::Connection| async move {
        let mut recv = conn.accept_uni().await.unwrap();
        // The first record says the sender is ready; the clock starts with the second.
        let mut first = [0u8; RECORD];
        recv.read_exact(&mut first).await.unwrap();
        let start = Instant::now();
        let (mut got, mut records) = (0usize, 0usize);
        while let Some(chunk) = recv.read_chunk(usize::MAX, true).await.unwrap() {
            got += chunk.bytes.len();
            // What a receiver does at least: find every record's boundary.
            records = got / RECORD;
            if got >= total {
                break;
            }
        }
        let elapsed = start.elapsed();
        conn.close(0u32.into(), b"done");
        (records, elapsed)
    };
    let dial = move |conn: quinn::Connection| async move {
        let mut send = conn.open_uni().await.unwrap();
        send.write_all(&[7u8; RECORD]).await.unwrap();
        let mut left = total;
        let mut buf = bytes::BytesMut::with_capacity(CHUNK);
        while left > 0 {
            let len = left.min(CHUNK / RECORD * RECORD);
            buf.resize(len, 7);
            send.write_chunk(buf.split().freeze()).await.unwrap();
            buf.reserve(CHUNK);
            left -= len;
        }
        let _ = conn.closed().await;
    };
    let ((records, elapsed), ()) = bare_quinn(cores, serve, dial);
    assert_eq!(records, n as usize, "the receiver counted every record");
    vec![fig("raw-quic-stream", "msgs_per_sec", n as f64 / elapsed.as_secs_f64(), "msg/s")]
}

pub(crate) fn raw_quic(cores: Cores, n: u64) -> Vec<Figure> {
    let serve = |conn: quinn::Connection| async move {
        // Unidirectional streams, one each way, as nodes use them.
        let mut recv = conn.accept_uni().await.unwrap();
        let mut send = conn.open_uni().await.unwrap();
        let mut buf = [0u8; 64];
        while recv.read_exact(&mut buf).await.is_ok() {
            send.write_all(&buf).await.unwrap();
        }
    };
    let dial = move |conn: quinn::Connection| async move {
        let mut send = conn.open_uni().await.unwrap();
        let msg = [7u8; 64];
        let mut buf = [0u8; 64];
        send.write_all(&msg).await.unwrap();
        let mut recv = conn.accept_uni().await.unwrap();
        recv.read_exact(&mut buf).await.unwrap();
        for _ in 0..n / 10 {
            send.write_all(&msg).await.unwrap();
            recv.read_exact(&mut buf).await.unwrap();
        }
        let mut h = Histogram::<u64>::new(3).unwrap();
        let start = Instant::now();
        for _ in 0..n {
            let t0 = Instant::now();
            send.write_all(&msg).await.unwrap();
            recv.read_exact(&mut buf).await.unwrap();
            h.record(t0.elapsed().as_nanos() as u64).unwrap();
        }
        let total = start.elapsed();
        send.finish().unwrap();
        conn.close(0u32.into(), b"done");
        (total, h)
    };
    let ((), (total, h)) = bare_quinn(cores, serve, dial);
    let mut v = vec![fig("raw-quic", "ns_per_roundtrip", total.as_nanos() as f64 / n as f64, "ns")];
    v.extend(percentiles("raw-quic", &h));
    v
}
