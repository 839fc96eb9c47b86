//! Sending: order per sender and receiver pair across shards and threads, runs of messages to
//! several targets, and batches of sends from a plain thread (ask: `ask.rs`).

use corelane::{Actor, ActorError, ActorRef, Ctx, Idle, Reply};
use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::*;

/// Last sequence number per sender, and the count of order violations.
type Verdict = (HashMap<u32, u64>, u64);

enum RecvMsg {
    Seq {
        sender: u32,
        n: u64,
    },
    /// Answered once `expected` messages have arrived.
    Report {
        expected: u64,
        reply: Reply<(HashMap<u32, u64>, u64)>,
    },
}

/// Records the last sequence number per sender and counts order violations.
#[derive(Default)]
struct Recorder {
    last: HashMap<u32, u64>,
    violations: u64,
    seen: u64,
    waiting: Option<(u64, Reply<Verdict>)>,
}

impl Recorder {
    fn answer_if_complete(&mut self) {
        if self.waiting.as_ref().is_some_and(|(e, _)| self.seen >= *e) {
            let (_, r) = self.waiting.take().unwrap();
            r.send((self.last.clone(), self.violations));
        }
    }
}

impl Actor for Recorder {
    type Msg = RecvMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: RecvMsg) -> Result<(), ActorError> {
        match m {
            RecvMsg::Seq { sender, n } => {
                let last = self.last.entry(sender).or_insert(0);
                if n != *last + 1 {
                    self.violations += 1;
                }
                *last = n;
                self.seen += 1;
            }
            RecvMsg::Report { expected, reply } => self.waiting = Some((expected, reply)),
        }
        self.answer_if_complete();
        Ok(())
    }
}

enum SenderMsg {
    Go { to: ActorRef<RecvMsg>, id: u32, count: u64, done: Reply<()> },
}

/// Sends `count` numbered messages, a slice per turn so it interleaves with other actors.
struct Sender;
impl Actor for Sender {
    type Msg = SenderMsg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: SenderMsg) -> Result<(), ActorError> {
        let SenderMsg::Go { to, id, count, done } = m;
        for n in 1..=count {
            to.tell(RecvMsg::Seq { sender: id, n }).unwrap();
        }
        done.send(());
        Ok(())
    }
}

#[test]
fn per_pair_fifo_across_shards_under_concurrent_senders() {
    let rt = runtime(4, Idle::SpinThenPark(Duration::from_micros(20)));
    let recorder = rt.spawn_on(0, Recorder::default).unwrap();
    const COUNT: u64 = 20_000;
    // Actor senders on every shard (including the receiver's own) ...
    let mut done = Vec::new();
    for shard in 0..4 {
        let s = rt.spawn_on(shard, || Sender).unwrap();
        let to = recorder.clone();
        done.push(s.ask(|r| SenderMsg::Go { to, id: shard as u32, count: COUNT, done: r }));
    }
    // ... and plain threads, all at once.
    let threads: Vec<_> = (10..13u32)
        .map(|id| {
            let to = recorder.clone();
            std::thread::spawn(move || {
                for n in 1..=COUNT {
                    to.tell(RecvMsg::Seq { sender: id, n }).unwrap();
                }
            })
        })
        .collect();
    for d in done {
        d.timeout(WAIT).wait().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    let (last, violations) = recorder
        .ask(|reply| RecvMsg::Report { expected: 7 * COUNT, reply })
        .timeout(WAIT)
        .wait()
        .expect("all messages arrive");
    assert_eq!(violations, 0, "per-sender order was broken");
    assert_eq!(last.len(), 7);
    assert!(last.values().all(|&n| n == COUNT), "every message arrived: {last:?}");
    rt.shutdown().unwrap();
}

#[test]
fn runs_to_several_targets_from_one_sender_keep_per_pair_order() {
    // One sender alternates runs of messages between two receivers on another shard, in one
    // turn (so consecutive messages to one target travel batched), then more turns of it.
    enum M {
        Go { a: ActorRef<RecvMsg>, b: ActorRef<RecvMsg>, done: Reply<(u64, u64)> },
    }
    struct Interleaver;
    impl Actor for Interleaver {
        type Msg = M;
        fn receive(&mut self, _: &mut Ctx<Self>, M::Go { a, b, done }: M) -> Result<(), ActorError> {
            let (mut na, mut nb) = (0u64, 0u64);
            // Run lengths 1..=150 cycle, crossing the batch capacity and the publish batch.
            for round in 0..200u64 {
                let run = 1 + (round * 37) % 150;
                let (to, n) = if round % 3 == 2 { (&b, &mut nb) } else { (&a, &mut na) };
                for _ in 0..run {
                    *n += 1;
                    to.tell(RecvMsg::Seq { sender: 1, n: *n }).unwrap();
                }
            }
            done.send((na, nb));
            Ok(())
        }
    }
    let rt = runtime(2, Idle::Spin);
    let a = rt.spawn_on(1, Recorder::default).unwrap();
    let b = rt.spawn_on(1, Recorder::default).unwrap();
    let s = rt.spawn_on(0, || Interleaver).unwrap();
    for turn in 1..=3u64 {
        let (na, nb) = s.ask(|done| M::Go { a: a.clone(), b: b.clone(), done }).timeout(WAIT).wait().unwrap();
        for (r, n) in [(&a, na), (&b, nb)] {
            let (last, violations) =
                r.ask(|reply| RecvMsg::Report { expected: turn * n, reply }).timeout(WAIT).wait().unwrap();
            assert_eq!(violations, turn - 1, "only the restart of numbering between turns breaks order");
            assert_eq!(last[&1], n);
        }
    }
    rt.shutdown().unwrap();
}

// ---- batched wake-ups --------------------------------------------------------------------------

/// Passes each message on to a channel, and first the id of the thread it runs on.
struct PassOn(mpsc::Sender<u32>, Option<mpsc::Sender<i32>>);
impl Actor for PassOn {
    type Msg = u32;
    fn started(&mut self, _: &mut Ctx<Self>) -> Result<(), ActorError> {
        if let Some(tid) = self.1.take() {
            // SAFETY: `gettid` takes no arguments and cannot fail.
            let _ = tid.send(unsafe { libc::gettid() });
        }
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, n: u32) -> Result<(), ActorError> {
        let _ = self.0.send(n);
        Ok(())
    }
}

/// Waits until thread `tid` of this process sleeps in the kernel (state `S` in
/// `/proc/self/task/<tid>/stat`): for a shard under `Idle::Park` with nothing to do, parked.
fn until_asleep(tid: i32) -> bool {
    let deadline = std::time::Instant::now() + WAIT;
    let path = format!("/proc/self/task/{tid}/stat");
    while std::time::Instant::now() < deadline {
        let stat = std::fs::read_to_string(&path).unwrap_or_default();
        // The state follows the command name, which is in parentheses.
        if stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('S')) {
            return true;
        }
        std::thread::yield_now();
    }
    false
}

#[test]
fn a_batch_from_a_plain_thread_wakes_its_shard_once_at_the_end() {
    let rt = runtime(1, Idle::Park);
    let (tx, rx) = mpsc::channel();
    let (tid_tx, tid) = mpsc::channel();
    let relay = rt.spawn(move || PassOn(tx.clone(), Some(tid_tx.clone()))).unwrap();
    let shard = tid.recv_timeout(WAIT).expect("the relay tells where it runs");
    let h = rt.handle();
    let mut next = 0;
    // Each batch begins once the shard sleeps (else it could find the messages on its own last
    // look before parking, with both cores busy as often as not). A parked shard can still be
    // woken by something else now and then; without the deferral every attempt sees messages
    // move inside the batch.
    let deferred = (0..20).any(|_| {
        relay.tell(next).unwrap();
        assert_eq!(rx.recv_timeout(WAIT), Ok(next));
        assert!(until_asleep(shard), "the shard parks with nothing to do");
        let first = next + 1;
        next += 101;
        let early = h.batch(|| {
            for n in first..next {
                relay.tell(n).unwrap();
            }
            // A parked shard is not woken: nothing moves until the batch ends.
            rx.recv_timeout(Duration::from_millis(50)).ok()
        });
        // Whatever happened inside, every message arrives, in order, once the batch ends.
        let from = match early {
            Some(m) => {
                assert_eq!(m, first);
                first + 1
            }
            None => first,
        };
        for n in from..next {
            assert_eq!(rx.recv_timeout(WAIT), Ok(n));
        }
        early.is_none()
    });
    assert!(deferred, "sends inside a batch woke the parked shard in every attempt");
}
