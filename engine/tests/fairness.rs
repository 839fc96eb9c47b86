//! Fairness under backlog: one actor working through a deep mailbox delays others on its shard
//! by at most one of its turns, and a graceful stop is bounded by the stop timeout.

use corelane::{Actor, ActorError, ActorRef, Ctx, DeadLetterReason, Idle, Reply, Runtime, Shards};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);

/// Spins for the given time on each message (a handler doing real work).
struct Busy(Duration, Arc<AtomicUsize>);
impl Actor for Busy {
    type Msg = ();
    fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
        let t = Instant::now();
        while t.elapsed() < self.0 {
            std::hint::spin_loop();
        }
        self.1.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct Echo;
impl Actor for Echo {
    type Msg = Reply<()>;
    fn receive(&mut self, _: &mut Ctx<Self>, r: Reply<()>) -> Result<(), ActorError> {
        r.send(());
        Ok(())
    }
}

/// Forwards each reply to `Echo` (from its own shard, through the ring between shards).
struct Relay(ActorRef<Reply<()>>);
impl Actor for Relay {
    type Msg = Reply<()>;
    fn receive(&mut self, _: &mut Ctx<Self>, r: Reply<()>) -> Result<(), ActorError> {
        let _ = self.0.tell(r);
        Ok(())
    }
}

#[test]
fn an_idle_actor_answers_while_a_neighbour_works_through_a_backlog() {
    let rt = Runtime::builder()
        .shards(Shards::Count(2))
        .idle(Idle::Park)
        .throughput(64)
        .build()
        .expect("runtime builds");
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let busy = rt.spawn_on(0, move || Busy(Duration::from_micros(100), d.clone())).unwrap();
    let echo = rt.spawn_on(0, || Echo).unwrap();
    let e = echo.clone();
    let relay = rt.spawn_on(1, move || Relay(e.clone())).unwrap();
    // Warm up both paths before the backlog.
    echo.ask(|r| r).timeout(WAIT).wait().unwrap();
    relay.ask(|r| r).timeout(WAIT).wait().unwrap();
    // 20 000 messages of 100 us: 2 s of work, 6.4 ms per turn.
    for _ in 0..20_000 {
        busy.tell(()).unwrap();
    }
    let mut worst = Duration::ZERO;
    for i in 0..10 {
        let t = Instant::now();
        if i % 2 == 0 {
            echo.ask(|r| r).timeout(WAIT).wait().expect("answer from a plain thread");
        } else {
            relay.ask(|r| r).timeout(WAIT).wait().expect("answer through another shard");
        }
        worst = worst.max(t.elapsed());
    }
    let handled = done.load(Ordering::Relaxed);
    // Before the fix, one pass ran up to 256 turns of the busy actor (1.6 s) before taking
    // inbound messages; now each waits for at most one turn (6.4 ms, more on a loaded machine).
    assert!(worst < Duration::from_millis(600), "slowest answer took {worst:?}");
    assert!(handled < 20_000, "the answers came before the backlog was done ({handled} handled)");
    busy.kill().wait().unwrap();
    rt.shutdown().unwrap();
}

#[test]
fn a_graceful_stop_ends_at_the_stop_timeout_and_counts_the_rest() {
    let rt = Runtime::builder()
        .shards(Shards::Count(1))
        .idle(Idle::Park)
        .stop_timeout(Duration::from_millis(200))
        .build()
        .expect("runtime builds");
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    let busy = rt.spawn(move || Busy(Duration::from_millis(5), d.clone())).unwrap();
    for _ in 0..1000 {
        busy.tell(()).unwrap();
    }
    let before = rt.metrics().dead_letters_for(DeadLetterReason::ActorStopped);
    let t = Instant::now();
    busy.stop().timeout(WAIT).wait().expect("the stop completes");
    let took = t.elapsed();
    let handled = done.load(Ordering::Relaxed) as u64;
    let dropped = rt.metrics().dead_letters_for(DeadLetterReason::ActorStopped) - before;
    // Handling all 1000 would take 5 s; the stop ends at 200 ms plus at most one message.
    assert!(took < Duration::from_secs(2), "the stop took {took:?}");
    assert!(handled < 1000, "all {handled} messages were handled");
    assert_eq!(handled + dropped, 1000, "every message is handled or a counted dead letter");
    rt.shutdown().unwrap();
}
