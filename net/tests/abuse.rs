//! Abuse by a peer that passed TLS (or anyone, under development TLS): what it can make a node
//! hold is bounded, it can speak only for itself, and what a restarted node's predecessor was
//! sent never reaches the newcomer. Real QUIC on loopback; raw quinn clients where a node would
//! not misbehave.

mod common;

use bytes::Bytes;
use common::raw::*;
use common::*;
use corelane::{DeadLetterReason, Runtime};
use corelane_net::{ErrorCode, Limits, Node, RemoteAskError, RemoteConfig, RemoteRef, TlsError};
use corelane_proto::v1::Envelope;
use prost::Name;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// A node serving an account (registered as "account" and exposed) under `limits`.
struct Server {
    rt: Runtime,
    node: Node,
}

fn server(limits: Limits) -> Server {
    let rt = runtime();
    let node = node_with(&rt, RemoteConfig { limits, ..RemoteConfig::dev() });
    node.serve(account_protocol());
    node.register_kind("account", account_protocol(), Account::default);
    let acc = rt.spawn(Account::default).unwrap();
    rt.register("account", &acc).unwrap();
    node.expose(&acc, account_protocol());
    Server { rt, node }
}

/// A client node with the server's account looked up.
fn client(s: &Server) -> (Runtime, Node, RemoteRef) {
    let rt = runtime();
    let n = node(&rt);
    let acc = n.remote(s.node.addr()).lookup("account").timeout(T).wait().expect("lookup");
    (rt, n, acc)
}

fn balance(acc: &RemoteRef) -> Balance {
    acc.ask::<_, Balance>(&GetBalance {}).timeout(T).wait().expect("the node answers")
}

fn refused_code<R: std::fmt::Debug>(r: Result<R, RemoteAskError>) -> ErrorCode {
    match r {
        Err(RemoteAskError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Waits (on answers from the node, not on sleeps) until `f` holds.
fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within {T:?}");
        std::thread::yield_now();
    }
}

#[test]
fn no_tls_is_a_clear_error_and_dev_tls_is_explicit() {
    let rt = runtime();
    let e = Node::start(&rt, RemoteConfig::default()).unwrap_err();
    assert!(matches!(e, corelane_net::StartError::Tls(TlsError::Unset)), "{e}");
    assert!(e.to_string().contains("RemoteConfig::dev()"), "the error says what to do: {e}");
    assert!(Node::start(&rt, RemoteConfig::dev()).is_ok());
}

#[test]
fn an_address_in_use_is_a_bind_error_that_keeps_the_system_error() {
    use std::error::Error;
    let rt = runtime();
    let first = Node::start(&rt, RemoteConfig::dev()).unwrap();
    let taken = first.addr();
    // QUIC is UDP: the same UDP port, taken by another socket of this process.
    let e = Node::start(&rt, RemoteConfig { bind: taken, ..RemoteConfig::dev() }).unwrap_err();
    match &e {
        corelane_net::StartError::Bind { addr, source } => {
            assert_eq!(*addr, taken);
            assert_eq!(source.kind(), std::io::ErrorKind::AddrInUse, "{source}");
        }
        other => panic!("a bind error, not {other:?}"),
    }
    let source = e.source().expect("the system's error is kept as the source");
    assert!(source.downcast_ref::<std::io::Error>().is_some());
}

/// Run by `dev_tls_warns_on_stderr_without_a_subscriber` in a child process.
#[test]
#[ignore = "run in a child process by dev_tls_warns_on_stderr_without_a_subscriber"]
fn child_starts_a_dev_node() {
    let rt = runtime();
    let _n = Node::start(&rt, RemoteConfig::dev()).unwrap();
}

#[test]
fn dev_tls_warns_on_stderr_without_a_subscriber() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "child_starts_a_dev_node", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("NOT authenticated"), "no warning on stderr: {err}");
}

#[test]
fn schedule_delays_and_intervals_from_the_wire_are_bounded() {
    let s = server(Limits::default());
    let (_rt, _n, acc) = client(&s);
    let d = Deposit { amount: 1, from: 1, seq: 0 };
    // u64::MAX nanoseconds once wrapped the deadline into the past and re-fired forever.
    let never = acc.schedule(Duration::ZERO, Duration::MAX, &d).timeout(T).wait();
    assert_eq!(refused_code(never), ErrorCode::Limit);
    let once = acc.schedule_once(Duration::MAX, &d).timeout(T).wait();
    assert_eq!(refused_code(once), ErrorCode::Limit);
    let fast = acc.schedule(Duration::ZERO, Duration::from_micros(100), &d).timeout(T).wait();
    assert_eq!(refused_code(fast), ErrorCode::Limit);
    // Within the bounds: an hour away is accepted and does not fire now.
    acc.schedule_once(Duration::from_secs(3600), &d).timeout(T).wait().expect("accepted");
    assert_eq!(balance(&acc).deposits, 0);
    assert_eq!(s.node.stats().remote_schedules, 1);
}

#[test]
fn schedules_are_limited_per_peer_and_end_with_their_peer() {
    let s = server(Limits { max_schedules_per_peer: 3, ..Limits::default() });
    let (crt, cnode, acc) = client(&s);
    let d = Deposit { amount: 1, from: 1, seq: 0 };
    for _ in 0..3 {
        acc.schedule(Duration::ZERO, Duration::from_millis(10), &d).timeout(T).wait().expect("within");
    }
    let fourth = acc.schedule(Duration::ZERO, Duration::from_millis(10), &d).timeout(T).wait();
    assert_eq!(refused_code(fourth), ErrorCode::Limit);
    assert_eq!(s.node.stats().remote_schedules, 3);
    // The peer goes away (its connection ends, not in an idle close): its schedules end.
    cnode.shutdown();
    drop(crt);
    until("the lost peer's schedules end", || s.node.stats().remote_schedules == 0);
}

#[test]
fn remote_spawns_are_limited_per_peer() {
    let s = server(Limits { max_spawns_per_peer: 3, ..Limits::default() });
    let (_rt, n, _acc) = client(&s);
    let there = n.remote(s.node.addr());
    let mut spawned = vec![];
    for i in 0..3 {
        spawned.push(there.spawn("account", &format!("a{i}")).timeout(T).wait().expect("within the quota"));
    }
    let over = there.spawn("account", "a3").timeout(T).wait();
    assert_eq!(refused_code(over), ErrorCode::Limit);
    assert_eq!(s.node.stats().remote_spawns, 3);
    // A stopped one frees its place.
    spawned.pop().unwrap().stop().timeout(T).wait().unwrap();
    there.spawn("account", "a4").timeout(T).wait().expect("a place was freed");
}

#[test]
fn a_refused_request_has_one_outcome_and_counts_no_late_reply() {
    let s = server(Limits::default());
    let (crt, n, _acc) = client(&s);
    let there = n.remote(s.node.addr());
    assert_eq!(refused_code(there.spawn("nobody", "").timeout(T).wait()), ErrorCode::UnknownKind);
    there.spawn("account", "taken").timeout(T).wait().unwrap();
    assert_eq!(refused_code(there.spawn("account", "taken").timeout(T).wait()), ErrorCode::NameTaken);
    // Both nodes answered and went on; a lookup round trip later, nothing was counted late.
    there.lookup("account").timeout(T).wait().unwrap();
    for rt in [&crt, &s.rt] {
        assert_eq!(rt.metrics().dead_letters_for(DeadLetterReason::LateReply), 0);
    }
}

#[test]
fn errors_do_not_echo_what_they_are_given() {
    let s = server(Limits::default());
    let (_rt, n, _acc) = client(&s);
    let huge = "x".repeat(4 << 20);
    match n.remote(s.node.addr()).lookup(&huge).timeout(T).wait() {
        Err(RemoteAskError::Refused { code: ErrorCode::NotFound, detail }) => {
            assert!(detail.len() <= corelane_proto::MAX_ERROR_DETAIL, "{} bytes echoed", detail.len())
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unfinished_frames_are_bounded_in_bytes_and_in_time() {
    let limits = Limits {
        max_buffered_per_connection: 1 << 20,
        frame_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let s = server(limits);
    // Bytes: a frame announcing 4 MiB, of which 2 MiB arrive: past the connection's bound.
    let raw = Raw::connect(s.node.addr());
    let mut bytes = hello();
    bytes.extend_from_slice(&(4u32 << 20).to_le_bytes());
    bytes.extend(vec![0u8; 2 << 20]);
    let _held = raw.open_with(bytes);
    assert!(
        matches!(raw.closed(), quinn::ConnectionError::ApplicationClosed(c) if c.error_code == 5u32.into())
    );
    // Time: a small frame begun and never finished.
    let raw = Raw::connect(s.node.addr());
    let mut bytes = hello();
    bytes.extend_from_slice(&64u32.to_le_bytes());
    bytes.extend([1u8; 10]);
    let _stalled = raw.open_with(bytes);
    assert!(
        matches!(raw.closed(), quinn::ConnectionError::ApplicationClosed(c) if c.error_code == 5u32.into())
    );
    until("nothing is held for the closed connections", || s.node.stats().buffered_bytes == 0);
    let (_rt, _n, acc) = client(&s);
    balance(&acc);
}

#[test]
fn streams_and_connections_are_limited() {
    let s = server(Limits { max_connections_per_ip: 3, max_streams_per_connection: 2, ..Limits::default() });
    let a = Raw::connect(s.node.addr());
    // Two streams may be open; the third waits for credit the node does not give.
    let _s1 = a.open_with(hello());
    let _s2 = a.open_with(hello());
    let third =
        a.rt.block_on(async { tokio::time::timeout(Duration::from_millis(300), a.conn.open_uni()).await });
    assert!(third.is_err(), "a third concurrent stream was allowed");
    let _b = Raw::connect(s.node.addr());
    let _c = Raw::connect(s.node.addr());
    until("three connections admitted", || s.node.stats().connections == 3);
    assert!(Raw::try_connect(s.node.addr()).is_err(), "a fourth connection from one address was admitted");
    drop((a, _b, _c));
    until("their places are free again", || s.node.stats().connections == 0);
    let (_rt, _n, acc) = client(&s);
    balance(&acc);
}

#[test]
fn the_peer_table_forgets_peers_that_are_gone_and_is_bounded() {
    let s = server(Limits { max_peers: 8, ..Limits::default() });
    let base = s.node.stats().peers;
    let mut open = vec![];
    for i in 0..20u16 {
        let raw = Raw::connect(s.node.addr());
        raw.stream(hello_as(&format!("127.0.0.2:{}", 1000 + i)));
        open.push(raw);
    }
    // Each claimed a new address: at most `max_peers` are remembered.
    until("the claims were read", || s.node.stats().connections == 20);
    assert!(s.node.stats().peers <= 8, "{:?}", s.node.stats());
    for raw in open.drain(..) {
        raw.conn.close(9u32.into(), b"gone");
    }
    until("the abandoned peers are forgotten", || s.node.stats().peers <= base);
}

#[test]
fn a_connection_cannot_speak_for_another_node() {
    let s = server(Limits::default());
    // The real node C, which the server has asks pending with.
    let crt = runtime();
    let c = node(&crt);
    c.serve(account_protocol());
    let c_acc = crt.spawn(Account::default).unwrap();
    crt.register("held", &c_acc).unwrap();
    let srv_client = s.node.remote(c.addr()).lookup("held").timeout(T).wait().unwrap();
    let held = srv_client.ask::<_, Balance>(&Hold {}).timeout(Duration::from_secs(2));
    // An impostor claims to be C, answers every correlation id it can guess, then fails.
    let raw = Raw::connect(s.node.addr());
    let mut bytes = hello_as(&c.addr().to_string());
    for corr in 1..64 {
        bytes.extend(frame(&Envelope::reply(corr, Balance::full_name(), Bytes::new())));
    }
    raw.stream(bytes);
    raw.conn.close(77u32.into(), b"vanish");
    // The ask to the real C neither got the impostor's answer nor failed with NodeDown.
    assert_eq!(held.wait().unwrap_err(), RemoteAskError::Timeout);
    // Correlation ids are not guessable: the forged answers matched nothing and were counted.
    assert!(
        s.rt.metrics().dead_letters_for(DeadLetterReason::LateReply) >= 63,
        "the forged answers were counted"
    );
    // And the server still reaches C.
    srv_client.ask::<_, Balance>(&GetBalance {}).timeout(T).wait().expect("C still reachable");
}

#[test]
fn a_restarted_node_refuses_what_was_meant_for_its_predecessor() {
    let s = server(Limits::default());
    let addr = s.node.addr();
    // The client runs on a test kit's runtime, so its probe can watch the stand-in.
    let kit = corelane::testkit::TestKit::with_runtime(Runtime::builder().shards(corelane::Shards::Count(1)));
    let cnode = node(kit.runtime());
    let old = cnode.remote(addr).lookup("account").timeout(T).wait().expect("lookup");
    assert_eq!(old.incarnation(), s.node.incarnation());
    // Watched from the client: its watchers hear the old actor is gone with its node.
    let probe = kit.probe();
    let standin = old.standin().unwrap();
    probe.watch(&standin);
    balance(&old); // the watch is registered there
    s.node.shutdown();
    drop(s);
    assert_eq!(probe.expect_terminated(&standin), corelane::StopReason::NodeDown);
    // A new node on the same address, whose first actor has the same id as the old account.
    let rt2 = runtime();
    let n2 = node_with(&rt2, RemoteConfig { bind: addr, ..RemoteConfig::dev() });
    n2.serve(account_protocol());
    let acc2 = rt2.spawn(Account::default).unwrap();
    assert_eq!(acc2.id().as_u64(), old.id(), "the test needs the id reused");
    n2.expose(&acc2, account_protocol());
    assert_ne!(n2.incarnation(), old.incarnation());
    let dead = rt2.handle().subscribe_channel(|e| {
        matches!(
            e,
            corelane::Event::Deadletter {
                reason: DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget),
                ..
            }
        )
    });
    old.tell(&Deposit { amount: 100, from: 1, seq: 1 }).unwrap();
    assert!(dead.1.recv_timeout(T).is_ok(), "the tell was refused there");
    let asked = old.ask::<_, Balance>(&GetBalance {}).timeout(T).wait();
    assert_eq!(refused_code(asked), ErrorCode::NodeRestarted);
    // The new node's actor got nothing, and refs to the new incarnation work.
    let local = acc2.ask(AccountMsg::Balance).timeout(T).wait().unwrap();
    assert_eq!(local.deposits, 0);
    rt2.register("account", &acc2).unwrap();
    let fresh = cnode.remote(addr).lookup("account").timeout(T).wait().expect("lookup on the new node");
    assert_eq!(fresh.incarnation(), n2.incarnation());
    balance(&fresh);
}
