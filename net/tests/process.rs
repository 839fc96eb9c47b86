//! Two separate processes: a node in the `remote_pingpong` example's server process, this test
//! as the other node. Then the server is killed (SIGKILL): asks fail, watchers hear NodeDown,
//! nothing hangs.

mod common;

use bytes::Bytes;
use corelane::testkit::TestKit;
use corelane::{Runtime, Shards, StopReason};
use corelane_net::{Node, RemoteAskError, RemoteConfig};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The example's wire message, declared here again: the manifest is what must match.
#[derive(Clone, PartialEq, prost::Message)]
struct Ping {
    #[prost(bytes = "bytes", tag = "1")]
    data: Bytes,
}
impl prost::Name for Ping {
    const NAME: &'static str = "Ping";
    const PACKAGE: &'static str = "example.v1";
}

/// The example binary, built if this test run did not build it.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let bin = dir.join("remote_pingpong");
    if !bin.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "corelane-net", "--example", "remote_pingpong"])
            .status()
            .unwrap();
        assert!(status.success(), "building the example");
    }
    bin
}

/// Starts the server process on a free loopback port; its address.
fn server() -> (Child, SocketAddr) {
    let mut child = Command::new(example())
        .args(["server", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on ").expect("the server says where").parse().unwrap();
    (child, addr)
}

/// Kills the child if a test fails before it does.
struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_node_in_another_process_answers_and_its_death_fails_asks_and_tells_watchers() {
    let (child, addr) = server();
    let mut child = Killed(child);
    let kit = TestKit::with_runtime(Runtime::builder().shards(Shards::Count(1)));
    // Loss is detected after 1 s of silence.
    let cfg = RemoteConfig {
        keep_alive: Duration::from_millis(200),
        dead_after: Duration::from_secs(1),
        connect_attempts: 2,
        ..RemoteConfig::dev()
    };
    let node = Node::start(kit.runtime(), cfg).unwrap();
    let echo = node.remote(addr).lookup("echo").timeout(Duration::from_secs(10)).wait().unwrap();
    let ping = Ping { data: Bytes::from(vec![1u8; 64]) };
    for _ in 0..100 {
        let pong: Ping = echo.ask(&ping).timeout(Duration::from_secs(10)).wait().unwrap();
        assert_eq!(pong, ping);
    }
    let probe = kit.probe();
    let standin = echo.standin().unwrap();
    probe.watch(&standin);

    child.0.kill().unwrap(); // SIGKILL: no close, no goodbye.
    child.0.wait().unwrap();

    let start = Instant::now();
    let r = echo.ask::<_, Ping>(&ping).timeout(Duration::from_secs(5)).wait();
    assert!(
        matches!(r, Err(RemoteAskError::NodeDown | RemoteAskError::Timeout)),
        "an ask to a killed node fails: {r:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(6), "and does not hang");
    assert_eq!(probe.expect_terminated(&standin), StopReason::NodeDown);
}
