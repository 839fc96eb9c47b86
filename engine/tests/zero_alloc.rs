//! Same-shard tell allocates nothing per message once mailboxes have grown, and dead letters
//! allocate nothing when nobody subscribes to events.
//!
//! A counting global allocator counts allocations made by each thread. An actor on the shard
//! reads its own thread's count before and after a steady-state burst of tells (and their
//! handling) and reports the difference.

use corelane::{Actor, ActorError, ActorRef, Ctx, Idle, Reply, Runtime, Shards};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

/// (messages the sink has seen, shard-thread allocations at the start, at the end)
type Report = (u64, u64, u64);

enum SinkMsg {
    Inc(u64),
    /// Reply with the report; `before` was read by the driver when the run began.
    Done {
        before: u64,
        reply: Reply<Report>,
    },
}
#[derive(Default)]
struct Sink(u64);
impl Actor for Sink {
    type Msg = SinkMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: SinkMsg) -> Result<(), ActorError> {
        match m {
            SinkMsg::Inc(n) => self.0 += n,
            SinkMsg::Done { before, reply } => reply.send((self.0, before, allocs())),
        }
        Ok(())
    }
}

enum DriverMsg {
    /// Send `rounds` rounds of `burst` messages, one round per turn, then have the sink report.
    Run {
        rounds: u32,
        burst: u32,
        reply: Reply<Report>,
    },
    Round {
        left: u32,
        burst: u32,
    },
    /// Tell `n` messages to a stopped actor; reply with the allocations that made.
    Dead {
        to: ActorRef<SinkMsg>,
        n: u32,
        reply: Reply<u64>,
    },
}
struct Driver {
    sink: ActorRef<SinkMsg>,
    run: Option<(u64, Reply<Report>)>,
}
impl Actor for Driver {
    type Msg = DriverMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: DriverMsg) -> Result<(), ActorError> {
        match m {
            DriverMsg::Run { rounds, burst, reply } => {
                self.run = Some((allocs(), reply));
                ctx.myself().tell(DriverMsg::Round { left: rounds, burst }).unwrap();
            }
            DriverMsg::Round { left, burst } => {
                for _ in 0..burst {
                    self.sink.tell(SinkMsg::Inc(1)).unwrap();
                }
                if left > 1 {
                    ctx.myself().tell(DriverMsg::Round { left: left - 1, burst }).unwrap();
                } else {
                    // Same sender, same shard: handled after every Inc above.
                    let (before, reply) = self.run.take().unwrap();
                    self.sink.tell(SinkMsg::Done { before, reply }).unwrap();
                }
            }
            DriverMsg::Dead { to, n, reply } => {
                let before = allocs();
                for _ in 0..n {
                    to.tell(SinkMsg::Inc(1)).unwrap();
                }
                reply.send(allocs() - before);
            }
        }
        Ok(())
    }
}

#[test]
fn same_shard_tell_allocates_nothing_in_steady_state() {
    let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Spin).build().unwrap();
    let sink = rt.spawn_on(0, Sink::default).unwrap();
    let driver = rt.spawn_on(0, move || Driver { sink: sink.clone(), run: None }).unwrap();
    let wait = Duration::from_secs(10);
    let run = |rounds| {
        driver.ask(|reply| DriverMsg::Run { rounds, burst: 64, reply }).timeout(wait).wait().unwrap()
    };
    // Warm-up: mailboxes and the run queue grow to their working size.
    // The burst equals the per-turn throughput (64), so the sink's backlog stays bounded.
    for _ in 0..2 {
        run(4000);
    }
    let (seen, before, after) = run(4000);
    assert_eq!(seen, (3 * 4000) * 64, "every tell was handled inside the window");
    assert_eq!(after - before, 0, "{} allocations over 256 000 same-shard tells", after - before);
    rt.shutdown().unwrap();
}

#[test]
fn dead_letters_allocate_nothing_without_subscribers() {
    let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Park).build().unwrap();
    let gone = rt.spawn_on(0, Sink::default).unwrap();
    gone.stop().timeout(Duration::from_secs(5)).wait().unwrap();
    let g = gone.clone();
    let driver = rt.spawn_on(0, move || Driver { sink: g.clone(), run: None }).unwrap();
    let dead = |n| {
        let to = gone.clone();
        driver.ask(|reply| DriverMsg::Dead { to, n, reply }).timeout(Duration::from_secs(5)).wait().unwrap()
    };
    dead(100); // warm-up
    assert_eq!(dead(100_000), 0, "dead letters allocated with nobody subscribed");
    assert_eq!(rt.metrics().dead_letters, 100_100);
    rt.shutdown().unwrap();
}
