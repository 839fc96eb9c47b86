//! Watch: `Terminated` signals to watching actors, on the same shard and across shards, for
//! stop and kill; unwatch; watching what is already gone; children stop before their parent.

use corelane::testkit::TestKit;
use corelane::{
    Actor, ActorError, ActorId, ActorRef, AnyRef, Ctx, Placement, Reply, Signal, SpawnOptions, StopReason,
};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// Watches what it is told to and reports each signal to a probe.
struct Watcher {
    report: ActorRef<(ActorId, StopReason)>,
}
enum WMsg {
    Watch(AnyRef, Reply<()>),
    Unwatch(AnyRef, Reply<()>),
}
impl Actor for Watcher {
    type Msg = WMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: WMsg) -> Result<(), ActorError> {
        match m {
            WMsg::Watch(t, r) => {
                ctx.watch(&t);
                // Answer once the watch has reached the target (its system lane is FIFO).
                let landed = t.metrics();
                ctx.spawn_task(async move {
                    let _ = landed.await;
                    r.send(());
                });
            }
            WMsg::Unwatch(t, r) => {
                ctx.unwatch(&t);
                r.send(());
            }
        }
        Ok(())
    }
    fn signal(&mut self, _: &mut Ctx<Self>, sig: Signal) -> Result<(), ActorError> {
        let Signal::Terminated { id, reason } = sig else { return Ok(()) };
        let _ = self.report.tell((id, reason));
        Ok(())
    }
}

struct Idle;
impl Actor for Idle {
    type Msg = ();
    fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
        Ok(())
    }
}

fn watcher_on(kit: &TestKit, shard: usize, report: ActorRef<(ActorId, StopReason)>) -> ActorRef<WMsg> {
    kit.spawn_on(shard, move || Watcher { report: report.clone() }).unwrap()
}

fn watch(w: &ActorRef<WMsg>, t: &ActorRef<()>) {
    w.ask(|r| WMsg::Watch(t.untyped(), r)).timeout(WAIT).wait().unwrap();
}

#[test]
fn a_watcher_on_the_same_shard_sees_a_stop() {
    let kit = TestKit::new();
    let probe = kit.probe();
    let w = watcher_on(&kit, 0, probe.actor_ref());
    let t = kit.spawn_on(0, || Idle).unwrap();
    watch(&w, &t);
    t.stop().timeout(WAIT).wait().unwrap();
    probe.expect_message((t.id(), StopReason::Stopped));
}

#[test]
fn a_watcher_on_another_shard_sees_a_kill() {
    let kit = TestKit::new();
    let probe = kit.probe();
    let w = watcher_on(&kit, 0, probe.actor_ref());
    let t = kit.spawn_on(1, || Idle).unwrap();
    watch(&w, &t);
    t.kill().timeout(WAIT).wait().unwrap();
    probe.expect_message((t.id(), StopReason::Killed));
}

#[test]
fn a_cross_shard_stop_reaches_every_watcher_once() {
    let kit = TestKit::new();
    let probe = kit.probe();
    let w0 = watcher_on(&kit, 0, probe.actor_ref());
    let w1 = watcher_on(&kit, 1, probe.actor_ref());
    let t = kit.spawn_on(1, || Idle).unwrap();
    watch(&w0, &t);
    watch(&w0, &t); // twice: still one signal
    watch(&w1, &t);
    t.stop().timeout(WAIT).wait().unwrap();
    probe.expect_message((t.id(), StopReason::Stopped));
    probe.expect_message((t.id(), StopReason::Stopped));
    probe.expect_no_message(Duration::from_millis(100));
}

#[test]
fn unwatch_means_no_signal() {
    let kit = TestKit::new();
    let probe = kit.probe();
    let w = watcher_on(&kit, 0, probe.actor_ref());
    let t = kit.spawn_on(1, || Idle).unwrap();
    watch(&w, &t);
    w.ask(|r| WMsg::Unwatch(t.untyped(), r)).timeout(WAIT).wait().unwrap();
    t.stop().timeout(WAIT).wait().unwrap();
    probe.expect_no_message(Duration::from_millis(150));
}

#[test]
fn watching_what_is_gone_gives_not_found() {
    let kit = TestKit::new();
    let probe = kit.probe();
    let w = watcher_on(&kit, 0, probe.actor_ref());
    let t = kit.spawn_on(1, || Idle).unwrap();
    t.stop().timeout(WAIT).wait().unwrap();
    watch(&w, &t);
    probe.expect_message((t.id(), StopReason::NotFound));
}

/// A parent with one child, on another shard.
struct Parent {
    child: Option<ActorRef<()>>,
}
impl Actor for Parent {
    type Msg = Reply<ActorRef<()>>;
    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        let other = 1 - ctx.shard_index();
        self.child =
            Some(ctx.spawn_child_with(SpawnOptions::new().placement(Placement::Shard(other)), || Idle)?);
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, r: Reply<ActorRef<()>>) -> Result<(), ActorError> {
        r.send(self.child.clone().unwrap());
        Ok(())
    }
}

#[test]
fn a_parent_stops_after_its_children_and_its_watchers_hear_it_last() {
    let kit = TestKit::new();
    let probe = kit.probe();
    let w = watcher_on(&kit, 0, probe.actor_ref());
    let p = kit.spawn_on(0, || Parent { child: None }).unwrap();
    let c = p.ask(|r| r).timeout(WAIT).wait().unwrap();
    assert_ne!(c.id().shard(), p.id().shard());
    w.ask(|r| WMsg::Watch(p.untyped(), r)).timeout(WAIT).wait().unwrap();
    watch(&w, &c);
    p.stop().timeout(WAIT).wait().unwrap();
    probe.expect_message((c.id(), StopReason::Stopped));
    probe.expect_message((p.id(), StopReason::Stopped));
    assert!(!c.is_alive());
}

/// Watches its target from `started`; fails on demand (restarted after a backoff).
struct Rewatcher {
    target: ActorRef<()>,
    report: ActorRef<(ActorId, StopReason)>,
}
impl Actor for Rewatcher {
    type Msg = Reply<()>;
    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        ctx.watch(&self.target);
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, r: Reply<()>) -> Result<(), ActorError> {
        r.send(());
        Err(ActorError::msg("restart me"))
    }
    fn signal(&mut self, _: &mut Ctx<Self>, sig: Signal) -> Result<(), ActorError> {
        let Signal::Terminated { id, reason } = sig else { return Ok(()) };
        let _ = self.report.tell((id, reason));
        Ok(())
    }
}

#[test]
fn a_signal_that_arrives_during_a_restart_is_delivered_to_the_new_instance() {
    let backoff =
        corelane::Supervisor::one_for_one().backoff(Duration::from_millis(200), Duration::from_millis(200));
    let kit = TestKit::with_runtime(
        corelane::Runtime::builder()
            .shards(corelane::Shards::Count(2))
            .idle(corelane::Idle::Park)
            .supervisor(backoff),
    );
    let probe = kit.probe();
    let t = kit.spawn_on(1, || Idle).unwrap();
    let (t2, report) = (t.clone(), probe.actor_ref());
    let w = kit.spawn_on(0, move || Rewatcher { target: t2.clone(), report: report.clone() }).unwrap();
    w.ask(|r| r).timeout(WAIT).wait().unwrap(); // answered, then it fails: suspended for 200 ms
                                                // Handled after that failing turn, so it sees the suspension.
    assert!(w.metrics().timeout(WAIT).wait().unwrap().suspended);
    t.stop().timeout(WAIT).wait().unwrap();
    // The watch (sent by `w` from its first `started`, through shard 0's ring) and the stop
    // (sent by this thread, through its lane) come from different senders, which the runtime
    // does not order (docs/runtime-semantics.md, "Ordering"): shard 1 may take the stop first,
    // and then the watch finds the target gone. Either way the news reaches `w` while it is
    // suspended, and the new instance is the one that hears it.
    let (id, reason) = probe.expect_of_type::<(ActorId, StopReason)>();
    assert_eq!(id, t.id());
    assert!(matches!(reason, StopReason::Stopped | StopReason::NotFound), "{reason:?}");
    assert!(!w.is_suspended() && w.is_alive());
}

#[test]
fn a_thread_waits_until_a_set_of_actors_has_stopped() {
    let kit = TestKit::new();
    // Counted before the spawns: a spawn returns before its shard has built the actor, so a
    // count taken after them may miss one.
    let baseline = kit.metrics().actors;
    let a = kit.spawn_with(Placement::Shard(0), || Idle).unwrap();
    let b = kit.spawn_with(Placement::Shard(1), || Idle).unwrap();
    let gone = kit.spawn(|| Idle).unwrap();
    gone.stop().timeout(WAIT).wait().unwrap();
    // Duplicates and an actor already gone are fine; with two still alive, it does not complete.
    let set = [a.clone(), b.clone(), gone.clone(), a.clone()];
    assert_eq!(kit.stopped(&set).timeout(Duration::from_millis(50)).wait(), Err(corelane::AskError::Timeout));
    let waiting = kit.stopped(&set).timeout(WAIT);
    drop(a.stop());
    assert_eq!(
        kit.stopped(&set).timeout(Duration::from_millis(50)).wait(),
        Err(corelane::AskError::Timeout),
        "one left"
    );
    drop(b.kill());
    waiting.wait().expect("completes once the last one has stopped");
    assert!(!a.is_alive() && !b.is_alive());
    kit.stopped::<ActorRef<()>>(&[]).timeout(WAIT).wait().expect("an empty set has stopped");
    // The watchers of the waits that gave up go too: the actor count comes back.
    let deadline = std::time::Instant::now() + WAIT;
    while kit.metrics().actors > baseline {
        assert!(std::time::Instant::now() < deadline, "abandoned waits linger: {:?}", kit.metrics().actors);
        std::thread::yield_now();
    }
}

/// A watch that reaches the shard before the spawn request of the actor it watches (the
/// request comes from a plain thread's lane, the watch from another shard's ring, which the
/// shard reads first) waits for the build; when the factory then panics, the watcher is told
/// the actor is not there, as for any actor that is gone.
#[test]
fn a_watch_that_waited_for_a_build_that_failed_is_told() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    struct Gate(Arc<AtomicBool>, std::sync::mpsc::Sender<()>);
    impl Actor for Gate {
        type Msg = ();
        fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
            let _ = self.1.send(());
            while !self.0.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            Ok(())
        }
    }
    let kit = TestKit::new();
    let probe = kit.probe();
    let w = watcher_on(&kit, 1, probe.actor_ref());
    let (open, (held_tx, held)) = (Arc::new(AtomicBool::new(false)), std::sync::mpsc::channel());
    let o = open.clone();
    let gate = kit.spawn_on(0, move || Gate(o.clone(), held_tx.clone())).unwrap();
    gate.tell(()).unwrap();
    held.recv_timeout(WAIT).expect("shard 0 is held");
    let broken = kit.spawn_on(0, || -> Idle { panic!("no actor today") }).unwrap();
    let queued = |kit: &TestKit| kit.metrics().shards[0].inbound_depth;
    let before = queued(&kit);
    // Not waited for: it completes only once shard 0 runs again.
    let watching = w.ask(|r| WMsg::Watch(broken.untyped(), r));
    let deadline = std::time::Instant::now() + WAIT;
    while queued(&kit) <= before {
        assert!(std::time::Instant::now() < deadline, "the watch never reached shard 0's ring");
        std::thread::yield_now();
    }
    open.store(true, Ordering::Release);
    probe.expect_message((broken.id(), StopReason::NotFound));
    watching.timeout(WAIT).wait().unwrap();
}
