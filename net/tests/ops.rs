//! The operations endpoint on loopback: `/health`, `/ready` and `/metrics` as a probe or a
//! scraper reads them, for a node alone and for a cluster member, through its life.

mod common;

use common::members;
use corelane_net::cluster::MemoryProvider;
use corelane_net::ops::Ops;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One request, as a probe sends it: status code and body.
fn get(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

#[test]
fn a_lone_node_is_live_and_ready_until_it_shuts_down_and_serves_its_metrics() {
    let rt = common::runtime();
    let node = common::node(&rt);
    let ops =
        Ops::start(&node, "127.0.0.1:0".parse().unwrap(), || "corelane_actors 7\n".to_string()).unwrap();
    let addr = ops.addr();
    assert_eq!(get(addr, "GET", "/health"), (200, "ok\n".into()));
    assert_eq!(get(addr, "GET", "/ready"), (200, "ok\n".into()));
    assert_eq!(get(addr, "GET", "/metrics"), (200, "corelane_actors 7\n".into()));
    assert_eq!(get(addr, "GET", "/nowhere").0, 404);
    assert_eq!(get(addr, "POST", "/health").0, 405);
    // Many probes at once are served (bounded, not refused).
    let probes: Vec<_> = (0..40).map(|_| std::thread::spawn(move || get(addr, "GET", "/health").0)).collect();
    assert!(probes.into_iter().all(|p| p.join().unwrap() == 200));
    node.shutdown();
    assert_eq!(get(addr, "GET", "/health"), (503, "node shut down\n".into()));
    assert_eq!(get(addr, "GET", "/ready").0, 503);
    ops.stop();
    assert!(TcpStream::connect(addr).is_err(), "stopped: nothing listens");
}

#[test]
fn a_cluster_member_is_ready_while_it_serves_and_not_live_once_it_left() {
    let store = MemoryProvider::new();
    let m = members::join(&store, "ops", "a", |_| {}, |b| b);
    let ops = Ops::start(&m.node, "127.0.0.1:0".parse().unwrap(), String::new).unwrap();
    let addr = ops.addr();
    assert!(m.cluster.in_cluster());
    assert_eq!(get(addr, "GET", "/ready"), (200, "ok\n".into()));
    assert!(m.cluster.leave(Duration::from_secs(10)));
    assert_eq!(get(addr, "GET", "/health"), (503, "left its cluster\n".into()));
    assert_eq!(get(addr, "GET", "/ready").0, 503);
}
