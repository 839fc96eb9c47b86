//! Metrics: the runtime's snapshot (actors, dead letters, uptime, per shard: processed, idle
//! share, wakes, queue depths) and an actor's (children, stash, restarts, last processing time,
//! processed, mailbox depth, dead letters).

use corelane::testkit::TestKit;
use corelane::{Actor, ActorError, Ctx, DeadLetterReason, Reply};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

enum Msg {
    Work(u64),
    Stash(u32),
    Spawn(Reply<()>),
    Fail,
    Block(std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>),
}

struct Worker(u64);
impl Actor for Worker {
    type Msg = Msg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
        match m {
            Msg::Work(n) => self.0 = self.0.wrapping_add((0..n).sum::<u64>()),
            Msg::Stash(i) => ctx.stash(Msg::Stash(i)).map_err(|_| ActorError::msg("stash full"))?,
            Msg::Spawn(r) => {
                ctx.spawn_child(|| Worker(0))?;
                r.send(());
            }
            Msg::Fail => return Err(ActorError::msg("fail")),
            Msg::Block(blocked, release) => {
                let _ = blocked.send(());
                let _ = release.recv_timeout(WAIT);
            }
        }
        Ok(())
    }
}

#[test]
fn an_actors_metrics_are_gathered_on_its_shard() {
    let kit = TestKit::new();
    let w = kit.spawn_on(1, || Worker(0)).unwrap();
    for _ in 0..300 {
        w.tell(Msg::Work(1000)).unwrap();
    }
    w.batch_tell([Msg::Stash(1), Msg::Stash(2), Msg::Fail]).unwrap();
    w.ask(Msg::Spawn).timeout(WAIT).wait().unwrap();
    w.ask(Msg::Spawn).timeout(WAIT).wait().unwrap();
    let m = w.metrics().timeout(WAIT).wait().unwrap();
    assert_eq!(m.children, 2);
    assert_eq!(m.restarts, 1);
    // The restart put the stash back at the front of the mailbox; the new instance stashed
    // both messages again.
    assert_eq!(m.stash_len, 2);
    assert_eq!(m.dead_letters, 1, "the message whose handler failed");
    assert_eq!(m.processed, 300 + 3 + 2 + 2, "every handled message, the two unstashed ones again");
    assert!(m.last_processing.is_some_and(|d| d > Duration::ZERO), "{m:?}");
    assert_eq!(m.mailbox_len, 0);
    assert!(!m.suspended);

    // A mailbox depth while the actor is busy.
    let (tx, rx) = std::sync::mpsc::channel();
    let (blocked_tx, blocked) = std::sync::mpsc::channel();
    w.tell(Msg::Block(blocked_tx, rx)).unwrap();
    blocked.recv_timeout(WAIT).unwrap();
    for _ in 0..5 {
        w.tell(Msg::Work(1)).unwrap();
    }
    // The metrics request is a system message: it is answered before the queued work, once
    // the blocking message is done.
    let pending = w.metrics();
    tx.send(()).unwrap();
    assert_eq!(pending.timeout(WAIT).wait().unwrap().mailbox_len, 5);
}

#[test]
fn the_runtime_snapshot_counts_actors_dead_letters_and_shard_activity() {
    let kit = TestKit::new();
    let before = kit.metrics();
    let a = kit.spawn_on(0, || Worker(0)).unwrap();
    let b = kit.spawn_on(1, || Worker(0)).unwrap();
    for _ in 0..100 {
        a.tell(Msg::Work(10)).unwrap();
        b.tell(Msg::Work(10)).unwrap();
    }
    a.ask(Msg::Spawn).timeout(WAIT).wait().unwrap();
    b.stop().timeout(WAIT).wait().unwrap();
    let (_sub, dead) = kit.subscribe_channel(|e| e.kind() == corelane::EventKind::Deadletter);
    b.tell(Msg::Work(1)).unwrap();
    assert!(matches!(dead.recv_timeout(WAIT).unwrap(), corelane::Event::Deadletter { .. }));
    // Shards publish their counters once per dispatcher pass, and a shard counts a wake only
    // when it had parked before the message came (on a busy machine it may not have yet):
    // round trips to both shards until every count above is in, or the wait is over.
    let mut m = kit.metrics();
    let until = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < until {
        let settled = m.shards.iter().all(|s| s.processed >= 100 && s.wakes > 0 && s.idle_share > 0.0);
        if settled && m.dead_letters == 1 {
            break;
        }
        a.metrics().timeout(WAIT).wait().unwrap();
        b.stop().timeout(WAIT).wait().unwrap(); // gone: answered by shard 1 itself
        m = kit.metrics();
    }
    assert_eq!(m.actors, before.actors + 2, "a and its child; b stopped");
    assert_eq!(m.dead_letters_for(DeadLetterReason::ActorStopped), 1);
    assert_eq!(m.dead_letters, 1);
    assert!(m.uptime > Duration::ZERO);
    assert_eq!(m.shards.len(), 2);
    assert!(m.shards.iter().all(|s| s.processed >= 100), "{:?}", m.shards);
    assert_eq!(m.shards[1].dead_letters, 1);
    for s in &m.shards {
        assert!((0.0..=1.0).contains(&s.idle_share), "{s:?}");
        assert!(s.idle_share > 0.0, "a test runtime parks most of the time: {s:?}");
        assert!(s.wakes > 0, "parked shards were woken: {s:?}");
        assert_eq!(s.inbound_depth, 0);
    }
}

/// Answers pings; a second kind of actor beside `Worker`.
struct Pinger;
impl Actor for Pinger {
    type Msg = Reply<()>;
    fn receive(&mut self, _: &mut Ctx<Self>, r: Reply<()>) -> Result<(), ActorError> {
        r.send(());
        Ok(())
    }
}

#[test]
fn actors_are_counted_by_kind_across_shards_from_a_thread_and_from_a_shard() {
    let kit = TestKit::new();
    let baseline = kit.kind_metrics().timeout(WAIT).wait().unwrap();
    let workers: Vec<_> = (0..5).map(|_| kit.spawn(|| Worker(0)).unwrap()).collect();
    let pingers: Vec<_> = (0..3).map(|_| kit.spawn(|| Pinger).unwrap()).collect();
    for (i, w) in workers.iter().enumerate() {
        for _ in 0..=i {
            w.tell(Msg::Work(1)).unwrap();
        }
    }
    for p in &pingers {
        p.ask(|r| r).timeout(WAIT).wait().unwrap();
    }
    // A user message behind the work on each worker: once answered, all of it was handled.
    for w in &workers {
        w.ask(Msg::Spawn).timeout(WAIT).wait().unwrap();
    }
    let kind =
        |all: &[corelane::KindMetrics], name: &str| all.iter().find(|k| k.kind.ends_with(name)).cloned();
    let all = kit.kind_metrics().timeout(WAIT).wait().unwrap();
    let w = kind(&all, "::Worker").expect("workers counted");
    // Each worker spawned one child (another Worker) on `Spawn`.
    assert_eq!((w.actors, w.processed, w.queued), (10, 15 + 5, 0), "{all:?}");
    let p = kind(&all, "::Pinger").expect("pingers counted");
    assert_eq!((p.actors, p.processed), (3, 3));
    assert!(kind(&baseline, "::Worker").is_none());
    assert!(all.windows(2).all(|w| w[0].kind < w[1].kind), "sorted by kind");
    // The same from a shard, awaited (it must not block the shard it runs on).
    let h = kit.handle().clone();
    let from_shard = kit.block_on(move || async move { h.kind_metrics().await }).unwrap().unwrap();
    assert_eq!(kind(&from_shard, "::Pinger").map(|k| k.actors), Some(3));
    for p in &pingers {
        p.stop().timeout(WAIT).wait().unwrap();
    }
    let after = kit.kind_metrics().timeout(WAIT).wait().unwrap();
    assert!(kind(&after, "::Pinger").is_none(), "stopped actors are not counted");
}
