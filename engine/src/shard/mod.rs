//! One shard: the state its thread owns and the dispatcher loop that drives it.
//!
//! Everything in [`Shard`] is touched only by the shard's own thread (interior mutability
//! without atomics). Other threads reach it only through the rings and the injector in
//! [`ShardShared`].
//!
//! Dispatcher loop, one pass:
//! 1. take a pending wake-up notification (park protocol),
//! 2. drain inbound rings (a bounded batch per ring) and the injector into mailboxes,
//! 3. fire due timers,
//! 4. run each ready actor for up to `throughput` messages (system lane first), re-queueing
//!    those with more, publishing outbound rings after each turn,
//! 5. yield to the executor when a local task was woken or its time slice is over,
//! 6. with nothing done, follow the idle policy (spin, park, or spin then park).
//!
//! Submodules: `delivery` (packets in flight and how they land in mailboxes), `rings` (the
//! outbound rings, batching, draining the inbound rings and the injector), `lifecycle`
//! (building an actor in its slot, stop deadlines, finalizing).

use crate::any_ref::CheckedMsg;
use crate::cell::ext::Birth;
use crate::cell::{
    ActorCell, ErasedCell, Header, Life, Mailbox, Offer, Outcome, Refused, SystemMsg, TypeFit,
};
use crate::cpu::Seat;
use crate::error::SpawnError;
use crate::executor::{self, TaskHandle};
use crate::id::ActorId;
use crate::injector::Injector;
use crate::lane::{LaneRegistry, LaneRx, Stamped};
use crate::metrics::{bump, unbump, DeadLetterReason, ShardStats};
use crate::packet::{Deliver, Packet};
use crate::park::Parker;
use crate::ring::{Consumer, Producer};
use crate::runtime::Shared;
use crate::slots::Slots;
use crate::timers::{deadline_after, TimerAction, TimerId, Timers};
use crate::Actor;
use crossbeam_utils::CachePadded;
use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod delivery;
mod lifecycle;
mod main_loop;
mod rings;
#[cfg(all(test, not(corelane_loom)))]
mod tests;

#[cfg(feature = "tracing-spans")]
pub(crate) use delivery::TracedMsg;
#[cfg(all(test, not(corelane_loom)))]
pub(crate) use delivery::BATCH_CAP;
pub(crate) use delivery::{BatchMsg, SentMsg, ShutdownMsg, SpawnMsg, SysMsg, UserMsg, SPAWNS};
use rings::Outbound;

/// Items taken from one inbound ring per pass, so one busy peer cannot starve the others.
const RING_BATCH: usize = 256;
/// Pushed-but-unpublished items after which a ring is published without waiting for the turn
/// to end.
const PUBLISH_BATCH: usize = 32;
/// Actor turns per pass before inbound rings are drained again.
const MAX_TURNS_PER_PASS: usize = 256;
/// One turn in this many is timed (for the actors' `last_processing` metric).
const TIMED_TURN_EVERY: u32 = 256;

/// What other threads share with one shard. Cache-padded as a whole (neighbouring shards'
/// blocks never share a line), and the counters the shard writes every pass have lines of their
/// own, apart from the injector flag and park state that producers write.
pub(crate) struct ShardShared {
    pub(crate) parker: Parker,
    pub(crate) injector: CachePadded<Injector>,
    /// Lanes from threads outside the runtime (those not adopted yet, how many are live) and
    /// the stamps of what they send.
    pub(crate) lanes: CachePadded<LaneRegistry>,
    pub(crate) slots: Slots,
    pub(crate) stats: CachePadded<ShardStats>,
    /// Where the shard thread runs, for waiters deciding between spinning and yielding.
    pub(crate) seat: CachePadded<Seat>,
}

impl ShardShared {
    /// The shared part of a shard that parks rarely (`Idle::SpinThenPark`) or not.
    pub(crate) fn new(parks_rarely: bool) -> Self {
        Self {
            parker: Parker::new(parks_rarely),
            injector: CachePadded::new(Injector::default()),
            lanes: CachePadded::new(LaneRegistry::default()),
            slots: Slots::new(),
            stats: CachePadded::new(ShardStats::default()),
            seat: CachePadded::new(Seat::default()),
        }
    }
}

thread_local! {
    static CURRENT: Cell<*const Shard> = const { Cell::new(std::ptr::null()) };
}

/// Calls `f` with the shard this thread runs, if it is a shard thread.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Shard>) -> R) -> R {
    let p = current_ptr();
    // SAFETY: CURRENT is set by `Shard::run` to a shard that lives until `run` returns, and is
    // cleared before that; the reference does not escape `f`.
    f(unsafe { p.as_ref() })
}

/// The shard this thread runs, or null. For hot paths that must not move their message through
/// a closure's captured environment (which costs a store-forwarding stall per message).
#[inline(always)]
pub(crate) fn current_ptr() -> *const Shard {
    CURRENT.with(|c| c.get())
}

struct Entry {
    gen: u32,
    /// When the actor was spawned, in [`UPTIME_TICK`]s of the shard's clock (it fits the
    /// padding after `gen`: the uptime costs no memory).
    born: u32,
    cell: Option<Box<dyn ErasedCell>>,
}

/// The resolution of an actor's uptime: a sixteenth of a second (in 32 bits, 8.5 years).
pub(crate) const UPTIME_TICK: Duration = Duration::from_nanos(62_500_000);

/// `d` in [`UPTIME_TICK`]s, saturating.
fn ticks(d: Duration) -> u32 {
    u32::try_from(d.as_nanos() / UPTIME_TICK.as_nanos()).unwrap_or(u32::MAX)
}

/// Spawns between two reads of the clock for birth times when nothing else reads it.
const SPAWNS_PER_CLOCK_READ: u8 = 64;

/// The shard's own state. Lives on its thread for the thread's lifetime.
pub(crate) struct Shard {
    pub(crate) idx: usize,
    pub(crate) shared: Arc<Shared>,
    slab: RefCell<Vec<Entry>>,
    /// Actors with work, by id.
    run_queue: RefCell<VecDeque<ActorId>>,
    outbound: Box<[RefCell<Option<Outbound>>]>,
    dirty: RefCell<Vec<usize>>,
    inbound: RefCell<Vec<Consumer<Packet>>>,
    /// Messages from outside taken this pass (or held from an earlier one), with their stamps.
    outside: RefCell<Vec<Stamped>>,
    /// The buffer a pass delivers outside messages from (kept for its capacity).
    outside_due: RefCell<Vec<Stamped>>,
    /// Lanes' overflow queues taken whole, and emptied blocks for the senders' next.
    outside_blocks: RefCell<crate::lane::Blocks>,
    /// Lanes from threads outside the runtime, adopted.
    lanes: RefCell<Vec<LaneRx>>,
    timers: RefCell<Timers>,
    /// Messages for actors whose spawn request is still in flight, by slot.
    pending: RefCell<HashMap<u32, Vec<Packet>>>,
    /// Messages sent to a mailbox while an operation on it ran user code, in order.
    deferred: RefCell<VecDeque<Packet>>,
    draining_deferred: Cell<bool>,
    pub(crate) local_woken: Cell<bool>,
    processed: Cell<u64>,
    /// Turns until the next timed one.
    untimed: Cell<u32>,
    tasks: Cell<usize>,
    shutting_down: Cell<bool>,
    quiesced: Cell<bool>,
    /// When the shard started: the origin of actors' birth ticks.
    epoch: Instant,
    /// The latest instant the shard read anyway (timers, idle passes, wakes, timed turns), for
    /// birth times without a clock read per spawn; at most `SPAWNS_PER_CLOCK_READ` spawns or one
    /// busy stretch of 256 turns old.
    clock: Cell<Instant>,
    spawns_since_clock: Cell<u8>,
    /// Pairs of (sent, accepted) message types already warned about.
    type_mismatches: RefCell<HashSet<(&'static str, &'static str)>>,
}

/// Keeps the shard's count of live local tasks: decremented when the task ends or is cancelled
/// (its future, and so this guard, is dropped either way).
struct TaskCount(Arc<Shared>);
impl Drop for TaskCount {
    fn drop(&mut self) {
        with_current(|s| {
            if let Some(s) = s.filter(|s| s.belongs_to(&self.0)) {
                s.tasks.set(s.tasks.get() - 1);
            }
        });
    }
}

impl Shard {
    pub(crate) fn new(
        idx: usize,
        shared: Arc<Shared>,
        producers: Vec<Option<Producer<Packet>>>,
        consumers: Vec<Consumer<Packet>>,
    ) -> Self {
        let now = Instant::now();
        Self {
            idx,
            shared,
            slab: RefCell::new(Vec::new()),
            run_queue: RefCell::new(VecDeque::new()),
            outbound: producers.into_iter().map(|p| RefCell::new(p.map(Outbound::new))).collect(),
            dirty: RefCell::new(Vec::new()),
            inbound: RefCell::new(consumers),
            outside: RefCell::new(Vec::new()),
            outside_due: RefCell::new(Vec::new()),
            outside_blocks: RefCell::new(crate::lane::Blocks::default()),
            lanes: RefCell::new(Vec::new()),
            timers: RefCell::new(Timers::default()),
            pending: RefCell::new(HashMap::new()),
            deferred: RefCell::new(VecDeque::new()),
            draining_deferred: Cell::new(false),
            local_woken: Cell::new(false),
            processed: Cell::new(0),
            untimed: Cell::new(0),
            tasks: Cell::new(0),
            shutting_down: Cell::new(false),
            quiesced: Cell::new(false),
            epoch: now,
            clock: Cell::new(now),
            spawns_since_clock: Cell::new(0),
            type_mismatches: RefCell::new(HashSet::new()),
        }
    }

    #[inline]
    pub(crate) fn mine(&self) -> &ShardShared {
        &self.shared.shards[self.idx]
    }

    pub(crate) fn slots(&self) -> &Slots {
        &self.mine().slots
    }

    /// Whether this shard belongs to the runtime `shared`.
    #[inline]
    pub(crate) fn belongs_to(&self, shared: &Arc<Shared>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// Counted in a plain cell; published to the shared counter once per pass.
    #[inline]
    pub(crate) fn count_processed(&self, n: usize) {
        self.processed.set(self.processed.get() + n as u64);
    }

    /// User messages handled on this shard so far.
    fn processed_count(&self) -> u64 {
        self.processed.get()
    }

    /// Counts `n` dead letters of type `ty` for `target`, and publishes them.
    pub(crate) fn dead_letters(
        &self,
        reason: DeadLetterReason,
        n: u64,
        target: Option<ActorId>,
        ty: &'static str,
    ) {
        if n > 0 {
            bump(&self.mine().stats.dead[reason.index()], n);
            tracing::trace!(?reason, n, message_type = ty, "dead letters");
            self.shared.events.publish(|| crate::Event::Deadletter {
                target,
                message_type: ty,
                reason,
                count: n,
            });
        }
    }

    // ---- timers and tasks ------------------------------------------------------------------

    pub(crate) fn add_timer(&self, at: Instant, a: TimerAction) -> TimerId {
        self.timers.borrow_mut().add(at, a)
    }

    pub(crate) fn cancel_timer(&self, id: TimerId) {
        self.timers.borrow_mut().cancel(id)
    }

    fn fire_timers(&self, now: Instant) -> usize {
        self.clock.set(now);
        let mut n = 0;
        loop {
            let a = self.timers.borrow_mut().pop_due(now);
            let Some(a) = a else { break };
            n += 1;
            match a {
                TimerAction::StopDeadline(id) => self.stop_deadline(id),
                TimerAction::Restart(id) => self.deliver_system(id, SystemMsg::BackoffRestart),
                TimerAction::Passivate(id) => self.deliver_system(id, SystemMsg::PassivationCheck),
                TimerAction::Task(t) => {
                    if let Some((at, t)) = t.fire(self, now) {
                        self.add_timer(at, TimerAction::Task(t));
                    }
                }
                TimerAction::Wake(w) => {
                    w.wake();
                    self.local_woken.set(true);
                }
            }
        }
        n
    }

    /// Runs `fut` as a local task on this shard, counted so parking stays responsive to it.
    pub(crate) fn spawn_task(&self, fut: impl std::future::Future<Output = ()> + 'static) {
        self.spawn_task_handle(fut).detach();
    }

    /// Like `spawn_task`, returning a handle that cancels the task.
    pub(crate) fn spawn_task_handle(
        &self,
        fut: impl std::future::Future<Output = ()> + 'static,
    ) -> TaskHandle {
        self.tasks.set(self.tasks.get() + 1);
        let guard = TaskCount(self.shared.clone());
        let h = executor::spawn_local(async move {
            let _guard = guard;
            fut.await;
        });
        self.local_woken.set(true);
        h
    }

    // ---- dispatcher ------------------------------------------------------------------------

    /// Runs the ready actors in rounds: a round gives one turn to each actor that was ready when
    /// it began; actors that become ready during it, and those re-queued with more to do, wait
    /// for the next round. Between rounds, the pass ends as soon as anything waits outside the
    /// run queue (inbound rings, injector, timers, woken tasks), and after `MAX_TURNS_PER_PASS`
    /// turns. So a message from anywhere waits at most one turn of each ready actor, however
    /// deep one actor's backlog is, while same-shard traffic does not pay a pass per hop.
    fn run_ready(&self) -> usize {
        let budget = self.shared.cfg.throughput;
        let mut ran = 0;
        // Turns left in the current round: the actors that were ready when it began.
        let mut round = self.run_queue.borrow().len();
        while ran < MAX_TURNS_PER_PASS {
            if round == 0 {
                // Another round in this pass only when actors are ready and nothing waits
                // outside the run queue (a few loads, far cheaper than a pass). An empty run
                // queue ends the pass before those loads: an idle pass looks at the rings once.
                round = self.run_queue.borrow().len();
                if round == 0 || self.outside_waiting() {
                    break;
                }
            }
            round -= 1;
            let next = self.run_queue.borrow_mut().pop_front();
            let Some(id) = next else { break };
            let Some(cell) = self.cell(id) else { continue };
            // SAFETY: live cell owned by this thread's slab; it is finalized (freed) only below,
            // after the last use of this reference.
            let cell = unsafe { &*cell };
            ran += 1;
            // One turn in `TIMED_TURN_EVERY` is timed: a clock read costs ~25 ns, more than a
            // same-shard message, so only a sample of turns pays for it.
            let left = self.untimed.get();
            let outcome = if left == 0 {
                self.untimed.set(TIMED_TURN_EVERY);
                self.timed_turn(cell, budget)
            } else {
                self.untimed.set(left - 1);
                cell.run(self, budget)
            };
            match outcome {
                Outcome::Idle => {}
                Outcome::More => self.run_queue.borrow_mut().push_back(id),
                Outcome::Finalize => self.finalize(id),
            }
            if !self.dirty.borrow().is_empty() {
                self.flush_outbound();
            }
        }
        if ran > 0 {
            let st = &self.mine().stats;
            st.run_queue.store(self.run_queue.borrow().len() as u64, Ordering::Relaxed);
            st.processed.store(self.processed.get(), Ordering::Relaxed);
        }
        ran
    }

    /// Whether anything but the run queue needs the dispatcher: an inbound ring or the injector
    /// has messages, a message was deferred, a local task was woken, or a timer is due. A timer
    /// that is pending but not due does not end the pass: with one pending (an ask's timeout,
    /// a passivation check, a scheduled message: a service nearly always has one), each
    /// same-shard hop would otherwise pay a whole pass, where one clock read per round tells.
    #[inline(always)]
    fn outside_waiting(&self) -> bool {
        self.mine().injector.has_pending()
            || self.lanes_due()
            || self.local_woken.get()
            || self.inbound.borrow().iter().any(|c| c.has_next())
            || !self.deferred.borrow().is_empty()
            || self.timer_due()
    }

    /// Whether a timer is due now (a clock read, only while one is pending).
    #[inline(always)]
    fn timer_due(&self) -> bool {
        self.timers.borrow().maybe_due(Instant::now)
    }

    /// Runs one turn of `cell` and records its time per message.
    #[cold]
    #[inline(never)]
    pub(crate) fn timed_turn(&self, cell: &dyn ErasedCell, budget: usize) -> Outcome {
        let before = self.processed_count();
        let t0 = Instant::now();
        self.clock.set(t0);
        let outcome = cell.run(self, budget);
        let n = self.processed_count() - before;
        if n > 0 && !matches!(outcome, Outcome::Finalize) {
            cell.record_turn_time(t0.elapsed() / n as u32);
        }
        outcome
    }

    fn has_local_work(&self) -> bool {
        !self.run_queue.borrow().is_empty() || !self.dirty.borrow().is_empty()
    }

    fn begin_shutdown(&self) {
        if self.shutting_down.replace(true) {
            return;
        }
        let ids: Vec<ActorId> = self
            .slab
            .borrow()
            .iter()
            .enumerate()
            .filter(|(_, e)| e.cell.is_some())
            .map(|(slot, e)| ActorId::new(self.idx, slot as u32, e.gen))
            .collect();
        for id in ids {
            self.deliver_system(id, SystemMsg::Stop(None));
        }
        self.maybe_quiesce();
    }

    fn maybe_quiesce(&self) {
        // The shard is the counter's only writer, so its own read is exact.
        let actors = self.mine().stats.actors.load(Ordering::Relaxed);
        if self.shutting_down.get() && actors == 0 && !self.quiesced.replace(true) {
            self.shared.shard_quiesced();
        }
    }

    /// The birth tick of an actor spawned now, from the clock the shard last read (read anew
    /// once every `SPAWNS_PER_CLOCK_READ` spawns, so a storm of spawns pays no clock per actor).
    pub(crate) fn birth_tick(&self) -> u32 {
        let n = self.spawns_since_clock.get();
        if n == 0 {
            self.clock.set(Instant::now());
        }
        self.spawns_since_clock.set((n + 1) % SPAWNS_PER_CLOCK_READ);
        ticks(self.clock.get() - self.epoch)
    }

    /// How long the actor `id` has lived (since its spawn; restarts do not reset it), to
    /// within one [`UPTIME_TICK`].
    pub(crate) fn uptime_of(&self, id: ActorId) -> Duration {
        let born = match self.slab.borrow().get(id.slot() as usize) {
            Some(e) if e.gen == id.gen() => e.born,
            _ => return Duration::ZERO,
        };
        UPTIME_TICK * ticks(self.epoch.elapsed()).saturating_sub(born)
    }

    /// This shard's live actors by kind, in no particular order.
    pub(crate) fn kind_metrics(&self) -> Vec<crate::metrics::KindMetrics> {
        let mut by: HashMap<&'static str, crate::metrics::KindMetrics> = HashMap::new();
        // Only reads (no user code runs), so the slab stays borrowed throughout.
        for c in self.slab.borrow().iter().filter_map(|e| e.cell.as_deref()) {
            let k = by
                .entry(c.kind())
                .or_insert_with(|| crate::metrics::KindMetrics { kind: c.kind(), ..Default::default() });
            k.actors += 1;
            k.processed += c.header().processed();
            k.queued += c.mailbox_len() as u64;
        }
        by.into_values().collect()
    }

    /// After the last pass: nothing more is accepted; what is still in flight is dead.
    fn exit(&self) {
        let mut n = 0u64;
        let mut held = std::mem::take(&mut *self.outside.borrow_mut());
        held.extend(self.mine().injector.close());
        for (_, p) in held {
            n += p.messages() as u64;
            drop(p);
        }
        let mut lanes = std::mem::take(&mut *self.lanes.borrow_mut());
        lanes.extend(self.mine().lanes.close());
        for mut l in lanes {
            n += l.close(drop) as u64;
        }
        for c in self.inbound.borrow_mut().iter_mut() {
            while let Some(p) = c.pop() {
                n += p.messages() as u64;
                drop(p);
            }
            c.release();
        }
        let mut pending: Vec<Packet> = self.pending.borrow_mut().drain().flat_map(|(_, v)| v).collect();
        pending.extend(self.deferred.borrow_mut().drain(..));
        for p in pending {
            let (ty, k) = (p.type_name(), p.messages() as u64);
            drop(p);
            self.dead_letters(DeadLetterReason::RuntimeClosed, k, None, ty);
        }
        self.dead_letters(DeadLetterReason::RuntimeClosed, n, None, "(in flight at shutdown)");
        // Taken out before dropping: drops may run user code that reaches back into the shard.
        let slab = std::mem::take(&mut *self.slab.borrow_mut());
        drop(slab);
        let timers = std::mem::take(&mut *self.timers.borrow_mut());
        drop(timers);
    }
}
