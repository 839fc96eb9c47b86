//! Configuring a runtime and starting its shards.

use super::*;

/// Configures a [`Runtime`]. Start from [`Runtime::builder`].
pub struct Builder {
    /// `None`: the default sizing ([`default_sizing`]).
    shards: Option<Shards>,
    /// `None`: pinned when sized by default, unpinned when the shards were given.
    pin: Option<bool>,
    idle: Idle,
    executor: Executor,
    throughput: usize,
    stop_timeout: Duration,
    ask_timeout: Duration,
    ring_capacity: usize,
    io_memory: usize,
    name: String,
    supervisor: Supervisor,
    passivate_after: Option<Duration>,
    shutdown_tasks: Vec<ShutdownTask>,
    /// A placement variable (`CORELANE_CORES`, `CORELANE_SHARDS`) that could not be used, unless
    /// `shards` was called since.
    shards_env_error: Option<BuildError>,
    /// `CORELANE_IDLE` could not be used, unless `idle` was called since.
    idle_env_error: Option<BuildError>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("shards", &self.shards)
            .field("pin", &self.pin)
            .field("idle", &self.idle)
            .field("executor", &self.executor)
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
        let (shards, shards_env_error) = match shards_from_env() {
            Ok(s) => (s, None),
            Err(e) => (None, Some(e)),
        };
        let (idle, idle_env_error) = match idle_from_env() {
            Ok(i) => (i, None),
            Err(e) => (None, Some(e)),
        };
        Self {
            shards,
            pin: None,
            idle: idle.unwrap_or(Idle::SpinThenPark(Duration::from_micros(50))),
            executor: executor_from_env(),
            throughput: 64,
            stop_timeout: Duration::from_secs(5),
            ask_timeout: Duration::from_secs(5),
            ring_capacity: 1024,
            io_memory: 512 << 10,
            name: "corelane".into(),
            supervisor: Supervisor::default(),
            passivate_after: None,
            shutdown_tasks: Vec::new(),
            shards_env_error,
            idle_env_error,
        }
    }
}

/// Placement from the environment, so operators move a service without a rebuild:
/// `CORELANE_CORES` (a CPU list, `2-5` or `2,3,6`: one pinned shard per core) or else
/// `CORELANE_SHARDS` (a count). Defaults: the builder's own calls win.
fn shards_from_env() -> Result<Option<Shards>, BuildError> {
    let bad =
        |var, value: String, reason: &str| BuildError::Environment { var, value, reason: reason.into() };
    if let Ok(v) = std::env::var("CORELANE_CORES") {
        return match crate::host::parse_list(&v) {
            Some(cores) if !cores.is_empty() => Ok(Some(Shards::Cores(cores))),
            _ => Err(bad("CORELANE_CORES", v, "not a CPU list (e.g. 2-5 or 2,3,6)")),
        };
    }
    if let Ok(v) = std::env::var("CORELANE_SHARDS") {
        return match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => Ok(Some(Shards::Count(n))),
            _ => Err(bad("CORELANE_SHARDS", v, "not a shard count (1 or more)")),
        };
    }
    Ok(None)
}

/// `CORELANE_IDLE`: `spin`, `park` or `spin-then-park:DURATION`. A default, as above.
fn idle_from_env() -> Result<Option<Idle>, BuildError> {
    match std::env::var("CORELANE_IDLE") {
        Ok(v) => v.parse().map(Some).map_err(|e: ParseIdleError| BuildError::Environment {
            var: "CORELANE_IDLE",
            value: v,
            reason: e.to_string(),
        }),
        Err(_) => Ok(None),
    }
}

/// `CORELANE_EXECUTOR` (`auto`, `glommio`, `portable`) chooses the default executor, so an
/// operator (or a test run) switches without a rebuild; unset or invalid: `Auto` (an invalid
/// value is said once).
fn executor_from_env() -> Executor {
    match std::env::var("CORELANE_EXECUTOR") {
        Ok(v) => v.parse().unwrap_or_else(|e: String| {
            tracing::warn!(error = %e, "CORELANE_EXECUTOR ignored");
            Executor::Auto
        }),
        Err(_) => Executor::Auto,
    }
}

impl Builder {
    /// The executor the shards run on (default [`Executor::Auto`], or what the
    /// `CORELANE_EXECUTOR` environment variable says: `auto`, `glommio`, `portable`).
    pub fn executor(mut self, e: Executor) -> Self {
        self.executor = e;
        self
    }

    /// Shard count or explicit cores. Default: one shard per core this process may use, less
    /// one left to the threads that drive the runtime (`main`, I/O, the net thread) and to the
    /// system, each pinned to its core: the last cores of the process's CPU set, within its
    /// CPU quota (cgroup). One core: one unpinned shard. A thread outside the runtime that
    /// shares a core with a busy shard waits for the scheduler at each step; see
    /// `docs/runtime-semantics.md` (sizing).
    ///
    /// The environment gives the default: `CORELANE_CORES` (a CPU list: `Shards::Cores`) or
    /// `CORELANE_SHARDS` (a count), so an application that does not call this lets its
    /// operators place it (docs/deployment.md).
    pub fn shards(mut self, s: Shards) -> Self {
        self.shards = Some(s);
        self.shards_env_error = None;
        self
    }
    /// Pin shard `i` to its core. Default: on for the default sizing and for
    /// [`Shards::Cores`] (cores named to be used), off for [`Shards::Count`]. More shards than
    /// cores requires `false`.
    pub fn pin(mut self, pin: bool) -> Self {
        self.pin = Some(pin);
        self
    }
    /// Idle policy (default `SpinThenPark(50 µs)`, or what `CORELANE_IDLE` says: `spin`,
    /// `park`, `spin-then-park:50us`).
    pub fn idle(mut self, idle: Idle) -> Self {
        self.idle = idle;
        self.idle_env_error = None;
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
    /// `RLIMIT_MEMLOCK`). When the process's limit does not cover the shards' buffers, `build`
    /// raises it where it may (logged at info level with the old and new values), otherwise
    /// shrinks the buffers to fit (a warning), and fails only if even 64 KiB per shard does not
    /// fit.
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
    pub fn build(mut self) -> Result<Runtime, BuildError> {
        if let Some(e) = self.shards_env_error.take().or(self.idle_env_error.take()) {
            return Err(e);
        }
        let named = matches!(self.shards, Some(Shards::Cores(_)));
        let (shards, pin) = match self.shards.clone() {
            Some(s @ Shards::Cores(_)) => (s, self.pin.unwrap_or(true)),
            Some(s) => (s, self.pin.unwrap_or(false)),
            None => {
                let (s, pin) = default_sizing(&usable_cores());
                (s, self.pin.unwrap_or(pin))
            }
        };
        // Named cores must exist, pinned or not: a typo is an error that names it.
        if let Shards::Cores(named) = &shards {
            let available = online_cores();
            if let Some(&core) = named.iter().find(|c| !available.contains(c)) {
                return Err(BuildError::NoSuchCore { core, available });
            }
        }
        let cores: Vec<Option<usize>> = match (&shards, pin) {
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
        // Cores named for a latency deployment: say what in the host works against them.
        if named {
            let pinned: Vec<usize> = cores.iter().flatten().copied().collect();
            for w in crate::host::Topology::read().placement_warnings(&pinned, None) {
                tracing::warn!("placement: {w}");
            }
        }
        // io_uring's buffers count against the locked-memory limit; the portable executor has none.
        let io_memory = match self.executor {
            Executor::Portable => self.io_memory,
            _ => crate::memlock::fit(n, self.io_memory)?,
        };

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
        let shared = Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            shards: (0..n).map(|_| ShardShared::new(matches!(self.idle, Idle::SpinThenPark(_)))).collect(),
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
            pinned: crate::cpu::Pinned::new(&cores),
        });

        let mut rt = Runtime {
            handle: Handle { shared: shared.clone() },
            executor: self.executor,
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
                // After a fallback on the first shard, the others go straight to it.
                if i > 0 { rt.executor } else { self.executor },
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
                    rx.recv().unwrap_or_else(|_| Err(std::io::Error::other("thread exited before starting")))
                }
                Err(e) => Err(e),
            };
            let started = started.map(|e| rt.executor = e);
            if let Err(source) = started {
                failure = Some(BuildError::ShardStart { shard: i, source });
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
/// The cores this process may run on: its CPU set (affinity mask), cut to its CPU quota where
/// a cgroup sets one (`available_parallelism` reads both).
fn usable_cores() -> Vec<usize> {
    let mut set: Vec<usize> =
        core_affinity::get_core_ids().unwrap_or_default().into_iter().map(|c| c.id).collect();
    if set.is_empty() {
        set = online_cores();
    }
    set.sort_unstable();
    let quota = std::thread::available_parallelism().map_or(set.len(), |n| n.get());
    set.truncate(quota.max(1));
    set
}

/// The default sizing over the usable cores: all but the first, pinned; one core: one shard,
/// unpinned.
pub(crate) fn default_sizing(usable: &[usize]) -> (Shards, bool) {
    if usable.len() >= 2 {
        (Shards::Cores(usable[1..].to_vec()), true)
    } else {
        (Shards::Count(1), false)
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_sizing_leaves_the_first_core_to_the_threads_that_drive_the_runtime() {
        assert_eq!(default_sizing(&[0, 1, 2, 3]), (Shards::Cores(vec![1, 2, 3]), true));
        assert_eq!(default_sizing(&[4, 6]), (Shards::Cores(vec![6]), true));
        assert_eq!(default_sizing(&[3]), (Shards::Count(1), false));
        assert_eq!(default_sizing(&[]), (Shards::Count(1), false));
    }

    #[test]
    fn usable_cores_are_within_the_cpu_set_and_quota() {
        let usable = usable_cores();
        assert!(!usable.is_empty());
        assert!(usable.len() <= std::thread::available_parallelism().unwrap().get());
        assert!(usable.iter().all(|c| online_cores().contains(c)));
    }
}
