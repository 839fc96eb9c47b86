//! Export through the `metrics` facade: what `record`, `record_actor` and a running `Exporter`
//! write, read back from a recorder installed for this test binary. One test: the series are
//! the process's, and two runtimes recording at once would write the same ones.

use corelane::export::{self, Exporter};
use corelane::{Actor, ActorError, Ctx, DeadLetterReason, Idle, Reply, Runtime, Shards};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// The process's recorder (one per process: both tests read it, each under its own labels).
fn snapshotter() -> &'static Snapshotter {
    static S: OnceLock<Snapshotter> = OnceLock::new();
    S.get_or_init(|| {
        let r = DebuggingRecorder::new();
        let s = r.snapshotter();
        r.install().expect("the only recorder of this test binary");
        s
    })
}

/// What was recorded since the last snapshot (taking one swaps counters back to zero).
type Recorded = Vec<(metrics_util::CompositeKey, DebugValue)>;

fn recorded() -> Recorded {
    snapshotter().snapshot().into_vec().into_iter().map(|(k, _, _, v)| (k, v)).collect()
}

/// The value of metric `name` with `labels` (all of them, in any order) in `r`, if recorded.
fn value_in(r: &Recorded, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    r.iter().find_map(|(k, v)| {
        let key = k.key();
        let ok = key.name() == name
            && key.labels().count() == labels.len()
            && labels.iter().all(|(lk, lv)| key.labels().any(|l| l.key() == *lk && l.value() == *lv));
        ok.then(|| match v {
            DebugValue::Counter(n) => *n as f64,
            DebugValue::Gauge(g) => g.into_inner(),
            DebugValue::Histogram(_) => f64::NAN,
        })
    })
}

enum M {
    Work,
    Ping(Reply<()>),
}
#[derive(Clone)]
struct Worker;
impl Actor for Worker {
    type Msg = M;
    fn receive(&mut self, _: &mut Ctx<Self>, m: M) -> Result<(), ActorError> {
        if let M::Ping(r) = m {
            r.send(());
        }
        Ok(())
    }
}

#[test]
fn record_and_a_periodic_exporter_write_the_runtimes_the_shards_and_chosen_actors_figures() {
    // Installed before anything records (what is recorded before goes nowhere).
    snapshotter();
    record_writes_the_runtimes_the_shards_and_an_actors_figures();
    an_exporter_records_every_period_and_forgets_actors_that_stop();
}

fn record_writes_the_runtimes_the_shards_and_an_actors_figures() {
    let rt = Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park).build().unwrap();
    let w = rt.spawn_value(Worker).unwrap();
    for _ in 0..41 {
        w.tell(M::Work).unwrap();
    }
    w.ask(M::Ping).timeout(WAIT).wait().unwrap();
    let gone = rt.spawn_value(Worker).unwrap();
    gone.stop().timeout(WAIT).wait().unwrap();
    gone.tell(M::Work).unwrap();
    // The dead letter is counted when its shard sees it: a ping on that path orders the check.
    rt.spawn_on(gone.id().shard(), || Worker).unwrap().ask(M::Ping).timeout(WAIT).wait().unwrap();

    // A shard publishes what it handled at the end of its pass, which may come after the
    // answer: wait for the pass that handled the ping (bounded).
    let deadline = std::time::Instant::now() + WAIT;
    while rt.metrics().shards.iter().map(|s| s.processed).sum::<u64>() < 42 {
        assert!(std::time::Instant::now() < deadline, "the shards publish what they handled");
        std::thread::yield_now();
    }
    export::record(rt.handle());
    let m = rt.metrics();
    let r = recorded();
    let value = |name: &str, labels: &[(&str, &str)]| value_in(&r, name, labels);
    assert_eq!(value("corelane_actors", &[]), Some(m.actors as f64));
    assert_eq!(value("corelane_dead_letters_total", &[("reason", "ActorStopped")]), Some(1.0));
    assert_eq!(value("corelane_dead_letters_total", &[("reason", "Malformed")]), Some(0.0), "every reason");
    let processed: f64 = (0..2)
        .map(|s| value("corelane_shard_processed_total", &[("shard", &s.to_string())]).expect("each shard"))
        .sum();
    assert!(processed >= 42.0, "{processed}");
    assert!(value("corelane_shard_idle_ratio", &[("shard", "1")]).is_some());

    export::record_kinds(&rt.kind_metrics().timeout(WAIT).wait().unwrap());
    let r = recorded();
    let kind = [("kind", "export::Worker")];
    assert_eq!(
        value_in(&r, "corelane_kind_actors", &kind),
        Some(2.0),
        "w and the pinger (the stopped one is not counted)"
    );
    assert_eq!(value_in(&r, "corelane_kind_processed", &kind), Some(43.0));
    assert_eq!(value_in(&r, "corelane_kind_queued", &kind), Some(0.0));

    let am = w.metrics().timeout(WAIT).wait().unwrap();
    export::record_actor("record-worker", &am);
    let r = recorded();
    let value = |name: &str, labels: &[(&str, &str)]| value_in(&r, name, labels);
    assert_eq!(value("corelane_actor_processed_total", &[("actor", "record-worker")]), Some(42.0));
    assert_eq!(value("corelane_actor_mailbox_len", &[("actor", "record-worker")]), Some(0.0));
    rt.shutdown().unwrap();
}

fn an_exporter_records_every_period_and_forgets_actors_that_stop() {
    let rt = Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park).build().unwrap();
    let w = rt.spawn_value(Worker).unwrap();
    let exporter = Exporter::start(rt.handle(), Duration::from_millis(10)).unwrap();
    exporter.watch("exported-worker", &w.untyped());
    let series = [("actor", "exported-worker")];
    let value = |name: &str, labels: &[(&str, &str)]| value_in(&recorded(), name, labels);
    // Each period records anew: the count follows the actor's work.
    for expected in [5.0, 12.0] {
        let until = if expected == 5.0 { 5 } else { 7 };
        for _ in 0..until {
            w.tell(M::Work).unwrap();
        }
        let deadline = Instant::now() + WAIT;
        let mut seen = None;
        while seen != Some(expected) {
            assert!(Instant::now() < deadline, "not recorded: {seen:?}");
            std::thread::yield_now();
            seen = value("corelane_actor_processed_total", &series);
        }
    }
    let deadline = Instant::now() + WAIT;
    while value("corelane_kind_actors", &[("kind", "export::Worker")]) != Some(1.0) {
        assert!(Instant::now() < deadline, "the kinds are recorded every period too");
        std::thread::yield_now();
    }
    let deadline = Instant::now() + WAIT;
    while value("corelane_uptime_seconds", &[]).is_none_or(|u| u == 0.0) {
        assert!(Instant::now() < deadline, "the runtime's figures are recorded too");
        std::thread::yield_now();
    }
    w.stop().timeout(WAIT).wait().unwrap();
    // Asked no more once gone: the exporter keeps running and its runtime stays healthy.
    let before = rt.metrics().dead_letters_for(DeadLetterReason::ActorStopped);
    let probe = rt.spawn_value(Worker).unwrap();
    for _ in 0..3 {
        probe.ask(M::Ping).timeout(WAIT).wait().unwrap();
    }
    assert_eq!(rt.metrics().dead_letters_for(DeadLetterReason::ActorStopped), before);
    exporter.stop();
    rt.shutdown().unwrap();
}
