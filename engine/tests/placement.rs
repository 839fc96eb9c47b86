//! Placement: a runtime placed from the environment (`CORELANE_CORES`, `CORELANE_SHARDS`,
//! `CORELANE_IDLE`), and the warnings at start about named cores the host does not keep free
//! (its own test binary: it sets the process's environment and installs the log subscriber).

use corelane::host::{PlacementWarning, Topology};
use corelane::testkit::capture_logs;
use corelane::{BuildError, Idle, Runtime, Shards};

/// Lines of the log that warn about placement.
fn placement_lines(text: &str) -> Vec<String> {
    text.lines().filter(|l| l.contains("placement:")).map(str::to_string).collect()
}

#[test]
fn named_cores_are_checked_against_the_host_and_the_environment_places_a_runtime() {
    let log = capture_logs(tracing::Level::WARN);
    let topology = Topology::read();
    let usable = core_affinity::get_core_ids().expect("cores").into_iter().map(|c| c.id).collect::<Vec<_>>();
    let core = *usable.last().expect("a core");

    // Named cores: one warning per thing the host does against them, each naming the core.
    let rt = Runtime::builder().shards(Shards::Cores(vec![core])).idle(Idle::Park).build().unwrap();
    assert_eq!(rt.shard_cores(), [Some(core)]);
    rt.shutdown().unwrap();
    let expected = topology.placement_warnings(&[core], None);
    let lines = placement_lines(&log.text());
    assert_eq!(lines.len(), expected.len(), "{lines:?} for {expected:?}");
    let isolated = topology.isolated.as_ref().is_some_and(|i| i.contains(&core));
    if topology.isolated.is_some() && !isolated {
        assert_eq!(expected, [PlacementWarning::NotIsolated { core }]);
        assert!(lines[0].contains(&format!("core {core} is not isolated")), "{}", lines[0]);
    }

    // A count of shards names no core: nothing to warn about.
    let rt = Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park).build().unwrap();
    assert_eq!(rt.shard_cores(), [None, None]);
    rt.shutdown().unwrap();
    assert_eq!(placement_lines(&log.text()).len(), expected.len(), "no new warning");

    // From the environment. Changing it is sound here: this binary's only test runs on this
    // thread, and the runtimes built before were shut down (their threads joined), so no other
    // thread reads the environment meanwhile.
    let set = |var: &str, value: Option<&str>| match value {
        Some(v) => std::env::set_var(var, v),
        None => std::env::remove_var(var),
    };
    set("CORELANE_CORES", Some(&core.to_string()));
    set("CORELANE_IDLE", Some("park"));
    let rt = Runtime::builder().build().unwrap();
    assert_eq!(rt.shard_cores(), [Some(core)], "CORELANE_CORES places the shards");
    rt.shutdown().unwrap();
    assert_eq!(
        placement_lines(&log.text()).len(),
        2 * expected.len(),
        "cores from the environment are checked too"
    );

    // A value it cannot use is an error naming the variable, unless the code chose itself.
    set("CORELANE_CORES", Some("2-x"));
    match Runtime::builder().build() {
        Err(BuildError::Environment { var, value, .. }) => {
            assert_eq!((var, value.as_str()), ("CORELANE_CORES", "2-x"))
        }
        other => panic!("expected an environment error, got {:?}", other.map(|_| ())),
    }
    let rt = Runtime::builder().shards(Shards::Count(1)).build().expect("the code's own choice wins");
    rt.shutdown().unwrap();
    set("CORELANE_CORES", None);
    set("CORELANE_SHARDS", Some("3"));
    let rt = Runtime::builder().build().unwrap();
    assert_eq!(rt.shard_count(), 3);
    rt.shutdown().unwrap();
    set("CORELANE_SHARDS", None);
    set("CORELANE_IDLE", Some("nap"));
    let err = Runtime::builder().build().map(|_| ()).unwrap_err();
    assert!(matches!(err, BuildError::Environment { var: "CORELANE_IDLE", .. }), "{err}");
    assert!(err.to_string().contains("CORELANE_IDLE=\"nap\""), "{err}");
    set("CORELANE_IDLE", None);
}
