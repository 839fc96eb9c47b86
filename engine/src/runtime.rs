//! Building, running and shutting down a runtime: the shards, their threads and what they
//! share.

use crate::actor::ActorError;
use crate::actor_ref::ActorRef;
use crate::cell::ext::Birth;
use crate::error::{BuildError, RegisterError, ShutdownError, SpawnError};
use crate::events::{actor_sink, channel_sink, Event, EventStream, Subscription};
use crate::executor;
use crate::id::{ActorId, MAX_SHARDS};
use crate::mailbox::MailboxKind;
use crate::metrics::{DeadLetterReason, RuntimeMetrics, ShardMetrics, SharedDeadLetters, REASONS};
use crate::packet::Packet;
use crate::registry::Registry;
use crate::ring::{ring, Gauge};
use crate::shard::{with_current, Shard, ShardShared, ShutdownMsg, SpawnMsg};
use crate::spawn_options::{Passivation, SpawnOptions};
use crate::supervision::Supervisor;
use crate::Actor;
use parking_lot::Mutex;
use std::any::TypeId;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How many shards, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shards {
    /// This many shards; pinned to the first cores the process may use when `pin(true)`.
    Count(usize),
    /// One shard per listed core id, pinned to it (for isolated cores on bare metal).
    Cores(Vec<usize>),
}

/// What a shard does when it has nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// Keep polling: lowest latency, one core fully busy per shard.
    Spin,
    /// Sleep until woken by a sender or a timer.
    Park,
    /// Poll for this long, then sleep.
    SpinThenPark(Duration),
}

/// Where a new actor goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On this shard.
    Shard(usize),
    /// The next shard in turn.
    RoundRobin,
    /// The shard with the fewest live actors.
    LeastLoaded,
    /// The calling shard; round-robin when called from outside the runtime.
    Local,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) idle: Idle,
    pub(crate) throughput: usize,
    pub(crate) stop_timeout: Duration,
    pub(crate) ask_timeout: Duration,
    pub(crate) passivate_after: Option<Duration>,
}

/// A coordinated-shutdown task.
type TaskFn = Box<dyn FnMut(&Handle) -> Result<(), ActorError> + Send>;

struct ShutdownTask {
    name: String,
    run: TaskFn,
}

/// Configures a [`Runtime`]. Start from [`Runtime::builder`].
pub struct Builder {
    shards: Shards,
    pin: bool,
    idle: Idle,
    throughput: usize,
    stop_timeout: Duration,
    ask_timeout: Duration,
    ring_capacity: usize,
    io_memory: usize,
    name: String,
    supervisor: Supervisor,
    passivate_after: Option<Duration>,
    shutdown_tasks: Vec<ShutdownTask>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("shards", &self.shards)
            .field("pin", &self.pin)
            .field("idle", &self.idle)
            .field("throughput", &self.throughput)
            .field("stop_timeout", &self.stop_timeout)
            .field("ask_timeout", &self.ask_timeout)
            .field("ring_capacity", &self.ring_capacity)
            .field("io_memory", &self.io_memory)
            .field("name", &self.name)
            .field("supervisor", &self.supervisor)
            .field("passivate_after", &self.passivate_after)
            .field("shutdown_tasks", &self.shutdown_tasks.iter().map(|t| &t.name).collect::<Vec<_>>())
            .finish()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            shards: Shards::Count(std::thread::available_parallelism().map_or(1, |n| n.get())),
            pin: false,
            idle: Idle::SpinThenPark(Duration::from_micros(50)),
            throughput: 64,
            stop_timeout: Duration::from_secs(5),
            ask_timeout: Duration::from_secs(5),
            ring_capacity: 1024,
            io_memory: 512 << 10,
            name: "corelane".into(),
            supervisor: Supervisor::default(),
            passivate_after: None,
            shutdown_tasks: Vec::new(),
        }
    }
}

impl Builder {
    /// Shard count or explicit cores (default: one per available core).
    pub fn shards(mut self, s: Shards) -> Self {
        self.shards = s;
        self
    }
    /// Pin shard `i` to its core (default off). More shards than cores requires `false`.
    pub fn pin(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }
    /// Idle policy (default `SpinThenPark(50 µs)`).
    pub fn idle(mut self, idle: Idle) -> Self {
        self.idle = idle;
        self
    }
    /// Messages one actor may handle per turn before others get theirs (default 64).
    pub fn throughput(mut self, n: usize) -> Self {
        self.throughput = n.max(1);
        self
    }
    /// How long a graceful stop may drain a mailbox before the rest becomes dead letters
    /// (default 5 s).
    pub fn stop_timeout(mut self, d: Duration) -> Self {
        self.stop_timeout = d;
        self
    }
    /// Timeout of an `ask` that sets none (default 5 s).
    pub fn ask_timeout(mut self, d: Duration) -> Self {
        self.ask_timeout = d;
        self
    }
    /// Slots of each shard-to-shard ring (default 1024, 64 bytes each; rounded to a power of
    /// two). A full ring never blocks: packets wait in order in a local overflow queue.
    pub fn ring_capacity(mut self, n: usize) -> Self {
        self.ring_capacity = n;
        self
    }
    /// io_uring buffer memory per shard executor (default 512 KiB; counts against
    /// `RLIMIT_MEMLOCK`).
    pub fn io_memory(mut self, bytes: usize) -> Self {
        self.io_memory = bytes;
        self
    }
    /// Thread name prefix (default `corelane`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// How top-level actors are supervised (default [`Supervisor::default`]: one-for-one,
    /// restart, at most 10 restarts within 10 s). Children are supervised by the strategy
    /// their parent was spawned with, or by `Supervisor::default()` if it set none.
    pub fn supervisor(mut self, s: Supervisor) -> Self {
        self.supervisor = s;
        self
    }
    /// Passivate every actor after this idle time unless its spawn options say otherwise
    /// (default: off).
    pub fn passivate_after(mut self, d: Duration) -> Self {
        self.passivate_after = Some(d);
        self
    }
    /// Adds a task that [`Runtime::shutdown`] runs, in registration order, before any actor is
    /// stopped. A task that fails halts the shutdown: later tasks do not run, the actors keep
    /// running, and the error comes back with the runtime
    /// ([`ShutdownError::TaskFailed`]), so the caller can fix things and call `shutdown`
    /// again, which resumes at the failed task.
    pub fn on_shutdown(
        mut self,
        name: impl Into<String>,
        task: impl FnMut(&Handle) -> Result<(), ActorError> + Send + 'static,
    ) -> Self {
        self.shutdown_tasks.push(ShutdownTask { name: name.into(), run: Box::new(task) });
        self
    }

    /// Starts the shard threads.
    pub fn build(self) -> Result<Runtime, BuildError> {
        let cores: Vec<Option<usize>> = match (&self.shards, self.pin) {
            (Shards::Count(n), false) => vec![None; *n],
            (Shards::Cores(c), false) => vec![None; c.len()],
            (shards, true) => {
                let available = online_cores();
                let wanted: Vec<usize> = match shards {
                    Shards::Count(n) => available.iter().copied().take(*n).collect(),
                    Shards::Cores(c) => c.clone(),
                };
                let n = match shards {
                    Shards::Count(n) => *n,
                    Shards::Cores(c) => c.len(),
                };
                if wanted.len() < n || wanted.iter().any(|c| !available.contains(c)) {
                    return Err(BuildError::NotEnoughCores { shards: n, available });
                }
                wanted.into_iter().map(Some).collect()
            }
        };
        let n = cores.len();
        if n == 0 || n > MAX_SHARDS {
            return Err(BuildError::InvalidShardCount(n));
        }
        let io_memory = crate::memlock::fit(n, self.io_memory)?;

        let mut producers: Vec<Vec<_>> = (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut consumers: Vec<Vec<_>> = (0..n).map(|_| Vec::new()).collect();
        let mut gauges: Vec<Vec<Gauge<Packet>>> = (0..n).map(|_| Vec::new()).collect();
        for (i, row) in producers.iter_mut().enumerate() {
            for (j, slot) in row.iter_mut().enumerate() {
                if i != j {
                    let (p, c) = ring(self.ring_capacity);
                    gauges[j].push(c.gauge());
                    *slot = Some(p);
                    consumers[j].push(c);
                }
            }
        }
        let shared = Arc::new(Shared {
            shards: (0..n).map(|_| ShardShared::new()).collect(),
            cfg: Config {
                idle: self.idle,
                throughput: self.throughput,
                stop_timeout: self.stop_timeout,
                ask_timeout: self.ask_timeout,
                passivate_after: self.passivate_after,
            },
            supervisor: Arc::new(self.supervisor),
            child_supervisor: Arc::new(Supervisor::default()),
            events: EventStream::default(),
            notify_mode: self.idle != Idle::Spin,
            registry: Registry::default(),
            closing: AtomicBool::new(false),
            quiesced: AtomicUsize::new(0),
            rr: AtomicUsize::new(0),
            off_shard_dead: SharedDeadLetters::default(),
            gauges,
            started: Instant::now(),
        });

        let mut rt = Runtime {
            handle: Handle { shared: shared.clone() },
            threads: Vec::new(),
            down: false,
            tasks: Mutex::new(self.shutdown_tasks.into()),
        };
        let mut failure = None;
        for (i, (prods, cons)) in producers.into_iter().zip(consumers).enumerate() {
            let (tx, rx) = mpsc::channel();
            let sh = shared.clone();
            let spawned = executor::spawn_shard_thread(
                format!("{}-{i}", self.name),
                cores[i],
                io_memory,
                tx,
                move || async move {
                    let guard = QuiesceOnPanic(sh.clone());
                    Shard::new(i, sh, prods, cons).run().await;
                    std::mem::forget(guard);
                },
            );
            let started = match spawned {
                Ok(t) => {
                    rt.threads.push(t);
                    rx.recv().unwrap_or_else(|_| Err("thread exited before starting".into()))
                }
                Err(e) => Err(e.to_string()),
            };
            if let Err(reason) = started {
                failure = Some(BuildError::ShardStart { shard: i, reason });
                // Shards that never started count as quiesced so the others can exit.
                for _ in i..n {
                    shared.shard_quiesced();
                }
                break;
            }
        }
        if let Some(e) = failure {
            rt.tasks.lock().clear(); // never started: nothing for the tasks to do
            let _ = rt.stop_and_join();
            return Err(e);
        }
        Ok(rt)
    }
}

/// Core ids of the machine (online CPUs), whatever the calling thread's own affinity is.
fn online_cores() -> Vec<usize> {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    (0..n.max(1) as usize).collect()
}

/// Counts a shard whose thread died as quiesced, so shutdown of the others still completes.
struct QuiesceOnPanic(Arc<Shared>);
impl Drop for QuiesceOnPanic {
    fn drop(&mut self) {
        tracing::error!("a shard thread panicked");
        self.0.shard_quiesced();
    }
}

/// What every thread of one runtime shares.
pub(crate) struct Shared {
    pub(crate) shards: Box<[ShardShared]>,
    pub(crate) cfg: Config,
    /// Whether shards may park, so producers must run the wake protocol.
    pub(crate) notify_mode: bool,
    pub(crate) registry: Registry,
    /// Supervises top-level actors.
    pub(crate) supervisor: Arc<Supervisor>,
    /// Supervises children whose parent set no strategy.
    pub(crate) child_supervisor: Arc<Supervisor>,
    pub(crate) events: EventStream,
    closing: AtomicBool,
    quiesced: AtomicUsize,
    rr: AtomicUsize,
    pub(crate) off_shard_dead: SharedDeadLetters,
    gauges: Vec<Vec<Gauge<Packet>>>,
    started: Instant,
}

impl Shared {
    /// Wakes shard `to` if it may be parked (after publishing to it).
    #[inline]
    pub(crate) fn notify(&self, to: usize) {
        if self.notify_mode {
            self.shards[to].parker.notify();
        }
    }

    /// Queues a packet for shard `to` from a thread that is not one of our shards.
    pub(crate) fn inject(&self, to: usize, p: Packet) -> Result<(), Packet> {
        self.shards[to].injector.push(p)?;
        let deferred = DEFERRED.with(|d| match &mut *d.borrow_mut() {
            Some((rt, shards)) if *rt == self as *const Shared as usize => {
                if !shards.contains(&to) {
                    shards.push(to);
                }
                true
            }
            _ => false,
        });
        if !deferred {
            self.notify(to);
        }
        Ok(())
    }

    /// Sends a packet to shard `to` by the right path for the calling thread.
    pub(crate) fn route(self: &Arc<Self>, to: usize, p: Packet) -> Result<(), Packet> {
        with_current(|cur| match cur {
            Some(s) if s.belongs_to(self) => {
                if s.idx == to {
                    p.deliver(s);
                } else {
                    s.push_outbound(to, p);
                }
                Ok(())
            }
            _ => self.inject(to, p),
        })
    }

    pub(crate) fn shard_quiesced(&self) {
        let n = self.quiesced.fetch_add(1, Ordering::AcqRel) + 1;
        if n >= self.shards.len() {
            for s in self.shards.iter() {
                s.parker.notify();
            }
        }
    }

    /// A quiesced shard got an actor again (a spawn accepted before the shutdown reached it).
    pub(crate) fn shard_unquiesced(&self) {
        self.quiesced.fetch_sub(1, Ordering::AcqRel);
    }

    pub(crate) fn all_quiesced(&self) -> bool {
        self.quiesced.load(Ordering::Acquire) >= self.shards.len()
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Counts a dead letter of type `ty` where it happened: on the calling shard, or in the
    /// shared counters; and publishes it.
    pub(crate) fn dead_letter(self: &Arc<Self>, reason: DeadLetterReason, ty: &'static str) {
        self.dead_letters(reason, ty, 1)
    }

    /// Counts `count` dead letters of type `ty`, as `dead_letter` does.
    pub(crate) fn dead_letters(self: &Arc<Self>, reason: DeadLetterReason, ty: &'static str, count: u64) {
        with_current(|cur| match cur {
            Some(s) if s.belongs_to(self) => s.dead_letters(reason, count, None, ty),
            _ => {
                self.off_shard_dead.add(reason, count);
                self.events.publish(|| Event::Deadletter { target: None, message_type: ty, reason, count });
            }
        })
    }
}

/// A cheap, cloneable handle to a runtime: spawn, look up names, read metrics. Usable from
/// any thread, including from inside actors (`Ctx::runtime`).
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

thread_local! {
    /// While a plain thread runs `Handle::batch`: the runtime (its `Shared`'s address) and the
    /// shards it published to, woken when the batch ends.
    static DEFERRED: std::cell::RefCell<Option<(usize, Vec<usize>)>> = const { std::cell::RefCell::new(None) };
}

impl Handle {
    /// Runs `f`, deferring the wake-ups of its sends from this thread until it returns: each
    /// shard it sent to is woken once, not once per message. For threads that are not shards
    /// and deliver bursts (a network thread handing over what one read brought). On a shard
    /// thread, and nested, it just runs `f` (a shard's sends are batched per turn anyway).
    pub fn batch<R>(&self, f: impl FnOnce() -> R) -> R {
        let me = Arc::as_ptr(&self.shared) as usize;
        let started = DEFERRED.with(|d| {
            let mut d = d.borrow_mut();
            if d.is_some() || with_current(|c| c.is_some()) {
                return false;
            }
            *d = Some((me, Vec::new()));
            true
        });
        if !started {
            return f();
        }
        /// Wakes the shards at the end, also when `f` panics.
        struct Wake<'a>(&'a Shared);
        impl Drop for Wake<'_> {
            fn drop(&mut self) {
                let shards = DEFERRED.with(|d| d.borrow_mut().take()).map(|(_, s)| s).unwrap_or_default();
                for s in shards {
                    self.0.notify(s);
                }
            }
        }
        let _wake = Wake(&self.shared);
        f()
    }

    /// A linked request/answer pair for answers that come from outside an actor's `ask` (a
    /// remote node's reply, a callback): whoever holds the `Reply` answers once; the `Pending`
    /// waits as any ask does (the runtime's `ask_timeout` unless set).
    pub fn request<T: Send + 'static>(&self) -> (crate::Reply<T>, crate::Pending<T>) {
        crate::ask::pair(&self.shared, self.shared.cfg.ask_timeout)
    }

    /// Counts `count` dead letters of type `message_type` that happened outside any actor's
    /// send (remoting: what arrived for nobody, or could not leave), and publishes them.
    pub fn record_dead_letters(&self, reason: DeadLetterReason, message_type: &'static str, count: u64) {
        if count > 0 {
            self.shared.dead_letters(reason, message_type, count);
        }
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shared.shards.len()
    }

    /// Spawns an actor on the next shard in turn. The factory runs on that shard, and again on
    /// every restart.
    pub fn spawn<A, F>(&self, factory: F) -> Result<ActorRef<A::Msg>, SpawnError>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        self.spawn_with(Placement::RoundRobin, factory)
    }

    /// Spawns an actor on shard `shard`.
    pub fn spawn_on<A, F>(&self, shard: usize, factory: F) -> Result<ActorRef<A::Msg>, SpawnError>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        self.spawn_with(Placement::Shard(shard), factory)
    }

    /// Spawns a top-level actor with options (a [`Placement`] converts into them). The id is
    /// known at once; messages sent before the actor is built wait for it, and `started` runs
    /// before any of them.
    pub fn spawn_with<A, F>(
        &self,
        opts: impl Into<SpawnOptions>,
        factory: F,
    ) -> Result<ActorRef<A::Msg>, SpawnError>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        let opts = opts.into();
        self.spawn_inner(opts.placement.unwrap_or(Placement::RoundRobin), &opts, None, factory)
    }

    /// Spawns with `parent` (its id and the strategy it gives children) for a child.
    pub(crate) fn spawn_inner<A, F>(
        &self,
        placement: Placement,
        opts: &SpawnOptions,
        parent: Option<(ActorId, Option<Arc<Supervisor>>)>,
        factory: F,
    ) -> Result<ActorRef<A::Msg>, SpawnError>
    where
        A: Actor,
        F: FnMut() -> A + Send + 'static,
    {
        let sh = &self.shared;
        let passivate = match opts.passivation {
            Passivation::RuntimeDefault => sh.cfg.passivate_after,
            Passivation::After(d) => Some(d),
            Passivation::Never => None,
        };
        if let Some(MailboxKind::Priority(p)) = &opts.mailbox {
            if p.0.msg_type != TypeId::of::<A::Msg>() {
                return Err(SpawnError::MailboxType {
                    actor: std::any::type_name::<A::Msg>(),
                    mailbox: p.0.msg_type_name,
                });
            }
        }
        let is_child = parent.is_some();
        let birth = (parent.is_some()
            || passivate.is_some()
            || opts.supervisor.is_some()
            || opts.stash_capacity.is_some()
            || opts.mailbox.is_some())
        .then(|| {
            let (parent, supervised_by) = parent.map_or((None, None), |(p, s)| (Some(p), s));
            Box::new(Birth {
                parent,
                supervised_by,
                child_supervisor: opts.supervisor.clone(),
                passivate,
                stash_capacity: opts.stash_capacity,
                mailbox: opts.mailbox.clone(),
            })
        });
        // A running actor's child may still be spawned while the runtime shuts down (the parent
        // checked that it is not stopping): it is part of the tree being stopped.
        if sh.is_closing() && !is_child {
            return Err(SpawnError::Closed);
        }
        let n = sh.shards.len();
        let rr = || sh.rr.fetch_add(1, Ordering::Relaxed) % n;
        let shard = match placement {
            Placement::Shard(i) if i < n => i,
            Placement::Shard(i) => return Err(SpawnError::NoSuchShard(i)),
            Placement::RoundRobin => rr(),
            Placement::LeastLoaded => {
                (0..n).min_by_key(|&i| sh.shards[i].stats.actors.load(Ordering::Relaxed)).unwrap_or(0)
            }
            Placement::Local => {
                with_current(|c| c.filter(|s| s.belongs_to(sh)).map(|s| s.idx)).unwrap_or_else(rr)
            }
        };
        let slots = &sh.shards[shard].slots;
        let (slot, gen) = slots.reserve().map_err(|_| SpawnError::SlotsExhausted(shard))?;
        let id = ActorId::new(shard, slot, gen);
        with_current(|cur| match cur {
            Some(s) if s.belongs_to(sh) && s.idx == shard => s.spawn_reserved(id, factory, birth),
            Some(s) if s.belongs_to(sh) => {
                s.push_outbound(shard, Packet::new(id.as_u64(), SpawnMsg(factory, birth)));
                Ok(())
            }
            _ => sh.inject(shard, Packet::new(id.as_u64(), SpawnMsg(factory, birth))).map_err(|_| {
                slots.release(slot, gen);
                SpawnError::Closed
            }),
        })?;
        Ok(ActorRef::new(sh.clone(), id))
    }

    /// Gives `actor` a name, unique in this runtime. The name is dropped when the actor stops.
    pub fn register<M: Send + 'static>(&self, name: &str, actor: &ActorRef<M>) -> Result<(), RegisterError> {
        if !actor.is_alive() {
            return Err(RegisterError::Stopped);
        }
        self.shared.registry.register(name, actor.id(), TypeId::of::<M>())
    }

    /// Removes a name. Returns whether it was registered.
    pub fn unregister(&self, name: &str) -> bool {
        self.shared.registry.unregister(name)
    }

    /// Finds the actor registered as `name`, if its message type is `M`.
    pub fn lookup<M: Send + 'static>(&self, name: &str) -> Option<ActorRef<M>> {
        let (id, ty) = self.shared.registry.lookup(name)?;
        (ty == TypeId::of::<M>()).then(|| ActorRef::new(self.shared.clone(), id))
    }

    /// Counters of the whole runtime and of each shard.
    pub fn metrics(&self) -> RuntimeMetrics {
        let sh = &self.shared;
        let mut by_reason = [0u64; REASONS];
        let uptime = sh.started.elapsed().as_nanos().max(1) as f64;
        let mut m = RuntimeMetrics { uptime: sh.started.elapsed(), ..Default::default() };
        for (i, s) in sh.shards.iter().enumerate() {
            let st = &s.stats;
            for (k, c) in st.dead.iter().enumerate() {
                by_reason[k] += c.load(Ordering::Relaxed);
            }
            let actors = st.actors.load(Ordering::Relaxed);
            let dead_letters = st.dead.iter().map(|c| c.load(Ordering::Relaxed)).sum();
            m.actors += actors;
            m.shards.push(ShardMetrics {
                processed: st.processed.load(Ordering::Relaxed),
                wakes: st.wakes.load(Ordering::Relaxed),
                actors,
                run_queue_depth: st.run_queue.load(Ordering::Relaxed),
                inbound_depth: (sh.gauges[i].iter().map(|g| g.depth()).sum::<usize>() + s.injector.depth())
                    as u64,
                idle_share: (st.idle_nanos.load(Ordering::Relaxed) as f64 / uptime).min(1.0),
                dead_letters,
            });
        }
        for counters in [&sh.off_shard_dead, &sh.events.failed] {
            for (k, c) in counters.0.iter().enumerate() {
                by_reason[k] += c.load(Ordering::Relaxed);
            }
        }
        m.dead_letters = by_reason.iter().sum();
        m.dead_letters_by_reason = DeadLetterReason::ALL.iter().map(|r| (*r, by_reason[r.index()])).collect();
        m
    }

    /// Subscribes actor `to` to the events `filter` accepts. Its message type converts from
    /// [`Event`]. The subscription ends with [`Subscription::unsubscribe`] or when `to` stops.
    pub fn subscribe<M>(
        &self,
        filter: impl Fn(&Event) -> bool + Send + Sync + 'static,
        to: &ActorRef<M>,
    ) -> Subscription
    where
        M: From<Event> + Send + 'static,
    {
        let id = self.shared.events.add(Box::new(filter), actor_sink(to.clone()));
        Subscription::new(id, Arc::downgrade(&self.shared))
    }

    /// Subscribes a channel to the events `filter` accepts. The subscription ends with
    /// [`Subscription::unsubscribe`] or when the receiver is dropped.
    pub fn subscribe_channel(
        &self,
        filter: impl Fn(&Event) -> bool + Send + Sync + 'static,
    ) -> (Subscription, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel();
        let id = self.shared.events.add(Box::new(filter), channel_sink(tx));
        (Subscription::new(id, Arc::downgrade(&self.shared)), rx)
    }

    /// Dead letters so far, of every reason.
    pub fn dead_letters(&self) -> u64 {
        self.metrics().dead_letters
    }
}

/// A running set of shards. Dropping it shuts it down; call [`Runtime::shutdown`] to see errors.
///
/// ```
/// use corelane::{Actor, ActorError, Ctx, Reply, Runtime, Shards, Idle};
/// use std::time::Duration;
///
/// enum Msg { Add(u64), Get(Reply<u64>) }
/// #[derive(Default)]
/// struct Counter(u64);
/// impl Actor for Counter {
///     type Msg = Msg;
///     fn receive(&mut self, _: &mut Ctx<Self>, m: Msg) -> Result<(), ActorError> {
///         match m { Msg::Add(n) => self.0 += n, Msg::Get(r) => r.send(self.0) }
///         Ok(())
///     }
/// }
///
/// let rt = Runtime::builder().shards(Shards::Count(2)).idle(Idle::Park).build()?;
/// let counter = rt.spawn(Counter::default)?;
/// counter.tell(Msg::Add(2))?;
/// let n = counter.ask(Msg::Get).timeout(Duration::from_secs(1)).wait()?;
/// assert_eq!(n, 2);
/// rt.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Runtime {
    handle: Handle,
    threads: Vec<JoinHandle<()>>,
    down: bool,
    /// Coordinated-shutdown tasks not yet run successfully, in order.
    tasks: Mutex<VecDeque<ShutdownTask>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime").field("shards", &self.threads.len()).field("down", &self.down).finish()
    }
}

impl Runtime {
    /// A builder with the defaults.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// A cloneable handle for other threads.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs the coordinated-shutdown tasks in order, then stops every actor (gracefully, each
    /// within the stop timeout, children before parents) and joins every shard thread.
    /// Messages still in flight afterwards are counted as dead letters.
    ///
    /// A failing task halts the shutdown before any actor stops: the error is returned with
    /// the runtime, still running ([`ShutdownError::TaskFailed`]).
    pub fn shutdown(mut self) -> Result<(), ShutdownError> {
        if self.down {
            return Ok(());
        }
        if self.on_shard() {
            return Err(ShutdownError::CalledFromShard);
        }
        if let Err((task, error)) = self.run_tasks() {
            return Err(ShutdownError::TaskFailed { task, error, runtime: Box::new(self) });
        }
        self.stop_and_join()
    }

    fn on_shard(&self) -> bool {
        with_current(|c| c.is_some_and(|s| s.belongs_to(&self.handle.shared)))
    }

    /// Runs the remaining shutdown tasks; stops at the first failure, which stays first.
    fn run_tasks(&mut self) -> Result<(), (String, ActorError)> {
        let mut tasks = self.tasks.lock();
        while let Some(t) = tasks.front_mut() {
            tracing::info!(task = %t.name, "shutdown task");
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (t.run)(&self.handle)))
                .unwrap_or_else(|p| {
                    Err(ActorError::msg(format!("panicked: {}", crate::cell::panic_text(&p))))
                });
            if let Err(e) = r {
                tracing::error!(task = %t.name, error = %e, "shutdown task failed; shutdown halted");
                return Err((t.name.clone(), e));
            }
            tasks.pop_front();
        }
        Ok(())
    }

    fn stop_and_join(&mut self) -> Result<(), ShutdownError> {
        if self.down {
            return Ok(());
        }
        if self.on_shard() {
            return Err(ShutdownError::CalledFromShard);
        }
        let sh = self.handle.shared.clone();
        self.down = true;
        sh.closing.store(true, Ordering::Release);
        for i in 0..sh.shards.len() {
            let _ = sh.inject(i, Packet::new(0, ShutdownMsg));
            sh.shards[i].parker.notify();
        }
        let mut panicked = Vec::new();
        for (i, t) in self.threads.drain(..).enumerate() {
            if t.join().is_err() {
                panicked.push(i);
            }
        }
        if panicked.is_empty() {
            Ok(())
        } else {
            Err(ShutdownError::ShardPanicked(panicked))
        }
    }
}

impl std::ops::Deref for Runtime {
    type Target = Handle;
    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Runtime {
    /// Shuts down like [`Runtime::shutdown`], except that a failing shutdown task cannot halt
    /// it here: the failure is logged and the rest of the shutdown goes on.
    fn drop(&mut self) {
        if !self.down && !self.on_shard() {
            while let Err((task, error)) = self.run_tasks() {
                tracing::error!(%task, %error, "shutdown task failed while dropping the runtime; going on");
                self.tasks.lock().pop_front();
            }
        }
        if let Err(e) = self.stop_and_join() {
            tracing::error!(error = %e, "runtime shutdown on drop");
        }
    }
}
