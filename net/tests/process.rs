//! Two separate processes: a node in a server process (this test binary run again, as
//! `server_process`), this test as the other node. Then the server is killed (SIGKILL): asks
//! fail, watchers hear NodeDown, nothing hangs.

mod common;

use common::{account_protocol, Account, Echo};
use corelane::testkit::TestKit;
use corelane::{Runtime, Shards, StopReason};
use corelane_net::{Node, RemoteAskError, RemoteConfig};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set in the environment of the server process: this test binary, run again.
const SERVER_ROLE: &str = "CORELANE_PROCESS_TEST_SERVER";

/// The other process's node: an actor named "echo" that echoes, on a free loopback port, served
/// until the process is killed. Runs only as the server process (started by the test below with
/// `SERVER_ROLE` set); anywhere else it returns at once.
#[test]
#[ignore = "the server process of the test below, which starts it"]
fn server_process() {
    if std::env::var_os(SERVER_ROLE).is_none() {
        return;
    }
    let rt = Runtime::builder().shards(Shards::Count(1)).build().unwrap();
    let node = Node::start(&rt, RemoteConfig::dev()).unwrap();
    // The tests' account actor answers an `Echo` with the same bytes.
    node.serve(account_protocol());
    rt.register("echo", &rt.spawn(Account::default).unwrap()).unwrap();
    println!("listening on {}", node.addr());
    loop {
        std::thread::park();
    }
}

/// Starts the server process (this test binary again, built with it: no build inside the
/// test); its address.
fn server() -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "server_process", "--nocapture", "--test-threads=1", "-q"])
        .env(SERVER_ROLE, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // The test harness may print lines of its own first.
    let addr = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the server process ended before it listened");
        if let Some(a) = line.trim().strip_prefix("listening on ") {
            break a.parse().unwrap();
        }
    };
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
    let ping = Echo { data: vec![1u8; 64] };
    for _ in 0..100 {
        let pong: Echo = echo.ask(&ping).timeout(Duration::from_secs(10)).wait().unwrap();
        assert_eq!(pong, ping);
    }
    let probe = kit.probe();
    let standin = echo.standin().unwrap();
    probe.watch(&standin);

    child.0.kill().unwrap(); // SIGKILL: no close, no goodbye.
    child.0.wait().unwrap();

    let start = Instant::now();
    let r = echo.ask::<_, Echo>(&ping).timeout(Duration::from_secs(5)).wait();
    assert!(
        matches!(r, Err(RemoteAskError::NodeDown | RemoteAskError::Timeout)),
        "an ask to a killed node fails: {r:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(6), "and does not hang");
    assert_eq!(probe.expect_terminated(&standin), StopReason::NodeDown);
}
