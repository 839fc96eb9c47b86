//! Ask from plain threads, actors and shard tasks: answers, timeouts on the shard's timers,
//! late replies as dead letters, fast failure for a stopped target, no blocking wait on a shard.

mod common;

use common::*;
use corelane::{Actor, ActorError, ActorRef, AskError, Ctx, DeadLetterReason, Idle, Reply};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn ask_timeout_errors_and_late_reply_is_a_dead_letter() {
    let rt = runtime(2, Idle::Park);
    let slow = rt.spawn_on(1, Slow::default).unwrap();
    let r = slow.ask(SlowMsg::Hold).timeout(Duration::from_millis(20)).wait();
    assert_eq!(r, Err(AskError::Timeout));
    let m = rt.metrics();
    assert_eq!(m.dead_letters_for(DeadLetterReason::AskTimeout), 1);
    assert_eq!(m.dead_letters_for(DeadLetterReason::LateReply), 0);
    slow.tell(SlowMsg::Release).unwrap();
    // The ping is handled after Release, so the late reply has been counted once it returns.
    slow.ask(SlowMsg::Ping).timeout(WAIT).wait().unwrap();
    assert_eq!(rt.metrics().dead_letters_for(DeadLetterReason::LateReply), 1);
    rt.shutdown().unwrap();
}

#[test]
fn ask_to_a_stopped_actor_fails_fast_with_no_reply() {
    let rt = runtime(2, Idle::Park);
    let slow = rt.spawn_on(0, Slow::default).unwrap();
    slow.stop().timeout(WAIT).wait().unwrap();
    let started = std::time::Instant::now();
    let r = slow.ask(SlowMsg::Ping).timeout(WAIT).wait();
    assert_eq!(r, Err(AskError::NoReply));
    assert!(started.elapsed() < WAIT, "it failed before the timeout");
    rt.shutdown().unwrap();
}

#[test]
fn blocking_wait_on_a_shard_is_refused() {
    enum M {
        Try(ActorRef<SlowMsg>, Reply<Result<(), AskError>>),
    }
    struct Blocker;
    impl Actor for Blocker {
        type Msg = M;
        fn receive(&mut self, _: &mut Ctx<Self>, m: M) -> Result<(), ActorError> {
            let M::Try(target, reply) = m;
            reply.send(target.ask(SlowMsg::Ping).wait());
            Ok(())
        }
    }
    let rt = runtime(2, Idle::Park);
    let slow = rt.spawn_on(0, Slow::default).unwrap();
    let b = rt.spawn_on(0, || Blocker).unwrap();
    let r = b.ask(|r| M::Try(slow.clone(), r)).timeout(WAIT).wait().unwrap();
    assert_eq!(r, Err(AskError::WouldBlock));
    rt.shutdown().unwrap();
}

enum Relay {
    /// Ask `target` from inside the actor; deliver the outcome to `report`.
    Start {
        target: ActorRef<SlowMsg>,
        timeout: Duration,
        report: mpsc::Sender<Result<(), AskError>>,
    },
    Outcome(Result<(), AskError>),
}
#[derive(Default)]
struct Asker {
    report: Option<mpsc::Sender<Result<(), AskError>>>,
}
impl Actor for Asker {
    type Msg = Relay;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: Relay) -> Result<(), ActorError> {
        match m {
            Relay::Start { target, timeout, report } => {
                self.report = Some(report);
                ctx.ask(&target, SlowMsg::Ping).timeout(timeout).deliver(Relay::Outcome);
            }
            Relay::Outcome(r) => self.report.as_ref().unwrap().send(r).unwrap(),
        }
        Ok(())
    }
}

#[test]
fn ask_from_an_actor_across_shards_and_on_the_same_shard() {
    for idle in [Idle::Park, Idle::Spin] {
        let rt = runtime(2, idle);
        let target = rt.spawn_on(1, Slow::default).unwrap();
        for shard in [0, 1] {
            let asker = rt.spawn_on(shard, Asker::default).unwrap();
            let (tx, rx) = mpsc::channel();
            asker.tell(Relay::Start { target: target.clone(), timeout: WAIT, report: tx.clone() }).unwrap();
            assert_eq!(rx.recv_timeout(WAIT).unwrap(), Ok(()), "{idle:?} shard {shard}");
        }
        rt.shutdown().unwrap();
    }
}

#[test]
fn ask_from_an_actor_times_out_on_the_shard_timer() {
    let rt = runtime(2, Idle::Park);
    let target = rt.spawn_on(1, Slow::default).unwrap();
    // Occupy the target with a held request, then ask something it will not answer in time:
    // Hold never answers, so use a dedicated holder.
    enum H {
        Hold(Reply<()>),
    }
    #[derive(Default)]
    struct Holder(Vec<Reply<()>>);
    impl Actor for Holder {
        type Msg = H;
        fn receive(&mut self, _: &mut Ctx<Self>, H::Hold(r): H) -> Result<(), ActorError> {
            self.0.push(r);
            Ok(())
        }
    }
    let holder = rt.spawn_on(1, Holder::default).unwrap();
    enum A {
        Go(mpsc::Sender<Result<(), AskError>>),
        Out(Result<(), AskError>),
    }
    struct Ask2(ActorRef<H>, Option<mpsc::Sender<Result<(), AskError>>>);
    impl Actor for Ask2 {
        type Msg = A;
        fn receive(&mut self, ctx: &mut Ctx<Self>, m: A) -> Result<(), ActorError> {
            match m {
                A::Go(tx) => {
                    self.1 = Some(tx);
                    ctx.ask(&self.0, H::Hold).timeout(Duration::from_millis(30)).deliver(A::Out);
                }
                A::Out(r) => self.1.as_ref().unwrap().send(r).unwrap(),
            }
            Ok(())
        }
    }
    let h = holder.clone();
    let a = rt.spawn_on(0, move || Ask2(h.clone(), None)).unwrap();
    let (tx, rx) = mpsc::channel();
    a.tell(A::Go(tx)).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), Err(AskError::Timeout));
    drop(target);
    rt.shutdown().unwrap();
}

#[test]
fn async_ask_on_a_shard_task() {
    enum M {
        Go(ActorRef<SlowMsg>, mpsc::Sender<Vec<Result<(), AskError>>>),
    }
    struct TaskRunner;
    impl Actor for TaskRunner {
        type Msg = M;
        fn receive(&mut self, ctx: &mut Ctx<Self>, M::Go(t, tx): M) -> Result<(), ActorError> {
            ctx.spawn_task(async move {
                let mut out = Vec::new();
                for _ in 0..50 {
                    out.push(t.ask(SlowMsg::Ping).timeout(WAIT).await);
                }
                tx.send(out).unwrap();
            });
            Ok(())
        }
    }
    let rt = runtime(2, Idle::SpinThenPark(Duration::from_micros(10)));
    let target = rt.spawn_on(1, Slow::default).unwrap();
    let local_target = rt.spawn_on(0, Slow::default).unwrap();
    let runner = rt.spawn_on(0, || TaskRunner).unwrap();
    for t in [target, local_target] {
        let (tx, rx) = mpsc::channel();
        runner.tell(M::Go(t, tx)).unwrap();
        let out = rx.recv_timeout(WAIT).unwrap();
        assert_eq!(out.len(), 50);
        assert!(out.iter().all(|r| r.is_ok()), "{out:?}");
    }
    rt.shutdown().unwrap();
}

#[test]
fn parked_shard_is_woken_by_every_path() {
    // Park mode, nothing spinning: plain thread → injector, shard → ring, timers.
    let rt = runtime(2, Idle::Park);
    let target = rt.spawn_on(1, Slow::default).unwrap();
    for _ in 0..200 {
        target.ask(SlowMsg::Ping).timeout(WAIT).wait().unwrap();
    }
    let asker = rt.spawn_on(0, Asker::default).unwrap();
    for _ in 0..200 {
        let (tx, rx) = mpsc::channel();
        asker.tell(Relay::Start { target: target.clone(), timeout: WAIT, report: tx.clone() }).unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), Ok(()));
    }
    assert!(rt.metrics().shards.iter().all(|s| s.wakes > 0), "{:?}", rt.metrics().shards);
    rt.shutdown().unwrap();
}

#[test]
fn a_shard_that_spins_then_parks_is_woken_by_every_path() {
    // A spin window of a nanosecond: the shards park after almost every message, with the
    // asymmetric fences (membarrier) where the kernel has them. A lost wake-up leaves an ask
    // unanswered until its timeout.
    let rt = runtime(2, Idle::SpinThenPark(Duration::from_nanos(1)));
    let target = rt.spawn_on(1, Slow::default).unwrap();
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..300 {
                    target.ask(SlowMsg::Ping).timeout(WAIT).wait().expect("woken for a plain thread");
                }
            });
        }
    });
    let asker = rt.spawn_on(0, Asker::default).unwrap();
    for _ in 0..300 {
        let (tx, rx) = mpsc::channel();
        asker.tell(Relay::Start { target: target.clone(), timeout: WAIT, report: tx.clone() }).unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), Ok(()), "woken for another shard");
    }
    assert!(rt.metrics().shards.iter().all(|s| s.wakes > 0), "{:?}", rt.metrics().shards);
    rt.shutdown().unwrap();
}

/// A plain thread that the scheduler runs on the shard's own core does not spin against the
/// shard it waits for: it yields, and the shard, once it has answered, hands the core straight
/// back instead of spinning first (each hand-over is counted per shard). A thread on another
/// core never makes the shard give its core up.
#[cfg(target_os = "linux")]
#[test]
fn a_thread_asking_from_the_shards_own_core_gets_the_core_handed_back() {
    use corelane::{Runtime, Shards};
    let cores = core_affinity::get_core_ids().expect("this test reads and sets core affinity");
    let home = cores[0];
    let rt = Runtime::builder().shards(Shards::Cores(vec![home.id])).pin(true).build().unwrap();
    let slow = rt.spawn(Slow::default).unwrap();
    let asks_from = |core: core_affinity::CoreId, n: usize| {
        let slow = slow.clone();
        std::thread::spawn(move || {
            assert!(core_affinity::set_for_current(core));
            for _ in 0..n {
                slow.ask(SlowMsg::Ping).timeout(WAIT).wait().unwrap();
            }
        })
        .join()
        .unwrap();
    };
    let handed = |rt: &Runtime| rt.metrics().shards[0].yields_to_waiters;
    asks_from(home, 200);
    let beside = handed(&rt);
    assert!(beside > 0, "asks from the shard's core were answered by hand-overs");
    let moved = rt.metrics().shards[0].waiters_moved_off;
    assert_eq!(moved, 0, "a thread placed on the core by its owner stays");
    if let Some(&other) = cores.get(1) {
        asks_from(other, 10); // takes any request left from the asks beside the shard
        let before = handed(&rt);
        asks_from(other, 200);
        assert_eq!(handed(&rt), before, "a thread on another core never takes the shard's core");
    }
    rt.shutdown().unwrap();
}

/// A plain thread that the scheduler runs on a pinned shard's core, while its own affinity
/// allows a core with no shard, moves itself off the shard's core to wait (counted on that
/// shard) instead of taking turns with the shard it waits for; its affinity stays its own.
#[cfg(target_os = "linux")]
#[test]
fn a_thread_asking_from_a_pinned_shards_core_moves_off_it_and_keeps_its_affinity() {
    use corelane::{Runtime, Shards};
    let cores = core_affinity::get_core_ids().expect("this test reads and sets core affinity");
    let (Some(&away), Some(&home)) = (cores.first(), cores.get(1)) else {
        return; // one core: nowhere to move to
    };
    let rt = Runtime::builder().shards(Shards::Cores(vec![home.id])).pin(true).build().unwrap();
    let slow = rt.spawn(Slow::default).unwrap();
    let handle = rt.handle().clone();
    let moved = move || handle.metrics().shards[0].waiters_moved_off;
    std::thread::spawn(move || {
        let own = common::affinity::get();
        // A first ask from a core with no shard: the moves counted below are the loop's.
        assert!(core_affinity::set_for_current(away));
        slow.ask(SlowMsg::Ping).timeout(WAIT).wait().unwrap();
        let before = moved();
        for _ in 0..20 {
            // On the shard's core, allowed everywhere again: where the scheduler may leave it.
            assert!(core_affinity::set_for_current(home));
            common::affinity::set(&own);
            slow.ask(SlowMsg::Ping).timeout(WAIT).wait().unwrap();
            assert!(common::affinity::get() == own, "the thread keeps the affinity it had");
        }
        assert!(moved() > before, "the waiter moved off the shard's core");
    })
    .join()
    .unwrap();
    rt.shutdown().unwrap();
}
