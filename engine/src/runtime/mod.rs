//! Building, running and shutting down a runtime: the shards, their threads and what they
//! share.
//!
//! Submodules: `builder` (configuration and starting the shard threads), `handle` (what any
//! thread uses to reach the runtime).

use crate::actor::ActorError;
use crate::actor_ref::ActorRef;
use crate::cell::ext::Birth;
use crate::error::{BuildError, RegisterError, ShutdownError, SpawnError};
use crate::events::{actor_sink, channel_sink, Event, EventStream, Subscription};
use crate::executor;
use crate::id::{ActorId, MAX_SHARDS};
use crate::mailbox::MailboxKind;
use crate::metrics::{DeadLetterReason, RuntimeMetrics, ShardMetrics, SharedDeadLetters, REASONS};
use crate::packet::{Deliver, Packet};
use crate::registry::Registry;
use crate::ring::{ring, Gauge};
use crate::shard::{with_current, Shard, ShardShared, ShutdownMsg, SpawnMsg, SPAWNS};
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

mod block_on;
mod builder;
mod handle;
mod kinds;
mod outside;
mod stopped;

pub use builder::Builder;
pub use handle::Handle;
pub use kinds::KindsPending;

/// How many shards, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shards {
    /// This many shards; pinned to the first cores the process may use when `pin(true)`.
    Count(usize),
    /// One shard per listed core id, pinned to it unless `pin(false)` (for isolated cores on
    /// bare metal). A core this process may not run on is an error that names it.
    Cores(Vec<usize>),
}

/// Which executor runs the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Executor {
    /// glommio where io_uring is available; the portable executor, with a warning that says
    /// why and how to allow io_uring, where it is refused (the default).
    #[default]
    Auto,
    /// glommio (io_uring), or a build error where it cannot start.
    Glommio,
    /// The portable executor (async-executor's `LocalExecutor` on the shard thread): no
    /// io_uring needed, so it runs under containers' default seccomp profiles.
    Portable,
}

impl std::str::FromStr for Executor {
    type Err = String;
    /// `auto`, `glommio` or `portable`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(Executor::Auto),
            "glommio" => Ok(Executor::Glommio),
            "portable" => Ok(Executor::Portable),
            other => Err(format!("unknown executor {other:?}: auto, glommio or portable")),
        }
    }
}

/// What a shard does when it has nothing to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Idle {
    /// Keep polling: lowest latency, one core fully busy per shard.
    Spin,
    /// Sleep until woken by a sender or a timer.
    Park,
    /// Poll for this long, then sleep.
    SpinThenPark(Duration),
}

/// `spin`, `park`, `spin-then-park:50us` (the form `Idle` parses from, for command lines and
/// environment variables).
impl fmt::Display for Idle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Idle::Spin => f.write_str("spin"),
            Idle::Park => f.write_str("park"),
            Idle::SpinThenPark(d) if d.subsec_nanos() % 1000 == 0 => {
                write!(f, "spin-then-park:{}us", d.as_micros())
            }
            Idle::SpinThenPark(d) => write!(f, "spin-then-park:{}ns", d.as_nanos()),
        }
    }
}

/// An idle policy that does not parse: what was given, and what is expected.
///
/// ```
/// use corelane::Idle;
/// use std::time::Duration;
/// assert_eq!("spin-then-park:50us".parse::<Idle>()?, Idle::SpinThenPark(Duration::from_micros(50)));
/// assert_eq!("park".parse::<Idle>()?.to_string(), "park");
/// assert_eq!(Idle::SpinThenPark(Duration::from_millis(1)).to_string(), "spin-then-park:1000us");
/// assert_eq!(Idle::SpinThenPark(Duration::from_nanos(1500)).to_string(), "spin-then-park:1500ns");
/// assert!("spin-then-park:50".parse::<Idle>().is_err() && "nap".parse::<Idle>().is_err());
/// # Ok::<(), corelane::ParseIdleError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an idle policy: expected spin, park or spin-then-park:DURATION (50us, 1ms, 200ns, 2s)")]
pub struct ParseIdleError(pub String);

impl std::str::FromStr for Idle {
    type Err = ParseIdleError;

    /// `spin`, `park` or `spin-then-park:DURATION` with a unit of ns, us (or µs), ms or s.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseIdleError(s.to_string());
        match s {
            "spin" => Ok(Idle::Spin),
            "park" => Ok(Idle::Park),
            _ => {
                let d = s.strip_prefix("spin-then-park:").ok_or_else(bad)?;
                let split = d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len());
                let (n, unit) = d.split_at(split);
                let n: u64 = n.parse().map_err(|_| bad())?;
                let d = match unit {
                    "ns" => Duration::from_nanos(n),
                    "us" | "µs" => Duration::from_micros(n),
                    "ms" => Duration::from_millis(n),
                    "s" => Duration::from_secs(n),
                    _ => return Err(bad()),
                };
                Ok(Idle::SpinThenPark(d))
            }
        }
    }
}

/// Where a new actor goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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

thread_local! {
    /// While a plain thread runs `Handle::batch`: the runtime (its `Shared`'s address), 0 while
    /// none runs. A `Cell` of a word, so that every send from outside looks at it with one load.
    static DEFERRING: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    /// The shards that the batch in `DEFERRING` published to, woken when it ends.
    static DEFERRED: std::cell::RefCell<Vec<usize>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What every thread of one runtime shares.
///
/// Aligned to 128 bytes so that, inside its `Arc`, it starts on a line of its own: the `Arc`'s
/// counts change with every `ActorRef` and `Pending` made or dropped anywhere (a plain thread
/// that asks writes them twice per ask), while shards read the fields below on every pass; on
/// one line, each of those writes cost the shard a cache miss on its next pass.
#[repr(align(128))]
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
    /// This runtime, for the lanes of threads outside it to find it again.
    me: std::sync::Weak<Shared>,
    gauges: Vec<Vec<Gauge<Packet>>>,
    started: Instant,
    /// The core each shard is pinned to (`None`: unpinned), which blocking waiters step off
    /// (`cpu::step_off`).
    pub(crate) pinned: crate::cpu::Pinned,
}

impl Shared {
    /// Wakes shard `to` if it may be parked (after publishing to it).
    #[inline(always)]
    pub(crate) fn notify(&self, to: usize) {
        if self.notify_mode {
            self.shards[to].parker.notify();
        }
    }

    /// Queues `payload` for `target` on shard `to` from a thread that is not one of our shards.
    /// The packet is built where it travels (`outside::push_new`), so the sender's message is
    /// stored once; it comes back when the shard has stopped.
    #[inline]
    pub(crate) fn inject_new<P: Deliver>(&self, to: usize, target: u64, payload: P) -> Result<(), Packet> {
        outside::push_new(self, to, target, payload)?;
        self.injected(to);
        Ok(())
    }

    /// After a push from outside to shard `to`: wakes the shard, or leaves that to the end of
    /// the batch the thread is in.
    #[inline(always)]
    fn injected(&self, to: usize) {
        if DEFERRING.get() == self as *const Shared as usize {
            DEFERRED.with_borrow_mut(|shards| {
                if !shards.contains(&to) {
                    shards.push(to);
                }
            });
        } else {
            self.notify(to);
        }
    }

    /// Sends `payload` for `target` to shard `to` by the right path for the calling thread: a
    /// thread outside the runtime writes it straight into its lane ([`Shared::inject_new`]).
    /// The packet comes back when the runtime has stopped.
    #[inline]
    pub(crate) fn route<P: Deliver>(
        self: &Arc<Self>,
        to: usize,
        target: u64,
        payload: P,
    ) -> Result<(), Packet> {
        with_current(|cur| match cur {
            Some(s) if s.belongs_to(self) => {
                let p = Packet::new(target, payload);
                if s.idx == to {
                    p.deliver(s);
                } else {
                    s.push_outbound(to, p);
                }
                Ok(())
            }
            _ => self.inject_new(to, target, payload),
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
    /// The executor the shards run on (all the same: a fallback happens on the first).
    executor: Executor,
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

    /// The executor the shards run on: [`Executor::Glommio`] or [`Executor::Portable`] (what
    /// [`Executor::Auto`] chose).
    pub fn executor(&self) -> Executor {
        self.executor
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
            return Err(ShutdownError::CalledFromShard { runtime: Box::new(self) });
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

    /// Tells every shard to stop its actors and exit; from then on, nothing new is accepted.
    fn begin_stop(&mut self) {
        let sh = self.handle.shared.clone();
        self.down = true;
        sh.closing.store(true, Ordering::Release);
        for i in 0..sh.shards.len() {
            let _ = sh.inject_new(i, 0, ShutdownMsg);
            sh.shards[i].parker.notify();
        }
    }

    /// Stops every shard and joins its thread (never from one of them: see `shutdown`).
    fn stop_and_join(&mut self) -> Result<(), ShutdownError> {
        if self.down {
            return Ok(());
        }
        self.begin_stop();
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
        if self.down {
            return;
        }
        if self.on_shard() {
            // A shard cannot join itself (nor run the shutdown tasks, which may wait for it):
            // the shards are told to stop, and their threads end on their own.
            tracing::warn!("runtime dropped on one of its own shards: stopping it without waiting");
            self.begin_stop();
            self.threads.clear();
            return;
        }
        while let Err((task, error)) = self.run_tasks() {
            tracing::error!(%task, %error, "shutdown task failed while dropping the runtime; going on");
            self.tasks.lock().pop_front();
        }
        if let Err(e) = self.stop_and_join() {
            tracing::error!(error = %e, "runtime shutdown on drop");
        }
    }
}
