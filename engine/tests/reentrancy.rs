//! User code that the engine runs outside a handler (comparators, filters, makers) reaching
//! back into the engine: deferred or contained, never aliased, never a dead shard.

use corelane::{Actor, ActorError, ActorRef, Ctx, Idle, MailboxKind, Reply, Runtime, Shards, SpawnOptions};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

enum Msg {
    N(u32),
    Count(Reply<u64>),
}

fn rank(m: &Msg) -> u32 {
    match m {
        Msg::N(n) => *n,
        Msg::Count(_) => 0,
    }
}

#[derive(Default)]
struct Counter(u64);
impl Actor for Counter {
    type Msg = Msg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
        match m {
            Msg::N(_) => self.0 += 1,
            Msg::Count(r) => r.send(self.0),
        }
        Ok(())
    }
}

/// Asks for the count until it reaches `n` (each answer is an event; no sleeping).
fn wait_for_count(r: &ActorRef<Msg>, n: u64) -> u64 {
    let until = Instant::now() + WAIT;
    loop {
        let c = r.ask(Msg::Count).timeout(WAIT).wait().expect("the actor answers");
        if c >= n || Instant::now() > until {
            return c;
        }
    }
}

#[test]
fn a_priority_comparator_that_tells_its_own_actor_is_deferred_not_aliased() {
    const SENT: u64 = 3_000;
    const EXTRA: i64 = 1_000;
    let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Park).build().unwrap();
    let me: Arc<OnceLock<ActorRef<Msg>>> = Arc::new(OnceLock::new());
    let budget = Arc::new(AtomicI64::new(EXTRA));
    let (m, b) = (me.clone(), budget.clone());
    // Each comparison may send one more message to the same actor, from inside the heap
    // operation that called it: the push would reallocate the heap under the comparator.
    // The comparator reads its arguments after the send (not nested: one level is enough).
    thread_local!(static NESTED: Cell<bool> = const { Cell::new(false) });
    let order = MailboxKind::priority(move |x: &Msg, y: &Msg| {
        if let Some(r) = m.get() {
            if !NESTED.with(|n| n.replace(true)) {
                if b.fetch_sub(1, Ordering::Relaxed) > 0 {
                    let _ = r.tell(Msg::N(7));
                }
                NESTED.with(|n| n.set(false));
            }
        }
        rank(x).cmp(&rank(y))
    });
    let r = rt.spawn_with(SpawnOptions::new().mailbox(order), Counter::default).unwrap();
    me.set(r.clone()).ok().unwrap();
    for i in 0..SENT {
        r.tell(Msg::N((i % 97) as u32 + 1)).unwrap();
    }
    let extra = EXTRA.min(EXTRA - budget.load(Ordering::Relaxed).min(EXTRA)) as u64;
    let got = wait_for_count(&r, SENT + EXTRA as u64);
    assert!(budget.load(Ordering::Relaxed) <= 0, "the comparator sent only {extra} messages");
    assert_eq!(got, SENT + EXTRA as u64, "every message, the comparator's included, was handled once");
    assert!(r.is_alive());
    rt.shutdown().unwrap();
}

#[test]
fn a_panicking_priority_comparator_fails_its_actor_and_the_shard_lives_on() {
    use corelane::{Directive, Phase, Supervisor};
    use std::sync::atomic::AtomicBool;
    // From a plain thread the comparator runs on the dispatcher, outside any actor's turn.
    let (tx, phases) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let sup = Supervisor::one_for_one().decider(move |f| {
        let _ = tx.lock().unwrap().send(f.phase());
        Directive::Resume
    });
    let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Park).supervisor(sup).build().unwrap();
    let once = Arc::new(AtomicBool::new(false));
    let o = once.clone();
    let order = MailboxKind::priority(move |x: &Msg, y: &Msg| {
        if (rank(x) == 13 || rank(y) == 13) && !o.swap(true, Ordering::Relaxed) {
            panic!("comparator");
        }
        rank(x).cmp(&rank(y))
    });
    let neighbour = rt.spawn_on(0, || Pinger(Arc::new(AtomicI64::new(0)))).unwrap();
    let r = rt.spawn_with(
        SpawnOptions::new().mailbox(order).placement(corelane::Placement::Shard(0)),
        Counter::default,
    );
    let r = r.unwrap();
    r.ask(Msg::Count).timeout(WAIT).wait().unwrap(); // started: later messages queue behind each other
                                                     // One batch: offered one after another on the dispatcher, so they are compared.
    r.batch_tell((1..=40u32).map(|i| Msg::N(i % 20))).unwrap();
    assert_eq!(phases.recv_timeout(WAIT).unwrap(), Phase::Mailbox, "the actor owning the mailbox failed");
    neighbour.ask(PingMsg::Ping).timeout(WAIT).wait().expect("the shard still runs");
    // Lost: the message the comparator held if it panicked on arrival (a counted dead letter),
    // none if it panicked while the next message was chosen.
    let lost = rt.metrics().dead_letters_for(corelane::DeadLetterReason::HandlerFailed);
    assert!(lost <= 1, "{lost}");
    assert_eq!(wait_for_count(&r, 40 - lost), 40 - lost);
    rt.shutdown().expect("no shard panicked");
}

/// Answers every `Ping` with `()`, counts its starts.
struct Pinger(Arc<AtomicI64>);
impl Actor for Pinger {
    type Msg = PingMsg;
    fn started(&mut self, _: &mut Ctx<Self>) -> Result<(), ActorError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: PingMsg) -> Result<(), ActorError> {
        match m {
            PingMsg::Ping(r) => r.send(()),
            PingMsg::ScheduleBadMaker => {
                let me = ctx.myself();
                ctx.schedule(Duration::ZERO, Duration::from_millis(1), &me, || -> PingMsg {
                    panic!("maker of an actor's schedule")
                });
            }
        }
        Ok(())
    }
}

enum PingMsg {
    Ping(Reply<()>),
    ScheduleBadMaker,
}

fn one_shard() -> Runtime {
    Runtime::builder().shards(Shards::Count(1)).idle(Idle::Park).build().unwrap()
}

#[test]
fn a_panicking_maker_of_a_runtime_schedule_ends_it_and_the_shard_lives_on() {
    let rt = one_shard();
    let starts = Arc::new(AtomicI64::new(0));
    let s = starts.clone();
    let a = rt.spawn(move || Pinger(s.clone())).unwrap();
    let (_sub, events) = rt.subscribe_channel(|e| matches!(e, corelane::Event::Deadletter { .. }));
    let sched = rt.schedule(Duration::ZERO, Duration::from_millis(1), &a, || -> PingMsg {
        panic!("maker of a runtime schedule")
    });
    let ev = events.recv_timeout(WAIT).expect("the failure is counted as a dead letter");
    assert!(
        matches!(ev, corelane::Event::Deadletter { reason: corelane::DeadLetterReason::HandlerFailed, .. }),
        "{ev:?}"
    );
    a.ask(PingMsg::Ping).timeout(WAIT).wait().expect("the shard still runs its actors");
    assert!(sched.is_cancelled(), "the schedule ended");
    assert_eq!(starts.load(Ordering::Relaxed), 1, "the target was not disturbed");
    rt.shutdown().expect("no shard panicked");
}

#[test]
fn a_panicking_maker_of_an_actors_schedule_goes_to_that_actors_supervision() {
    let rt = one_shard();
    let starts = Arc::new(AtomicI64::new(0));
    let s = starts.clone();
    let (_sub, events) = rt.subscribe_channel(|e| matches!(e, corelane::Event::ActorRestarted { .. }));
    let a = rt.spawn(move || Pinger(s.clone())).unwrap();
    a.tell(PingMsg::ScheduleBadMaker).unwrap();
    let ev = events.recv_timeout(WAIT).expect("the owner is restarted by its supervisor");
    assert!(matches!(ev, corelane::Event::ActorRestarted { id, .. } if id == a.id()), "{ev:?}");
    a.ask(PingMsg::Ping).timeout(WAIT).wait().expect("the restarted actor answers");
    assert_eq!(starts.load(Ordering::Relaxed), 2);
    rt.shutdown().expect("no shard panicked");
}

#[test]
fn a_panicking_event_filter_ends_its_subscription_and_others_go_on() {
    let rt = one_shard();
    let a = rt.spawn(|| Pinger(Arc::new(AtomicI64::new(0)))).unwrap();
    a.ask(PingMsg::Ping).timeout(WAIT).wait().unwrap(); // started before anyone subscribes
    let (_bad, bad_rx) = rt.subscribe_channel(|e| match e {
        corelane::Event::ActorStarted { .. } => panic!("filter"),
        _ => true,
    });
    let (_good, good_rx) = rt.subscribe_channel(|e| matches!(e, corelane::Event::ActorStarted { .. }));
    let before = rt.metrics().dead_letters_for(corelane::DeadLetterReason::HandlerFailed);
    let b = rt.spawn(|| Pinger(Arc::new(AtomicI64::new(0)))).unwrap();
    let ev = good_rx.recv_timeout(WAIT).expect("the other subscriber still gets events");
    assert_eq!(ev, corelane::Event::ActorStarted { id: b.id() });
    b.ask(PingMsg::Ping).timeout(WAIT).wait().expect("the shard that published still runs");
    a.ask(PingMsg::Ping).timeout(WAIT).wait().unwrap();
    let after = rt.metrics().dead_letters_for(corelane::DeadLetterReason::HandlerFailed);
    assert_eq!(after - before, 1, "the lost event is counted once");
    // The failed subscription ended: its receiver sees the channel closed, with nothing sent.
    assert!(matches!(bad_rx.recv_timeout(WAIT), Err(std::sync::mpsc::RecvTimeoutError::Disconnected)));
    rt.shutdown().expect("no shard panicked");
}

#[test]
fn an_event_filter_may_subscribe_and_unsubscribe_from_inside() {
    let rt = one_shard();
    let handle = rt.handle().clone();
    let (_sub, rx) = rt.subscribe_channel(move |e| {
        if matches!(e, corelane::Event::ActorStarted { .. }) {
            // Re-entering the stream from a filter must neither deadlock nor corrupt it.
            let (inner, _rx) = handle.subscribe_channel(|_| false);
            inner.unsubscribe();
        }
        true
    });
    let a = rt.spawn(|| Pinger(Arc::new(AtomicI64::new(0)))).unwrap();
    let ev = rx.recv_timeout(WAIT).expect("the event arrives");
    assert_eq!(ev, corelane::Event::ActorStarted { id: a.id() });
    a.ask(PingMsg::Ping).timeout(WAIT).wait().unwrap();
    rt.shutdown().expect("no shard panicked");
}

#[test]
fn a_panicking_decider_stops_the_actor_and_the_shard_lives_on() {
    use corelane::Supervisor;
    let rt = Runtime::builder()
        .shards(Shards::Count(1))
        .idle(Idle::Park)
        .supervisor(Supervisor::one_for_one().decider(|_| panic!("decider")))
        .build()
        .unwrap();
    struct Failing;
    impl Actor for Failing {
        type Msg = ();
        fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
            Err(ActorError::msg("fails"))
        }
    }
    let (_sub, rx) = rt.subscribe_channel(|e| matches!(e, corelane::Event::ActorStopped { .. }));
    let f = rt.spawn(|| Failing).unwrap();
    let other = rt.spawn(|| Pinger(Arc::new(AtomicI64::new(0)))).unwrap();
    f.tell(()).unwrap();
    let ev = rx.recv_timeout(WAIT).expect("the failing actor stops");
    assert!(matches!(ev, corelane::Event::ActorStopped { id, .. } if id == f.id()), "{ev:?}");
    other.ask(PingMsg::Ping).timeout(WAIT).wait().expect("its shard still runs");
    rt.shutdown().expect("no shard panicked");
}

/// Holds the runtime it runs on, once given it, and tries to shut it down from its shard.
struct ShutsDownItsOwnRuntime;
enum ShutMsg {
    Shut(Runtime, Reply<Option<Box<Runtime>>>),
    Drop(Runtime),
}
impl Actor for ShutsDownItsOwnRuntime {
    type Msg = ShutMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, msg: ShutMsg) -> Result<(), ActorError> {
        match msg {
            ShutMsg::Shut(rt, back) => match rt.shutdown() {
                Err(corelane::ShutdownError::CalledFromShard { runtime }) => back.send(Some(runtime)),
                _ => back.send(None),
            },
            ShutMsg::Drop(rt) => drop(rt),
        }
        Ok(())
    }
}

#[test]
fn a_shutdown_from_a_shard_gives_the_runtime_back_to_be_shut_down_from_outside() {
    let rt = one_shard();
    let a = rt.spawn(|| ShutsDownItsOwnRuntime).unwrap();
    let back = a.ask(|r| ShutMsg::Shut(rt, r)).timeout(WAIT).wait().unwrap();
    let rt = back.expect("the runtime came back, still running");
    assert!(a.is_alive(), "nothing was stopped");
    rt.shutdown().expect("shut down from outside");
    assert!(!a.is_alive());
}

#[test]
fn a_runtime_dropped_on_its_own_shard_stops_without_waiting_for_itself() {
    let rt = one_shard();
    let a = rt.spawn(|| ShutsDownItsOwnRuntime).unwrap();
    a.tell(ShutMsg::Drop(rt)).unwrap();
    let deadline = Instant::now() + WAIT;
    while a.is_alive() {
        assert!(Instant::now() < deadline, "the runtime stopped its actors");
        std::thread::yield_now();
    }
}
