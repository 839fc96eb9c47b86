//! Supervision: each directive, both strategies, restart limits within a window, backoff
//! spacing, escalation up two levels, panics and errors, suspended actors.

use corelane::testkit::{Probe, TestKit};
use corelane::{
    Actor, ActorError, ActorId, ActorRef, Ctx, DeadLetterReason, Directive, Event, EventKind, Failure, Idle,
    Reply, Runtime, Shards, SpawnOptions, StopReason, Supervisor,
};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Oops;
impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("oops")
    }
}
impl std::error::Error for Oops {}

enum Msg {
    Add(u64),
    Fail,
    Panic,
    Get(Reply<u64>),
}

/// A counter that reports its lifecycle to a probe.
struct Counter {
    n: u64,
    life: ActorRef<String>,
}

impl Actor for Counter {
    type Msg = Msg;
    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        let _ = self.life.tell(format!("started {}", ctx.id()));
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
        match m {
            Msg::Add(k) => self.n += k,
            Msg::Fail => return Err(Oops.into()),
            Msg::Panic => panic!("kaboom"),
            Msg::Get(r) => r.send(self.n),
        }
        Ok(())
    }
    fn stopped(&mut self, ctx: &mut Ctx<Self>) {
        let _ = self.life.tell(format!("stopped {}", ctx.id()));
    }
}

fn kit_with(sup: Supervisor) -> TestKit {
    TestKit::with_runtime(Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park).supervisor(sup))
}

fn counter(kit: &TestKit, life: &Probe) -> ActorRef<Msg> {
    let l = life.actor_ref::<String>();
    let c = kit.spawn(move || Counter { n: 0, life: l.clone() }).unwrap();
    life.expect_message(format!("started {}", c.id()));
    c
}

fn get(c: &ActorRef<Msg>) -> u64 {
    c.ask(Msg::Get).timeout(WAIT).wait().unwrap()
}

#[test]
fn resume_keeps_the_state_and_the_message_is_not_a_dead_letter() {
    let kit = kit_with(Supervisor::one_for_one().directive(Directive::Resume));
    let life = kit.probe();
    let c = counter(&kit, &life);
    c.tell(Msg::Add(2)).unwrap();
    c.tell(Msg::Fail).unwrap();
    c.tell(Msg::Add(3)).unwrap();
    assert_eq!(get(&c), 5, "state kept across the failure");
    life.expect_no_message(Duration::from_millis(50));
    let m = c.metrics().timeout(WAIT).wait().unwrap();
    assert_eq!((m.restarts, m.dead_letters, m.suspended), (0, 0, false));
    assert_eq!(kit.metrics().dead_letters_for(DeadLetterReason::HandlerFailed), 0);
}

#[test]
fn restart_rebuilds_from_the_factory_keeps_the_mailbox_and_drops_the_failing_message() {
    let kit = kit_with(Supervisor::one_for_one().directive(Directive::Restart));
    let life = kit.probe();
    let c = counter(&kit, &life);
    let dead = kit.event_probe(|e| e.kind() == EventKind::Deadletter);
    c.tell(Msg::Add(100)).unwrap();
    // Queued behind the failing message: they must survive the restart.
    c.batch_tell([Msg::Fail, Msg::Add(1), Msg::Add(2)]).unwrap();
    assert_eq!(get(&c), 3, "new instance, mailbox kept");
    life.expect_message(format!("stopped {}", c.id()));
    life.expect_message(format!("started {}", c.id()));
    match dead.expect_of_type::<Event>() {
        Event::Deadletter { target, message_type, reason, count } => {
            assert_eq!((target, reason, count), (Some(c.id()), DeadLetterReason::HandlerFailed, 1));
            assert!(message_type.ends_with("Msg"), "{message_type}");
        }
        e => panic!("unexpected {e:?}"),
    }
    let m = c.metrics().timeout(WAIT).wait().unwrap();
    assert_eq!((m.restarts, m.dead_letters), (1, 1));
}

#[test]
fn stop_directive_stops_the_actor_with_reason_failed() {
    let kit = kit_with(Supervisor::one_for_one().directive(Directive::Stop));
    let life = kit.probe();
    let c = counter(&kit, &life);
    let watcher = kit.probe();
    watcher.watch(&c);
    c.tell(Msg::Panic).unwrap();
    assert_eq!(watcher.expect_terminated(&c), StopReason::Failed);
    life.expect_message(format!("stopped {}", c.id()));
    assert!(!c.is_alive());
}

#[test]
fn the_decider_tells_panics_from_errors() {
    let sup = Supervisor::one_for_one().decider(|f: &Failure| {
        if f.is_panic() {
            assert_eq!(f.panic_message(), Some("kaboom"));
            Directive::Restart
        } else {
            assert!(f.error_as::<Oops>().is_some());
            Directive::Resume
        }
    });
    let kit = kit_with(sup);
    let life = kit.probe();
    let c = counter(&kit, &life);
    c.tell(Msg::Add(7)).unwrap();
    c.tell(Msg::Fail).unwrap();
    assert_eq!(get(&c), 7, "an error resumes");
    c.tell(Msg::Panic).unwrap();
    assert_eq!(get(&c), 0, "a panic restarts");
    life.expect_message(format!("stopped {}", c.id()));
    life.expect_message(format!("started {}", c.id()));
}

#[test]
fn restarts_are_limited_within_the_window_and_the_window_resets() {
    let kit = kit_with(Supervisor::one_for_one().max_restarts(2, Duration::from_secs(1)));
    let life = kit.probe();
    let c = counter(&kit, &life);
    for _ in 0..2 {
        c.tell(Msg::Fail).unwrap();
        assert_eq!(get(&c), 0);
    }
    // The window has passed: the count starts over.
    life.expect_message(format!("stopped {}", c.id()));
    life.expect_message(format!("started {}", c.id()));
    life.expect_message(format!("stopped {}", c.id()));
    life.expect_message(format!("started {}", c.id()));
    life.expect_no_message(Duration::from_millis(1100));
    for _ in 0..2 {
        c.tell(Msg::Fail).unwrap();
        assert_eq!(get(&c), 0);
    }
    assert_eq!(c.metrics().timeout(WAIT).wait().unwrap().restarts, 4);
    // A third failure within this window stops it.
    let w = kit.probe();
    w.watch(&c);
    c.tell(Msg::Fail).unwrap();
    assert_eq!(w.expect_terminated(&c), StopReason::Failed);
}

#[test]
fn backoff_spaces_restarts_exponentially() {
    let min = Duration::from_millis(40);
    let sup = Supervisor::one_for_one().max_restarts(10, Duration::from_secs(30)).backoff(min, min * 4);
    let kit = kit_with(sup);
    let (tx, rx) = mpsc::channel::<Instant>();
    struct Flaky(mpsc::Sender<Instant>);
    impl Actor for Flaky {
        type Msg = ();
        fn started(&mut self, _: &mut Ctx<Self>) -> Result<(), ActorError> {
            let _ = self.0.send(Instant::now());
            Ok(())
        }
        fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
            Err(ActorError::msg("flaky"))
        }
    }
    let a = kit.spawn(move || Flaky(tx.clone())).unwrap();
    let mut starts = vec![rx.recv_timeout(WAIT).unwrap()];
    let mut failed_at = Vec::new();
    for _ in 0..4 {
        failed_at.push(Instant::now());
        a.tell(()).unwrap();
        starts.push(rx.recv_timeout(WAIT).unwrap());
    }
    // The k-th restart's step is min * 2^(k-1), capped at 4 * min: 40, 80, 160, 160 ms; it
    // waits at least half its step (the other half is jitter).
    for (k, (s, f)) in starts[1..].iter().zip(&failed_at).enumerate() {
        let want = (min * (1 << k)).min(min * 4) / 2;
        let waited = s.duration_since(*f);
        assert!(waited >= want, "restart {} came after {waited:?}, before its backoff {want:?}", k + 1);
    }
    assert!(a.is_alive());
}

/// A parent that spawns `n` counters as children and hands out their refs.
struct Parent {
    n: usize,
    life: ActorRef<String>,
    kids: Vec<ActorRef<Msg>>,
}
enum ParentMsg {
    Kids(Reply<Vec<ActorRef<Msg>>>),
    Child(SpawnOptions, Reply<ActorRef<ParentMsg>>),
}
impl Actor for Parent {
    type Msg = ParentMsg;
    fn started(&mut self, ctx: &mut Ctx<Self>) -> Result<(), ActorError> {
        self.kids.clear();
        for _ in 0..self.n {
            let l = self.life.clone();
            self.kids.push(ctx.spawn_child(move || Counter { n: 0, life: l.clone() })?);
        }
        Ok(())
    }
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: ParentMsg) -> Result<(), ActorError> {
        match m {
            ParentMsg::Kids(r) => r.send(self.kids.clone()),
            ParentMsg::Child(opts, r) => {
                let l = self.life.clone();
                r.send(ctx.spawn_child_with(opts, move || Parent { n: 1, life: l.clone(), kids: vec![] })?)
            }
        }
        Ok(())
    }
}

fn family(kit: &TestKit, sup: Supervisor, life: &Probe) -> Vec<ActorRef<Msg>> {
    let l = life.actor_ref::<String>();
    let p = kit
        .spawn_with(SpawnOptions::new().supervisor(sup), move || Parent {
            n: 3,
            life: l.clone(),
            kids: vec![],
        })
        .unwrap();
    let kids = p.ask(ParentMsg::Kids).timeout(WAIT).wait().unwrap();
    for _ in 0..3 {
        assert!(life.expect_of_type::<String>().starts_with("started"));
    }
    for (i, k) in kids.iter().enumerate() {
        k.tell(Msg::Add(10 + i as u64)).unwrap();
        assert_eq!(get(k), 10 + i as u64);
    }
    kids
}

#[test]
fn one_for_one_restarts_only_the_failing_child() {
    let kit = TestKit::new();
    let life = kit.probe();
    let kids = family(&kit, Supervisor::one_for_one(), &life);
    kids[0].tell(Msg::Fail).unwrap();
    assert_eq!(get(&kids[0]), 0);
    assert_eq!((get(&kids[1]), get(&kids[2])), (11, 12), "siblings untouched");
    life.expect_message(format!("stopped {}", kids[0].id()));
    life.expect_message(format!("started {}", kids[0].id()));
    life.expect_no_message(Duration::from_millis(50));
}

#[test]
fn all_for_one_restarts_every_sibling_and_stop_stops_them_all() {
    let kit = TestKit::new();
    let life = kit.probe();
    let kids = family(&kit, Supervisor::all_for_one(), &life);
    let restarted = kit.event_probe(|e| e.kind() == EventKind::ActorRestarted);
    kids[1].tell(Msg::Panic).unwrap();
    let mut ids: Vec<ActorId> = (0..3)
        .map(|_| match restarted.expect_of_type::<Event>() {
            Event::ActorRestarted { id, restarts: 1 } => id,
            e => panic!("unexpected {e:?}"),
        })
        .collect();
    ids.sort();
    let mut want: Vec<ActorId> = kids.iter().map(|k| k.id()).collect();
    want.sort();
    assert_eq!(ids, want);
    for k in &kids {
        assert_eq!(get(k), 0, "every sibling was rebuilt");
    }

    let life = kit.probe();
    let kids = family(&kit, Supervisor::all_for_one().directive(Directive::Stop), &life);
    let w = kit.probe();
    for k in &kids {
        w.watch(k);
    }
    kids[2].tell(Msg::Fail).unwrap();
    let mut got = terminations(&w, 3);
    got.sort_by_key(|(id, _)| *id);
    let mut want = vec![
        (kids[0].id(), StopReason::Stopped),
        (kids[1].id(), StopReason::Stopped),
        (kids[2].id(), StopReason::Failed),
    ];
    want.sort_by_key(|(id, _)| *id);
    assert_eq!(got, want);
}

/// The next `n` `Terminated` signals a probe receives, as (id, reason).
fn terminations(p: &Probe, n: usize) -> Vec<(ActorId, StopReason)> {
    (0..n)
        .map(|_| match p.expect_of_type::<corelane::Signal>() {
            corelane::Signal::Terminated { id, reason } => (id, reason),
            s => panic!("unexpected {s:?}"),
        })
        .collect()
}

#[test]
fn escalation_goes_up_two_levels_and_the_grandparent_decides() {
    // The runtime supervises the grandparent: it records what it decides for, and restarts.
    let (tx, rx) = mpsc::channel::<(ActorId, ActorId)>();
    let sup = Supervisor::one_for_one().decider(move |f: &Failure| {
        let _ = tx.send((f.actor(), f.origin()));
        Directive::Restart
    });
    let kit = kit_with(sup);
    let life = kit.probe();
    let l = life.actor_ref::<String>();
    let escalate =
        || SpawnOptions::new().supervisor(Supervisor::one_for_one().directive(Directive::Escalate));
    // grandparent (top level) -> parent -> counter; both parents escalate their children's failures.
    let g = kit.spawn_with(escalate(), move || Parent { n: 0, life: l.clone(), kids: vec![] }).unwrap();
    let p = g.ask(|r| ParentMsg::Child(escalate(), r)).timeout(WAIT).wait().unwrap();
    let kids = p.ask(ParentMsg::Kids).timeout(WAIT).wait().unwrap();
    let c = &kids[0];
    life.expect_message(format!("started {}", c.id()));
    let restarted = kit.event_probe(|e| matches!(e, Event::ActorRestarted { .. }));
    let suspended = kit.event_probe(|e| e.kind() == EventKind::ActorSuspended);
    let w = kit.probe();
    w.watch(&p);
    w.watch(c);

    c.tell(Msg::Fail).unwrap();
    let (actor, origin) = rx.recv_timeout(WAIT).unwrap();
    assert_eq!(
        (actor, origin),
        (g.id(), c.id()),
        "the runtime decided for the grandparent, about the counter"
    );
    restarted.expect_message(Event::ActorRestarted { id: g.id(), restarts: 1 });
    // The counter and its parent were suspended on the way up.
    let ids: Vec<ActorId> = (0..2)
        .map(|_| match suspended.expect_of_type::<Event>() {
            Event::ActorSuspended { id, failure } => {
                assert!(failure.contains("oops"), "{failure}");
                id
            }
            e => panic!("unexpected {e:?}"),
        })
        .collect();
    assert_eq!(ids, vec![c.id(), p.id()]);
    // Restarting the grandparent stopped its child; the parent, suspended, could not drain, so
    // it stopped at once and killed its own child first.
    let mut got = terminations(&w, 2);
    got.sort_by_key(|(id, _)| *id);
    let mut want = vec![(p.id(), StopReason::Stopped), (c.id(), StopReason::Killed)];
    want.sort_by_key(|(id, _)| *id);
    assert_eq!(got, want);
    assert!(g.is_alive() && !g.is_suspended());
}

#[test]
fn an_undecided_actor_stays_suspended_until_restarted_or_stopped() {
    let kit = kit_with(Supervisor::one_for_one().directive(Directive::Escalate));
    let life = kit.probe();
    let c = counter(&kit, &life);
    let suspended = kit.event_probe(|e| e.kind() == EventKind::ActorSuspended);
    c.tell(Msg::Add(5)).unwrap();
    c.tell(Msg::Panic).unwrap();
    assert!(matches!(suspended.expect_of_type::<Event>(), Event::ActorSuspended { id, .. } if id == c.id()));
    assert!(c.is_suspended() && c.is_alive());
    // It handles no messages while suspended.
    let r = c.ask(Msg::Get).timeout(Duration::from_millis(150)).wait();
    assert_eq!(r, Err(corelane::AskError::Timeout));
    assert!(c.metrics().timeout(WAIT).wait().unwrap().suspended);
    // An operator's restart lifts it: the queued ask is answered by the new instance.
    c.restart().timeout(WAIT).wait().unwrap();
    assert!(!c.is_suspended());
    assert_eq!(get(&c), 0);
    // Suspended again, then stopped: a suspended actor stops at once.
    c.tell(Msg::Fail).unwrap();
    assert!(matches!(suspended.expect_of_type::<Event>(), Event::ActorSuspended { .. }));
    c.tell(Msg::Add(1)).unwrap();
    let w = kit.probe();
    w.watch(&c);
    c.stop().timeout(WAIT).wait().unwrap();
    assert_eq!(w.expect_terminated(&c), StopReason::Stopped);
}

#[test]
fn a_failing_started_is_supervised_too() {
    struct BadStart(mpsc::Sender<()>);
    impl Actor for BadStart {
        type Msg = ();
        fn started(&mut self, _: &mut Ctx<Self>) -> Result<(), ActorError> {
            let _ = self.0.send(());
            Err(ActorError::msg("no config"))
        }
        fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
            Ok(())
        }
    }
    let kit = kit_with(Supervisor::one_for_one().max_restarts(3, Duration::from_secs(30)));
    let stopped = kit.event_probe(|e| e.kind() == EventKind::ActorStopped);
    let (tx, rx) = mpsc::channel();
    let a = kit.spawn(move || BadStart(tx.clone())).unwrap();
    for _ in 0..4 {
        rx.recv_timeout(WAIT).unwrap(); // the first start and three restarts
    }
    stopped.expect_message(Event::ActorStopped { id: a.id(), reason: StopReason::Failed });
    assert!(rx.try_recv().is_err(), "no fifth start");
}

#[test]
fn an_instance_whose_started_failed_gets_no_stopped_on_restart_or_stop() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    #[derive(Default)]
    struct Count {
        built: AtomicUsize,
        started_ok: AtomicUsize,
        stopped: AtomicUsize,
    }
    /// The first instance fails in `started`; later ones start.
    struct FailsFirst(Arc<Count>, usize);
    impl Actor for FailsFirst {
        type Msg = Reply<usize>;
        fn started(&mut self, _: &mut Ctx<Self>) -> Result<(), ActorError> {
            if self.1 == 0 {
                return Err(ActorError::msg("first start fails"));
            }
            self.0.started_ok.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn receive(&mut self, _: &mut Ctx<Self>, r: Reply<usize>) -> Result<(), ActorError> {
            r.send(self.1);
            Ok(())
        }
        fn stopped(&mut self, _: &mut Ctx<Self>) {
            self.0.stopped.fetch_add(1, Ordering::SeqCst);
        }
    }
    let kit = TestKit::new();
    let c = Arc::new(Count::default());
    let c2 = c.clone();
    let a = kit
        .spawn(move || {
            let n = c2.built.fetch_add(1, Ordering::SeqCst);
            FailsFirst(c2.clone(), n)
        })
        .unwrap();
    // Answered by the second instance, after the restart.
    assert_eq!(a.ask(|r| r).timeout(WAIT).wait().unwrap(), 1);
    assert_eq!(c.stopped.load(Ordering::SeqCst), 0, "the instance that never started got no stopped");
    a.stop().timeout(WAIT).wait().unwrap();
    assert_eq!(c.started_ok.load(Ordering::SeqCst), 1);
    assert_eq!(c.stopped.load(Ordering::SeqCst), 1, "the started instance got its stopped");
}
