//! The net thread's core from the environment (`CORELANE_NET_CORE`): the thread is pinned
//! there, and a core the host does not keep free is warned about (its own test binary: it sets
//! the process's environment and installs the log subscriber).

use corelane::host::{PlacementWarning, Topology};
use corelane::{Idle, Runtime, Shards};
use corelane_net::{Node, RemoteConfig, StartError};

/// The CPU list the thread named `name` of this process may run on.
fn allowed_cores_of(name: &str) -> Option<String> {
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            return status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|s| s.trim().to_string());
        }
    }
    None
}

#[test]
fn the_environment_pins_the_net_thread_and_a_shared_core_is_warned_about() {
    let log = corelane::testkit::capture_logs(tracing::Level::WARN);
    let core =
        core_affinity::get_core_ids().expect("cores").into_iter().map(|c| c.id).next_back().expect("a core");
    let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Park).build().unwrap();

    // Changing the environment is sound here: this binary's only test runs on this thread, and
    // no thread of the runtime reads the environment.
    std::env::set_var("CORELANE_NET_CORE", "one");
    match Node::start(&rt, RemoteConfig::dev()) {
        Err(StartError::Environment(v)) => assert_eq!(v, "one"),
        other => panic!("expected an environment error, got {:?}", other.map(|_| ())),
    }
    std::env::set_var("CORELANE_NET_CORE", core.to_string());
    let node = Node::start(&rt, RemoteConfig::dev()).expect("node");
    assert_eq!(allowed_cores_of("corelane-net").as_deref(), Some(core.to_string().as_str()), "pinned there");
    let text = log.text();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("placement: net thread")).collect();
    let expected = Topology::read().placement_warnings(&[], Some((core, None)));
    assert_eq!(lines.len(), expected.len(), "{lines:?} for {expected:?}");
    if expected.contains(&PlacementWarning::NotIsolated { core }) {
        assert!(lines.iter().any(|l| l.contains(&format!("core {core} is not isolated"))), "{lines:?}");
    }
    node.shutdown();
    rt.shutdown().unwrap();
    std::env::remove_var("CORELANE_NET_CORE");
}
