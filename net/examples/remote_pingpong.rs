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

fn client(addr: SocketAddr, asks: u64) -> Result<(), Box<dyn std::error::Error>> {
    let rt = runtime();
    let node = Node::start(&rt, RemoteConfig::dev())?;
    let echo = node.remote(addr).lookup("echo").timeout(Duration::from_secs(5)).wait()?;
    let ping = Ping { data: Bytes::from(vec![7u8; 64]) };
    // Round trips in nanoseconds, 3 significant digits.
    let mut rtts = hdrhistogram::Histogram::<u64>::new(3)?;
    for _ in 0..asks {
        let t = Instant::now();
        let pong: Ping = echo.ask(&ping).timeout(Duration::from_secs(5)).wait()?;
        rtts.record(t.elapsed().as_nanos() as u64)?;
        assert_eq!(pong.data.len(), 64);
    }
    let q = |p: f64| Duration::from_nanos(rtts.value_at_quantile(p));
    println!("{asks} asks to {addr}: p50 {:?}, p99 {:?}, max {:?}", q(0.5), q(0.99), q(1.0));
    node.shutdown();
    Ok(())
}

/// The example's command line.
#[derive(clap::Parser)]
#[command(about = "Two processes, one actor each side of a QUIC connection")]
enum Cli {
    /// Serve an echo actor named "echo" until killed.
    Server {
        /// Where to listen.
        #[arg(default_value = "127.0.0.1:4700")]
        addr: SocketAddr,
    },
    /// Look "echo" up on the server and ask it ASKS times; print the round-trip percentiles.
    Client {
        /// The server's address.
        #[arg(default_value = "127.0.0.1:4700")]
        addr: SocketAddr,
        /// How many asks.
        #[arg(default_value_t = 10_000)]
        asks: u64,
    },
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Shows the node's warnings (the development certificate's among them).
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    match <Cli as clap::Parser>::parse() {
        Cli::Server { addr } => server(addr),
        Cli::Client { addr, asks } => client(addr, asks),
    }
}
