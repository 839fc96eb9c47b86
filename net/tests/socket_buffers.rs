//! A node's UDP socket buffers: granted as asked within the kernel's limit, shown in the node's
//! stats, and a grant short of what was asked warned about with the setting that raises it (its
//! own test binary: it installs the log subscriber).

use corelane::{Idle, Runtime, Shards};
use corelane_net::{Node, RemoteConfig};

/// The kernel's limit `name` (`rmem_max`, `wmem_max`), where it can be read.
fn limit(name: &str) -> Option<usize> {
    std::fs::read_to_string(format!("/proc/sys/net/core/{name}")).ok()?.trim().parse().ok()
}

#[test]
fn a_node_gets_the_socket_buffers_it_asks_for_and_warns_when_the_kernel_grants_less() {
    let log = corelane::testkit::capture_logs(tracing::Level::WARN);
    let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Park).build().unwrap();
    let warnings = || log.text().lines().filter(|l| l.contains("UDP socket buffers")).count();

    // Within the limits (208 KiB is Linux's default limit, so any host grants it): granted as
    // asked, and nothing to warn about.
    let asked = 200 << 10;
    let node = Node::start(&rt, RemoteConfig { socket_buffer: asked, ..RemoteConfig::dev() }).expect("node");
    let b = node.stats().socket.expect("a running node has its socket");
    assert_eq!((b.asked, b.receive, b.send), (asked, asked, asked), "{b:?}");
    assert_eq!(warnings(), 0, "{}", log.text());
    node.shutdown();
    assert_eq!(node.stats().socket, None, "a node shut down holds no socket");

    // More than the kernel grants: what it granted (its limit), and one warning that names
    // the setting.
    let asked = i32::MAX as usize;
    let node = Node::start(&rt, RemoteConfig { socket_buffer: asked, ..RemoteConfig::dev() }).expect("node");
    let b = node.stats().socket.expect("socket");
    assert!(b.short() && b.receive < asked && b.send < asked, "{b:?}");
    if let (Some(r), Some(w)) = (limit("rmem_max"), limit("wmem_max")) {
        assert_eq!((b.receive, b.send), (r, w), "the kernel's limits");
    }
    assert_eq!(warnings(), 1, "{}", log.text());
    let text = log.text();
    assert!(text.contains("net.core.rmem_max") && text.contains("net.core.wmem_max"), "{text}");
    node.shutdown();
    rt.shutdown().unwrap();
}
