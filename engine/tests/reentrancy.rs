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
