//! Stopping: graceful stop drains, kill drops, what a send to a stopped actor or a closed
//! runtime gets, and requests whose answer nobody waits for.

use corelane::{
    Actor, ActorError, ActorRef, AskError, Ctx, DeadLetterReason, Idle, Reply, Runtime, Shards, TrySendError,
};
use std::sync::mpsc;

mod common;

use common::*;

#[test]
fn graceful_stop_drains_the_queue_and_later_sends_are_dead_letters() {
    let rt = runtime(2, Idle::Park);
    let (tx, rx) = mpsc::channel();
    let w = rt.spawn_on(1, move || Worker::new(tx.clone())).unwrap();
    for n in 1..=1000 {
        w.tell(WorkMsg::Work(n)).unwrap();
    }
    let stopped = w.stop();
    stopped.timeout(WAIT).wait().unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (1000, 500_500), "every queued message was handled");
    assert!(!w.is_alive());
    let before = rt.metrics().dead_letters_for(DeadLetterReason::ActorStopped);
    w.tell(WorkMsg::Work(1)).unwrap();
    w.tell(WorkMsg::Work(2)).unwrap();
    // Dead letters of a plain thread's sends are counted when the shard sees them; a ping to a
    // live actor on that shard, sent after them on the same path, orders the check.
    let probe = rt.spawn_on(1, Slow::default).unwrap();
    probe.ask(SlowMsg::Ping).timeout(WAIT).wait().unwrap();
    assert_eq!(rt.metrics().dead_letters_for(DeadLetterReason::ActorStopped), before + 2);
    rt.shutdown().unwrap();
}

#[test]
fn try_tell_to_a_stopped_actor_returns_the_message() {
    let rt = runtime(2, Idle::Park);
    let (tx, _rx) = mpsc::channel();
    let w = rt.spawn_on(0, move || Worker::new(tx.clone())).unwrap();
    assert!(w.try_tell(WorkMsg::Work(1)).is_ok());
    w.stop().timeout(WAIT).wait().unwrap();
    match w.try_tell(WorkMsg::Work(42)) {
        Err(TrySendError::Stopped(WorkMsg::Work(42))) => {}
        other => panic!("expected the message back, got {:?}", other.map(|_| ())),
    }
    rt.shutdown().unwrap();
}

#[test]
fn try_tell_on_the_same_shard_returns_the_message_of_a_stopped_actor() {
    enum M {
        Check(ActorRef<WorkMsg>, Reply<Option<u64>>),
    }
    struct Checker;
    impl Actor for Checker {
        type Msg = M;
        fn receive(&mut self, _: &mut Ctx<Self>, M::Check(target, r): M) -> Result<(), ActorError> {
            r.send(target.try_tell(WorkMsg::Work(9)).err().map(|e| match e.into_inner() {
                WorkMsg::Work(n) => n,
                WorkMsg::Ping(_) => unreachable!(),
            }));
            Ok(())
        }
    }
    let rt = runtime(1, Idle::Park);
    let (tx, _rx) = mpsc::channel();
    let w = rt.spawn_on(0, move || Worker::new(tx.clone())).unwrap();
    let c = rt.spawn_on(0, || Checker).unwrap();
    assert_eq!(c.ask(|r| M::Check(w.clone(), r)).timeout(WAIT).wait().unwrap(), None);
    w.stop().timeout(WAIT).wait().unwrap();
    assert_eq!(c.ask(|r| M::Check(w.clone(), r)).timeout(WAIT).wait().unwrap(), Some(9));
    rt.shutdown().unwrap();
}

#[test]
fn kill_drops_the_queue_and_runs_stopped() {
    let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Park).build().unwrap();
    // A gate actor holds the shard until released, so the worker's messages and the kill are
    // all queued when the shard next looks.
    enum G {
        Block { blocked: mpsc::Sender<()>, open: mpsc::Receiver<()> },
    }
    struct Gate;
    impl Actor for Gate {
        type Msg = G;
        fn receive(&mut self, _: &mut Ctx<Self>, G::Block { blocked, open }: G) -> Result<(), ActorError> {
            blocked.send(()).unwrap();
            open.recv_timeout(WAIT).unwrap();
            Ok(())
        }
    }
    let gate = rt.spawn_on(0, || Gate).unwrap();
    let (tx, rx) = mpsc::channel();
    let w = rt.spawn_on(0, move || Worker::new(tx.clone())).unwrap();
    w.ask(WorkMsg::Ping).timeout(WAIT).wait().unwrap();
    let (blocked_tx, blocked_rx) = mpsc::channel();
    let (open_tx, open_rx) = mpsc::channel();
    gate.tell(G::Block { blocked: blocked_tx, open: open_rx }).unwrap();
    blocked_rx.recv_timeout(WAIT).unwrap();
    for n in 0..100 {
        w.tell(WorkMsg::Work(n)).unwrap();
    }
    let killed = w.kill();
    open_tx.send(()).unwrap();
    killed.timeout(WAIT).wait().unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (0, 0), "stopped ran and nothing queued was handled");
    assert_eq!(rt.metrics().dead_letters_for(DeadLetterReason::ActorStopped), 100);
    rt.shutdown().unwrap();
}

#[test]
fn shutdown_stops_actors_and_later_sends_are_refused() {
    let rt = runtime(2, Idle::Park);
    let (tx, rx) = mpsc::channel();
    let w = rt.spawn_on(1, move || Worker::new(tx.clone())).unwrap();
    w.tell(WorkMsg::Work(5)).unwrap();
    let h = rt.handle().clone();
    rt.shutdown().unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), (1, 5), "stopped ran on shutdown");
    assert!(matches!(w.tell(WorkMsg::Work(1)), Err(corelane::SendError::Closed(WorkMsg::Work(1)))));
    // try_tell says the same as tell once the runtime is gone (not Stopped).
    assert!(matches!(w.try_tell(WorkMsg::Work(2)), Err(corelane::TrySendError::Closed(WorkMsg::Work(2)))));
    assert_eq!(w.ask(WorkMsg::Ping).wait(), Err(AskError::Closed));
    assert!(matches!(h.spawn(|| Worker::new(mpsc::channel().0)), Err(corelane::SpawnError::Closed)));
}

#[test]
fn dropping_the_pending_of_a_stop_kill_or_metrics_request_counts_nothing() {
    struct Idle2;
    impl Actor for Idle2 {
        type Msg = ();
        fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
            Ok(())
        }
    }
    let rt = runtime(2, Idle::Park);
    for shard in 0..2 {
        let a = rt.spawn_on(shard, || Idle2).unwrap();
        let b = rt.spawn_on(shard, || Idle2).unwrap();
        drop(a.metrics());
        drop(a.stop());
        drop(b.kill());
        // A second request completes once the first has taken effect.
        a.stop().timeout(WAIT).wait().unwrap();
        b.stop().timeout(WAIT).wait().unwrap();
        assert!(!a.is_alive() && !b.is_alive());
    }
    let m = rt.metrics();
    assert_eq!(m.dead_letters_for(DeadLetterReason::LateReply), 0, "{m:?}");
    assert_eq!(corelane::integration::unattributed_late_replies(), 0);
    rt.shutdown().unwrap();
}

#[test]
fn a_send_from_a_handler_to_a_runtime_that_has_shut_down_gives_the_message_back() {
    let other = runtime(1, Idle::Park);
    let far = other.spawn(|| Worker::new(mpsc::channel().0)).unwrap();
    other.shutdown().unwrap();
    enum M {
        Send(ActorRef<WorkMsg>, Reply<Vec<Option<u64>>>),
    }
    struct Teller;
    impl Actor for Teller {
        type Msg = M;
        fn receive(&mut self, ctx: &mut Ctx<Self>, M::Send(to, r): M) -> Result<(), ActorError> {
            let back = |e: corelane::SendError<WorkMsg>| match e {
                corelane::SendError::Closed(WorkMsg::Work(n)) => Some(n),
                _ => None,
            };
            let any = |e: corelane::SendError<WorkMsg>| back(e);
            r.send(vec![
                ctx.tell(&to, WorkMsg::Work(1)).err().and_then(back),
                ctx.forward(&to, WorkMsg::Work(2)).err().and_then(back),
                ctx.tell_any(&to.untyped(), WorkMsg::Work(3)).err().and_then(any),
            ]);
            Ok(())
        }
    }
    let rt = runtime(1, Idle::Park);
    let t = rt.spawn(|| Teller).unwrap();
    let got = t.ask(|r| M::Send(far.clone(), r)).timeout(WAIT).wait().unwrap();
    assert_eq!(got, [Some(1), Some(2), Some(3)], "each send gave its message back");
    rt.shutdown().unwrap();
}
