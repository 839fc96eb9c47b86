//! Two processes, one actor each side of a QUIC connection.
//!
//! ```text
//! cargo run --release -p corelane-net --example remote_pingpong -- server [ADDR]
//! cargo run --release -p corelane-net --example remote_pingpong -- client [ADDR] [ASKS]
//! ```
//!
//! The server starts a node on ADDR (default `127.0.0.1:4700`), registers an echo actor as
//! "echo", prints `listening on ADDR` and serves until it is killed. The client starts its own
//! node, looks "echo" up on the server, asks it ASKS times (default 10 000) with a 64-byte
//! payload, and prints the round-trip percentiles.

use bytes::Bytes;
use corelane::{Actor, ActorError, Ctx, Reply, Runtime, Shards};
use corelane_net::{Node, Protocol, RemoteConfig};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The request and the answer: 64 bytes each way.
#[derive(Clone, PartialEq, prost::Message)]
struct Ping {
    #[prost(bytes = "bytes", tag = "1")]
    data: Bytes,
}
impl prost::Name for Ping {
    const NAME: &'static str = "Ping";
    const PACKAGE: &'static str = "example.v1";
}

struct Echo;
impl Actor for Echo {
    type Msg = (Ping, Reply<Ping>);
    fn receive(&mut self, _: &mut Ctx<Self>, (ping, reply): (Ping, Reply<Ping>)) -> Result<(), ActorError> {
        reply.send(ping);
        Ok(())
    }
}

fn runtime() -> Runtime {
    Runtime::builder().shards(Shards::Count(1)).build().expect("runtime")
}

fn server(addr: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let rt = runtime();
    let node = Node::start(&rt, RemoteConfig { bind: addr, ..RemoteConfig::dev() })?;
    node.serve(Protocol::new().ask(|p: Ping, r: Reply<Ping>| (p, r)));
    let echo = rt.spawn(|| Echo)?;
    rt.register("echo", &echo)?;
    println!("listening on {}", node.addr());
    // Serve until killed.
    loop {
        std::thread::park();
    }
}

fn client(addr: SocketAddr, asks: usize) -> Result<(), Box<dyn std::error::Error>> {
    let rt = runtime();
    let node = Node::start(&rt, RemoteConfig::dev())?;
    let echo = node.remote(addr).lookup("echo").timeout(Duration::from_secs(5)).wait()?;
    let ping = Ping { data: Bytes::from(vec![7u8; 64]) };
    let mut rtts = Vec::with_capacity(asks);
    for _ in 0..asks {
        let t = Instant::now();
        let pong: Ping = echo.ask(&ping).timeout(Duration::from_secs(5)).wait()?;
        rtts.push(t.elapsed());
        assert_eq!(pong.data.len(), 64);
    }
    rtts.sort();
    let q = |f: f64| rtts[((rtts.len() as f64 * f) as usize).min(rtts.len() - 1)];
    println!("{asks} asks to {addr}: p50 {:?}, p99 {:?}, max {:?}", q(0.5), q(0.99), rtts[rtts.len() - 1]);
    node.shutdown();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Shows the node's warnings (the development certificate's among them).
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr: SocketAddr = args.get(1).map_or("127.0.0.1:4700", String::as_str).parse()?;
    match args.first().map(String::as_str) {
        Some("server") => server(addr),
        Some("client") => client(addr, args.get(2).map_or(Ok(10_000), |n| n.parse())?),
        _ => {
            eprintln!("usage: remote_pingpong server [ADDR] | client [ADDR] [ASKS]");
            std::process::exit(2);
        }
    }
}
