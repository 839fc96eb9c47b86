//! An actor spawned under a lease handles messages only while the lease holds; the first
//! message after it stops holding is a `LeaseLost` dead letter, the actor is killed, and
//! nothing it had queued is handled. A lease whose check reaches back into the engine (tells
//! its own actor) is contained.

use corelane::testkit::TestKit;
use corelane::{Actor, ActorError, ActorRef, Ctx, DeadLetterReason, Lease, Reply, SpawnOptions, StopReason};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

enum Msg {
    Add,
    Count(Reply<u64>),
}

struct Counter(Arc<AtomicU64>);
impl Actor for Counter {
    type Msg = Msg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
        match m {
            Msg::Add => drop(self.0.fetch_add(1, Ordering::SeqCst)),
            Msg::Count(r) => r.send(self.0.load(Ordering::SeqCst)),
        }
        Ok(())
    }
}

/// Holds while the flag is up; may tell its actor from inside the check.
struct Flag {
    up: AtomicBool,
    checks: AtomicU64,
    tell_back: OnceLock<ActorRef<Msg>>,
}

impl Lease for Flag {
    fn held(&self) -> bool {
        self.checks.fetch_add(1, Ordering::SeqCst);
        if let Some(r) = self.tell_back.get() {
            let _ = r.tell(Msg::Add);
        }
        self.up.load(Ordering::SeqCst)
    }
}

fn flag() -> Arc<Flag> {
    Arc::new(Flag { up: AtomicBool::new(true), checks: AtomicU64::new(0), tell_back: OnceLock::new() })
}

#[test]
fn an_actor_handles_messages_only_while_its_lease_holds() {
    let kit = TestKit::new();
    let lease = flag();
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    let a = kit.spawn_with(SpawnOptions::new().lease(lease.clone()), move || Counter(h.clone())).unwrap();
    let watcher = kit.probe();
    watcher.watch(&a);
    for _ in 0..10 {
        a.tell(Msg::Add).unwrap();
    }
    assert_eq!(a.ask(Msg::Count).timeout(WAIT).wait().unwrap(), 10);
    assert!(lease.checks.load(Ordering::SeqCst) >= 11, "each message checked the lease");

    // The lease ends: the next message is refused as LeaseLost and the actor is killed; the
    // ask behind it gets no answer.
    lease.up.store(false, Ordering::SeqCst);
    let before = kit.metrics().dead_letters_for(DeadLetterReason::LeaseLost);
    a.tell(Msg::Add).unwrap();
    let late = a.ask(Msg::Count).timeout(Duration::from_secs(2)).wait();
    assert!(late.is_err(), "nothing is handled once the lease is lost: {late:?}");
    assert_eq!(watcher.expect_terminated(&a), StopReason::Killed);
    assert_eq!(handled.load(Ordering::SeqCst), 10);
    assert!(kit.metrics().dead_letters_for(DeadLetterReason::LeaseLost) > before);
}

#[test]
fn actors_without_a_lease_are_not_checked_and_a_lease_that_tells_its_actor_is_contained() {
    let kit = TestKit::new();
    // No lease: never checked.
    let lease = flag();
    let plain = kit.spawn(|| Counter(Arc::new(AtomicU64::new(0)))).unwrap();
    plain.tell(Msg::Add).unwrap();
    assert_eq!(plain.ask(Msg::Count).timeout(WAIT).wait().unwrap(), 1);
    assert_eq!(lease.checks.load(Ordering::SeqCst), 0);

    // A check that tells its own actor (user code run by the engine between messages).
    let handled = Arc::new(AtomicU64::new(0));
    let h = handled.clone();
    let a = kit.spawn_with(SpawnOptions::new().lease(lease.clone()), move || Counter(h.clone())).unwrap();
    lease.tell_back.set(a.clone()).ok().unwrap();
    for _ in 0..5 {
        a.tell(Msg::Add).unwrap();
    }
    // Every check adds one more message (and each of those is checked in turn): the count
    // keeps growing while the lease holds; stop it by ending the lease.
    let until = std::time::Instant::now() + WAIT;
    while handled.load(Ordering::SeqCst) < 50 {
        assert!(std::time::Instant::now() < until, "the actor keeps handling");
        let _ = a.ask(Msg::Count).timeout(WAIT).wait();
    }
    let watcher = kit.probe();
    watcher.watch(&a);
    lease.up.store(false, Ordering::SeqCst);
    assert_eq!(watcher.expect_terminated(&a), StopReason::Killed);
    assert!(!a.is_alive());
}
