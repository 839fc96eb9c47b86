//! Sending from threads outside the runtime: each thread's messages keep their order, what a
//! finished thread sent is ahead of what its joiner sends next (also for a `std::thread::scope`,
//! which returns before the threads' thread-locals are gone), and every message accepted around
//! a shutdown is delivered or counted, also when a lone thread's stream travels in runs; a burst
//! of spawns builds its actors in order, each before its first message; a flood to many actors
//! past a stalled shard keeps every sender's order, alone or beside another sender.

use corelane::{Actor, ActorError, Ctx, Handle, Reply, Runtime, Shards};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

enum Msg {
    /// (sender, sequence number)
    Seq(u64, u64),
    Counts(Reply<(HashMap<u64, u64>, u64)>),
}

/// Checks that each sender's numbers arrive in order, counting them.
#[derive(Default)]
struct Checker {
    next: HashMap<u64, u64>,
    out_of_order: u64,
}

impl Actor for Checker {
    type Msg = Msg;
    fn receive(&mut self, _: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
        match m {
            Msg::Counts(r) => r.send((self.next.clone(), self.out_of_order)),
            seq => self.receive_seq(seq),
        }
        Ok(())
    }
}

#[test]
fn tells_from_many_plain_threads_arrive_in_order_and_before_what_their_joiner_sends() {
    let rt = Runtime::builder().shards(Shards::Count(2)).build().unwrap();
    let checkers: Vec<_> = (0..2).map(|s| rt.spawn_on(s, Checker::default).unwrap()).collect();
    const PER: u64 = 20_000;
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let checkers = checkers.clone();
            scope.spawn(move || {
                for seq in 0..PER {
                    for c in &checkers {
                        c.tell(Msg::Seq(t, seq)).unwrap();
                    }
                }
            });
        }
    });
    // The ask comes after every tell of the scope: it must see all of them.
    for c in &checkers {
        let (counts, out_of_order) = c.ask(Msg::Counts).timeout(WAIT).wait().unwrap();
        assert_eq!(out_of_order, 0, "every thread's messages in the order sent");
        assert_eq!(counts.len(), 4);
        assert!(counts.values().all(|&n| n == PER), "{counts:?}");
    }
    rt.shutdown().unwrap();
}

#[test]
fn what_a_thread_sent_before_exiting_is_delivered_after_it_is_gone() {
    let rt = Runtime::builder().shards(Shards::Count(1)).build().unwrap();
    let c = rt.spawn_on(0, Checker::default).unwrap();
    for round in 0..20u64 {
        let c2 = c.clone();
        std::thread::spawn(move || {
            for seq in 0..1000 {
                c2.tell(Msg::Seq(round, seq)).unwrap();
            }
        })
        .join()
        .unwrap();
    }
    let (counts, out_of_order) = c.ask(Msg::Counts).timeout(WAIT).wait().unwrap();
    assert_eq!(out_of_order, 0);
    assert_eq!(counts.len(), 20);
    assert!(counts.values().all(|&n| n == 1000), "{counts:?}");
    rt.shutdown().unwrap();
}

/// Counts what it receives; tells `first` once it has seen `signal_at`.
struct Counter {
    seen: Arc<AtomicU64>,
    signal_at: u64,
    first: Option<mpsc::Sender<()>>,
}

impl Actor for Counter {
    type Msg = u64;
    fn receive(&mut self, _: &mut Ctx<Self>, _: u64) -> Result<(), ActorError> {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.signal_at {
            if let Some(tx) = self.first.take() {
                let _ = tx.send(());
            }
        }
        Ok(())
    }
}

#[test]
fn every_tell_accepted_around_a_shutdown_is_delivered_or_counted_as_a_dead_letter() {
    for round in 0..5 {
        let rt = Runtime::builder().shards(Shards::Count(2)).build().unwrap();
        let seen = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let counters: Vec<_> = (0..2)
            .map(|s| {
                let (seen, tx) = (seen.clone(), tx.clone());
                let mut first = Some(tx);
                rt.spawn_on(s, move || Counter { seen: seen.clone(), signal_at: 10_000, first: first.take() })
                    .unwrap()
            })
            .collect();
        let handle = rt.handle().clone();
        let accepted = Arc::new(AtomicU64::new(0));
        let senders: Vec<_> = (0..3)
            .map(|t| {
                let (counters, accepted) = (counters.clone(), accepted.clone());
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    // Until the runtime refuses (or enough were sent): every accepted tell must be
                    // accounted for.
                    while i < 200_000 && counters[(i + t) as usize % 2].tell(i).is_ok() {
                        accepted.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                })
            })
            .collect();
        rx.recv_timeout(WAIT).expect("messages flow before the shutdown");
        rt.shutdown().unwrap();
        for s in senders {
            s.join().unwrap();
        }
        every_accepted_tell_is_accounted_for(round, &accepted, &seen, &handle);
    }
}

/// A lone thread streaming to one actor, with its shard behind (stalled at first), has its
/// tells carried in runs (`lane::run`); around a shutdown, what the shard took is delivered
/// and the rest counted, each once. The thread spawns what it sends to itself, so until the
/// shutdown request its lane is the only one into that shard and its stamps repeat.
#[test]
fn every_tell_a_lone_thread_streams_to_one_actor_around_a_shutdown_is_delivered_or_counted() {
    for round in 0..5 {
        let rt = Runtime::builder().shards(Shards::Count(2)).build().unwrap();
        let handle = rt.handle().clone();
        let (seen, accepted) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (flowing_tx, flowing) = mpsc::channel();
        let sender = {
            let (handle, seen, accepted) = (handle.clone(), seen.clone(), accepted.clone());
            std::thread::spawn(move || {
                let mut first = Some(flowing_tx);
                let counter = handle
                    .spawn_on(0, move || Counter {
                        seen: seen.clone(),
                        signal_at: 10_000,
                        first: first.take(),
                    })
                    .unwrap();
                let release = stall(&handle, 0);
                let mut i = 0u64;
                while i < 1_000_000 && counter.tell(i).is_ok() {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    if i == 1_000 {
                        release.send(()).unwrap();
                    }
                }
            })
        };
        flowing.recv_timeout(WAIT).expect("messages flow before the shutdown");
        rt.shutdown().unwrap();
        sender.join().unwrap();
        every_accepted_tell_is_accounted_for(round, &accepted, &seen, &handle);
    }
}

/// After a shutdown: every tell accepted (`accepted`) was delivered (`seen`, at least the
/// 10 000 that signalled the flow) or counted as a dead letter, once.
fn every_accepted_tell_is_accounted_for(round: u32, accepted: &AtomicU64, seen: &AtomicU64, handle: &Handle) {
    let accepted = accepted.load(Ordering::Relaxed);
    let delivered = seen.load(Ordering::Relaxed);
    let dead = handle.dead_letters();
    assert!(delivered >= 10_000);
    assert_eq!(delivered + dead, accepted, "round {round}: delivered {delivered} + dead {dead}");
}

/// Tells `stalled` it runs, then blocks its shard until `release` says so: meanwhile the shard
/// takes nothing.
struct Staller {
    release: Arc<std::sync::Mutex<mpsc::Receiver<()>>>,
    stalled: mpsc::Sender<()>,
}

impl Actor for Staller {
    type Msg = ();
    fn receive(&mut self, _: &mut Ctx<Self>, _: ()) -> Result<(), ActorError> {
        self.stalled.send(()).unwrap();
        self.release.lock().unwrap().recv_timeout(WAIT).unwrap();
        Ok(())
    }
}

/// Stalls shard `shard` of the runtime behind `h` (a `Staller` blocks it) and returns the
/// sender that releases it; the shard takes nothing meanwhile.
fn stall(h: &Handle, shard: usize) -> mpsc::Sender<()> {
    let (release, release_rx) = mpsc::channel();
    let release_rx = Arc::new(std::sync::Mutex::new(release_rx));
    let (stalled_tx, stalled) = mpsc::channel();
    let staller = h
        .spawn_on(shard, move || Staller { release: release_rx.clone(), stalled: stalled_tx.clone() })
        .unwrap();
    staller.tell(()).unwrap();
    stalled.recv_timeout(WAIT).unwrap();
    release
}

/// A lone plain thread that outruns its shard has its runs of messages to one actor carried as
/// batches (joined in its lane's overflow queue); they arrive in order, interleaved across two
/// actors as sent, and what another thread sends after hearing from it comes after all of
/// them. The shard is stalled meanwhile, so the flood goes far past the lane's ring.
#[test]
fn a_flood_from_a_plain_thread_past_a_stalled_shard_arrives_in_order_and_before_what_follows_it() {
    let rt = Runtime::builder().shards(Shards::Count(1)).build().unwrap();
    let checkers: Vec<_> = (0..2).map(|_| rt.spawn(Checker::default).unwrap()).collect();
    let release = stall(rt.handle(), 0);
    // Runs of 100 to one checker, then the other: joined into batches of up to 64 while alone.
    const RUNS: u64 = 100;
    for run in 0..RUNS {
        for seq in run * 100..(run + 1) * 100 {
            checkers[(run % 2) as usize].tell(Msg::Seq(0, seq / 200 * 100 + seq % 100)).unwrap();
        }
    }
    // Another thread, after hearing from this one, continues its numbering: it must come last.
    std::thread::scope(|s| {
        s.spawn(|| {
            for c in &checkers {
                c.tell(Msg::Seq(0, RUNS / 2 * 100)).unwrap();
            }
        });
    });
    release.send(()).unwrap();
    for c in &checkers {
        let (next, out_of_order) = c.ask(Msg::Counts).timeout(WAIT).wait().unwrap();
        assert_eq!(out_of_order, 0);
        assert_eq!(next.get(&0), Some(&(RUNS / 2 * 100 + 1)), "every message of the flood, then the last");
    }
    rt.shutdown().unwrap();
}

/// A flood to many actors (one message each in turn, so nothing joins) goes past a stalled
/// shard into the lanes' overflow queues, thousands of messages deep: from one thread alone
/// (the shard delivers the queue from the blocks it was queued in) and then from two threads at
/// once (their queues are sorted together). Every sender's messages arrive in order, an ask
/// sent in the middle of the flood answers with what was sent before it, and what the joining
/// thread sends after the flood comes after all of it.
#[test]
fn a_flood_to_many_actors_past_a_stalled_shard_arrives_in_order_from_one_thread_and_from_two() {
    const ACTORS: u64 = 64;
    const PER: u64 = 100;
    let rt = Runtime::builder().shards(Shards::Count(1)).build().unwrap();
    let checkers: Vec<_> = (0..ACTORS).map(|_| rt.spawn(Checker::default).unwrap()).collect();
    let flood = |from: u64| {
        for seq in 0..PER {
            for c in &checkers {
                c.tell(Msg::Seq(from, seq)).unwrap();
            }
        }
    };
    // One thread alone, an ask half way.
    let release = stall(rt.handle(), 0);
    let mut half_way = None;
    for seq in 0..PER {
        if seq == PER / 2 {
            half_way = Some(checkers[5].ask(Msg::Counts).timeout(WAIT));
        }
        for c in &checkers {
            c.tell(Msg::Seq(0, seq)).unwrap();
        }
    }
    release.send(()).unwrap();
    let (at_half, _) = half_way.unwrap().wait().unwrap();
    assert_eq!(at_half.get(&0), Some(&(PER / 2)), "the ask saw what was sent before it, and only that");
    // Two threads at once, then their joiner.
    let release = stall(rt.handle(), 0);
    std::thread::scope(|s| {
        s.spawn(|| flood(1));
        s.spawn(|| flood(2));
    });
    for c in &checkers {
        c.tell(Msg::Seq(1, PER)).unwrap();
        c.tell(Msg::Seq(2, PER)).unwrap();
    }
    release.send(()).unwrap();
    for c in &checkers {
        let (next, out_of_order) = c.ask(Msg::Counts).timeout(WAIT).wait().unwrap();
        assert_eq!(out_of_order, 0, "every sender's messages in the order sent");
        assert_eq!(next.get(&0), Some(&PER));
        assert_eq!(next.get(&1), Some(&(PER + 1)), "the flood, then what the joiner sent");
        assert_eq!(next.get(&2), Some(&(PER + 1)));
    }
    rt.shutdown().unwrap();
}

/// A lone plain thread whose stream to one actor keeps ahead of the shard has it carried in
/// runs (`lane::run`): the messages arrive in order, interleaved with those to another actor as
/// sent, and what another thread sends after hearing from it comes after all of them.
#[test]
fn a_stream_from_a_lone_plain_thread_ahead_of_its_shard_arrives_in_order_and_before_what_follows_it() {
    let rt = Runtime::builder().shards(Shards::Count(1)).build().unwrap();
    let checkers: Vec<_> = (0..2).map(|_| rt.spawn(Checker::default).unwrap()).collect();
    // A backlog while the shard is stalled: its first take after finds the sender ahead.
    let release = stall(rt.handle(), 0);
    let mut next = [0u64; 2];
    let mut send = |c: usize, n: u64| {
        for _ in 0..n {
            checkers[c].tell(Msg::Seq(0, next[c])).unwrap();
            next[c] += 1;
        }
    };
    send(0, 100);
    release.send(()).unwrap();
    // Streams to the first checker with a few to the second between them.
    for round in 0..200 {
        send(0, 1_000);
        send(1, round % 3);
    }
    let last = next;
    std::thread::scope(|s| {
        s.spawn(|| {
            for (c, n) in checkers.iter().zip(last) {
                c.tell(Msg::Seq(0, n)).unwrap();
            }
        });
    });
    for (c, n) in checkers.iter().zip(last) {
        let (counts, out_of_order) = c.ask(Msg::Counts).timeout(WAIT).wait().unwrap();
        assert_eq!(out_of_order, 0, "in the order sent, the other thread's last");
        assert_eq!(counts.get(&0), Some(&(n + 1)), "every message of the stream, then the last");
    }
    rt.shutdown().unwrap();
}

/// The end of a lone thread's stream travels in a run like the rest, and arrives although the
/// thread sends nothing after it: nothing else in its lane ends the run, so the shard must
/// come back to the open run for what was appended after its last take.
#[test]
fn the_end_of_a_stream_from_a_lone_plain_thread_arrives_with_nothing_sent_after_it() {
    let rt = Runtime::builder().shards(Shards::Count(1)).build().unwrap();
    for round in 1..=20u64 {
        let (seen, (tx, signal)) = (Arc::new(AtomicU64::new(0)), mpsc::channel());
        let n = 1_000 * round;
        let c = rt.spawn({
            let seen = seen.clone();
            move || Counter { seen: seen.clone(), signal_at: n + 100, first: Some(tx.clone()) }
        });
        let c = c.unwrap();
        // A backlog while the shard is stalled: its first take after finds the sender ahead,
        // and the stream that follows goes in runs.
        let release = stall(rt.handle(), 0);
        for v in 0..100 {
            c.tell(v).unwrap();
        }
        release.send(()).unwrap();
        for v in 0..n {
            c.tell(v).unwrap();
        }
        signal.recv_timeout(WAIT).expect("every message of the stream, with nothing after it");
        assert_eq!(seen.load(Ordering::Relaxed), n + 100);
    }
    rt.shutdown().unwrap();
}

/// Records when it was built (its number, in `built`) and what it was told, checking that
/// `started` ran first.
struct Born {
    n: u32,
    built: Arc<std::sync::Mutex<Vec<u32>>>,
    started: bool,
    got: Vec<u32>,
}

enum BornMsg {
    Told(u32),
    Got(Reply<(bool, Vec<u32>)>),
}

impl Actor for Born {
    type Msg = BornMsg;
    fn started(&mut self, _: &mut Ctx<Self>) -> Result<(), ActorError> {
        self.built.lock().unwrap().push(self.n);
        self.started = true;
        Ok(())
    }
    fn receive(&mut self, _: &mut Ctx<Self>, m: BornMsg) -> Result<(), ActorError> {
        match m {
            BornMsg::Told(v) => {
                assert!(self.started, "started runs before any message");
                self.got.push(v);
            }
            BornMsg::Got(r) => r.send((self.started, self.got.clone())),
        }
        Ok(())
    }
}

/// A burst of spawns from a plain thread ahead of its shard (stalled for the first ones, then
/// behind: the spawns travel in runs like a stream of tells to one actor) builds every actor,
/// in the order spawned, and what the thread tells a new actor right after spawning it
/// arrives after its `started`, in order.
#[test]
fn a_burst_of_spawns_from_a_plain_thread_builds_every_actor_in_order_before_its_messages() {
    let rt = Runtime::builder().shards(Shards::Count(1)).build().unwrap();
    let built = Arc::new(std::sync::Mutex::new(Vec::new()));
    let release = stall(rt.handle(), 0);
    let mut actors = Vec::new();
    let mut spawn = |n: u32| {
        let b = built.clone();
        let a = rt.spawn(move || Born { n, built: b.clone(), started: false, got: Vec::new() }).unwrap();
        if n.is_multiple_of(97) {
            a.tell(BornMsg::Told(n)).unwrap();
            a.tell(BornMsg::Told(n + 1)).unwrap();
        }
        actors.push(a);
    };
    const STALLED: u32 = 600;
    const TOTAL: u32 = 30_000;
    for n in 0..STALLED {
        spawn(n);
    }
    release.send(()).unwrap();
    for n in STALLED..TOTAL {
        spawn(n);
    }
    for (n, a) in actors.iter().enumerate() {
        let n = n as u32;
        let (started, got) = a.ask(BornMsg::Got).timeout(WAIT).wait().unwrap();
        assert!(started);
        let told = if n.is_multiple_of(97) { vec![n, n + 1] } else { Vec::new() };
        assert_eq!(got, told, "actor {n}");
    }
    assert_eq!(*built.lock().unwrap(), (0..TOTAL).collect::<Vec<_>>(), "built in the order spawned");
    rt.shutdown().unwrap();
}

/// Checks each sender's numbers like [`Checker`], slowly (a plain thread outruns it), and that
/// a message comes with a sender exactly when an actor sent it (`from` 1).
#[derive(Default)]
struct SlowChecker {
    inner: Checker,
    wrong_sender: u64,
}

impl Actor for SlowChecker {
    type Msg = Msg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
        if let Msg::Seq(from, _) = m {
            if (from == 1) != ctx.sender().is_some() {
                self.wrong_sender += 1;
            }
            for i in 0..100u32 {
                std::hint::black_box(i);
            }
        }
        if let Msg::Counts(r) = m {
            let (next, out_of_order) = (self.inner.next.clone(), self.inner.out_of_order + self.wrong_sender);
            r.send((next, out_of_order));
            return Ok(());
        }
        self.inner.receive_seq(m);
        Ok(())
    }
}

impl Checker {
    /// Counts a `Seq`, noting whether it came in its sender's order.
    fn receive_seq(&mut self, m: Msg) {
        if let Msg::Seq(from, seq) = m {
            let next = self.next.entry(from).or_default();
            if seq != *next {
                self.out_of_order += 1;
            }
            *next = seq + 1;
        }
    }
}

/// Tells the checker its next number (as sender 1) whenever it is told to; answers how many it
/// sent.
struct Feeder {
    checker: corelane::ActorRef<Msg>,
    next: u64,
}

enum Feed {
    One,
    Sent(Reply<u64>),
}

impl Actor for Feeder {
    type Msg = Feed;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: Feed) -> Result<(), ActorError> {
        match m {
            Feed::One => {
                ctx.tell(&self.checker, Msg::Seq(1, self.next)).unwrap();
                self.next += 1;
            }
            Feed::Sent(r) => r.send(self.next),
        }
        Ok(())
    }
}

/// A lone plain thread streaming to an actor slower than the stream: the backlog stays in the
/// thread's runs and is queued in the actor's mailbox where it is (`Mailbox::push_part`). The
/// actor still gets every message in order, among those an actor on its shard sends it (each
/// with its sender, while the backlog's have none), and before what another thread sends
/// after hearing from the first.
#[test]
fn a_backlog_left_in_its_senders_runs_arrives_in_order_among_messages_with_senders() {
    let rt = Runtime::builder().shards(Shards::Count(1)).build().unwrap();
    let checker = rt.spawn(SlowChecker::default).unwrap();
    let feeder = rt.spawn({
        let checker = checker.clone();
        move || Feeder { checker: checker.clone(), next: 0 }
    });
    let feeder = feeder.unwrap();
    // A backlog while the shard is stalled: its first take after finds the sender ahead.
    let release = stall(rt.handle(), 0);
    const N: u64 = 300_000;
    const FEEDS: u64 = 30;
    for seq in 0..100 {
        checker.tell(Msg::Seq(0, seq)).unwrap();
    }
    release.send(()).unwrap();
    for seq in 100..N {
        checker.tell(Msg::Seq(0, seq)).unwrap();
        if seq % (N / FEEDS) == N / FEEDS / 2 {
            feeder.tell(Feed::One).unwrap();
        }
    }
    std::thread::scope(|s| {
        s.spawn(|| checker.tell(Msg::Seq(0, N)).unwrap());
    });
    // The feeder's last message is in the checker's mailbox once the feeder has answered.
    assert_eq!(feeder.ask(Feed::Sent).timeout(WAIT).wait().unwrap(), FEEDS);
    let (next, wrong) = checker.ask(Msg::Counts).timeout(WAIT).wait().unwrap();
    assert_eq!(wrong, 0, "out of order, or a sender where there was none (or none where there was one)");
    assert_eq!(next.get(&0), Some(&(N + 1)), "every message of the stream, then the other thread's");
    assert_eq!(next.get(&1), Some(&FEEDS), "every message of the actor on the shard");
    rt.shutdown().unwrap();
}
