//! The one module that knows the per-core executors: glommio (io_uring; the default on bare
//! metal) and a portable one (async-executor's `LocalExecutor`, driven by the shard thread
//! itself) for where io_uring is refused, as Docker's and containerd's default seccomp
//! profiles refuse it. Swapping executors means rewriting this file, not the actors.
//!
//! What the shards need of an executor is small: run the dispatcher's future on the thread,
//! spawn local (non-`Send`) tasks that can be cancelled, yield, and say when a task-heavy shard
//! should yield. Parking, timers, rings and wake-ups are the engine's own.

use crate::runtime::Executor;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Which executor runs this thread's shard.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Running {
    None,
    Glommio,
    Portable,
}

thread_local! {
    static RUNNING: Cell<Running> = const { Cell::new(Running::None) };
    static PORTABLE: RefCell<Option<Rc<async_executor::LocalExecutor<'static>>>> = const { RefCell::new(None) };
    /// Calls of `should_yield` on a portable shard since it last said yes.
    static SINCE_YIELD: Cell<u32> = const { Cell::new(0) };
}

/// Set by tests: glommio behaves as if io_uring were refused.
static IO_URING_REFUSED: AtomicBool = AtomicBool::new(false);

/// Makes glommio fail to start as it does where io_uring is refused (a test of the fallback).
pub(crate) fn simulate_io_uring_refused(on: bool) {
    IO_URING_REFUSED.store(on, Ordering::SeqCst);
}

/// Says once per process why shards run on the portable executor.
fn warn_fallback(e: &std::io::Error) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            error = %e,
            "io_uring is not available, so shards run on the portable executor (slower wake-ups and \
             no io_uring); to use glommio, allow io_uring_setup, io_uring_enter and \
             io_uring_register (Docker: a seccomp profile that permits them, or \
             --security-opt seccomp=unconfined), or choose Executor::Portable to silence this"
        );
    }
}

/// Starts a shard thread: pins it to `core` if given, builds the executor `choice` says
/// (glommio with `io_memory` bytes of io_uring buffers; `Auto` falls back to the portable one
/// when glommio cannot start), reports which one on `ready` (or why none), then runs the future
/// that `body` makes until it completes.
pub(crate) fn spawn_shard_thread<F, Fut>(
    name: String,
    core: Option<usize>,
    io_memory: usize,
    choice: Executor,
    ready: mpsc::Sender<std::io::Result<Executor>>,
    body: F,
) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    std::thread::Builder::new().name(name).spawn(move || {
        if let Some(c) = core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                let _ = ready.send(Err(std::io::Error::other(format!("could not pin to core {c}"))));
                return;
            }
        }
        request_short_slice();
        let glommio = match choice {
            Executor::Portable => None,
            _ => Some(glommio_executor(io_memory)),
        };
        match (glommio, choice) {
            (Some(Ok(ex)), _) => {
                let _ = ready.send(Ok(Executor::Glommio));
                RUNNING.with(|r| r.set(Running::Glommio));
                ex.run(body());
            }
            (Some(Err(e)), Executor::Glommio) => {
                let _ = ready.send(Err(e));
            }
            (Some(Err(e)), _) => {
                warn_fallback(&e);
                run_portable(ready, body);
            }
            (None, _) => run_portable(ready, body),
        }
        RUNNING.with(|r| r.set(Running::None));
    })
}

fn glommio_executor(io_memory: usize) -> std::io::Result<glommio::LocalExecutor> {
    if IO_URING_REFUSED.load(Ordering::SeqCst) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "glommio executor: io_uring_setup refused (simulated)",
        ));
    }
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).io_memory(io_memory).make().map_err(|e| {
        let e: std::io::Error = e.into();
        std::io::Error::new(e.kind(), format!("glommio executor: {e}"))
    })
}

/// Runs `body` on a portable local executor driven by this thread.
fn run_portable<F, Fut>(ready: mpsc::Sender<std::io::Result<Executor>>, body: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let ex = Rc::new(async_executor::LocalExecutor::new());
    PORTABLE.with(|p| *p.borrow_mut() = Some(ex.clone()));
    RUNNING.with(|r| r.set(Running::Portable));
    let _ = ready.send(Ok(Executor::Portable));
    futures_lite::future::block_on(ex.run(body()));
    // Tasks still alive end here, on their own thread.
    PORTABLE.with(|p| p.borrow_mut().take());
}

/// The scheduler slice a shard thread asks for (Linux 6.12+, EEVDF: a normal thread may choose
/// its slice between 0.1 and 100 ms; older kernels refuse, and nothing changes).
const SHARD_SLICE_NS: u64 = 100_000;

/// `struct sched_attr` as of its first version (48 bytes).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
}

const SCHED_ATTR_SIZE: u32 = std::mem::size_of::<SchedAttr>() as u32;

/// The calling thread's scheduling attributes, where the kernel gives them.
fn sched_of_this_thread() -> Option<SchedAttr> {
    let mut attr = SchedAttr::default();
    // SAFETY: `sched_getattr(0, attr, size, 0)` writes at most `size` bytes into a live
    // `SchedAttr` of exactly that size, describing the calling thread.
    let got =
        unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr as *mut SchedAttr, SCHED_ATTR_SIZE, 0) };
    (got == 0).then_some(attr)
}

/// Sets the calling thread's scheduling attributes (flags none); an error leaves them as they
/// were.
fn set_sched_of_this_thread(mut attr: SchedAttr) {
    attr.size = SCHED_ATTR_SIZE;
    attr.flags = 0;
    // SAFETY: `sched_setattr(0, attr, 0)` reads `attr.size` bytes from a live, initialised
    // `SchedAttr` of exactly that size and changes only the calling thread's scheduling; a
    // kernel that does not know the request returns an error, which leaves everything as it was.
    let _ = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
}

/// Asks the kernel for a short scheduler slice for the calling thread. A shard that shares its
/// core with a busy thread of another process is woken by a message while that thread holds
/// the core; with the default slice (3 ms) it waits for the slice to end, with a short one the
/// scheduler lets it in at once (EEVDF: the earlier virtual deadline preempts).
fn request_short_slice() {
    set_sched_of_this_thread(SchedAttr {
        policy: libc::SCHED_OTHER as u32,
        runtime: SHARD_SLICE_NS,
        ..SchedAttr::default()
    });
}

/// The same short slice for a thread of the user's that is about to sleep until the runtime
/// answers it (a blocking ask), once per thread, keeping its policy and nice value; only a
/// thread under the normal policies (`SCHED_OTHER`, `SCHED_BATCH`) is changed. Woken by the
/// answer on a core another process keeps busy, it runs at once instead of at the end of that
/// process's slice.
pub(crate) fn short_slice_for_waiter() {
    thread_local! {
        static ASKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    if ASKED.with(|a| a.replace(true)) {
        return;
    }
    let Some(attr) = sched_of_this_thread() else { return };
    let fair = [libc::SCHED_OTHER as u32, libc::SCHED_BATCH as u32].contains(&attr.policy);
    if fair && (attr.runtime == 0 || attr.runtime > SHARD_SLICE_NS) {
        set_sched_of_this_thread(SchedAttr { runtime: SHARD_SLICE_NS, ..attr });
    }
}

/// Lets the executor's other tasks run once.
pub(crate) async fn yield_now() {
    futures_lite::future::yield_now().await
}

/// Whether the executor wants the current task to yield (its time slice is over).
/// Whether a shard with live local tasks should let them run now.
#[inline]
pub(crate) fn should_yield() -> bool {
    match RUNNING.with(Cell::get) {
        Running::Glommio => glommio::executor().need_preempt(),
        // Every 16th pass: the portable executor has no time slice of its own to consult.
        _ => SINCE_YIELD.with(|c| {
            let n = c.get() + 1;
            c.set(n % 16);
            n == 16
        }),
    }
}

/// A local task: cancelled by [`TaskHandle::cancel`], left to finish by
/// [`TaskHandle::detach`] (dropping it cancels a portable task).
pub(crate) enum TaskHandle {
    Glommio(glommio::task::JoinHandle<()>),
    Portable(async_executor::Task<()>),
}

impl TaskHandle {
    pub(crate) fn cancel(self) {
        match self {
            TaskHandle::Glommio(h) => h.cancel(),
            TaskHandle::Portable(t) => drop(t),
        }
    }

    pub(crate) fn detach(self) {
        match self {
            TaskHandle::Glommio(_) => {}
            TaskHandle::Portable(t) => t.detach(),
        }
    }
}

/// Spawns a local task on this shard's executor.
pub(crate) fn spawn_local(fut: impl Future<Output = ()> + 'static) -> TaskHandle {
    match RUNNING.with(Cell::get) {
        Running::Portable => PORTABLE.with(|p| {
            let ex = p.borrow().clone().expect("a portable shard has its executor");
            TaskHandle::Portable(ex.spawn(fut))
        }),
        _ => TaskHandle::Glommio(glommio::spawn_local(fut).detach()),
    }
}

#[cfg(all(test, not(corelane_loom)))]
mod tests {
    use super::*;
    use crate::{Actor, ActorError, Ctx, Idle, Reply, Runtime, Shards};
    use std::time::{Duration, Instant};

    const WAIT: Duration = Duration::from_secs(10);

    /// Holds the reply it is asked for until told to answer.
    #[derive(Default)]
    struct Holder(Option<Reply<u32>>);
    enum HolderMsg {
        Hold(Reply<u32>),
        Release,
    }
    impl Actor for Holder {
        type Msg = HolderMsg;
        fn receive(&mut self, _: &mut Ctx<Self>, m: HolderMsg) -> Result<(), ActorError> {
            match m {
                HolderMsg::Hold(r) => self.0 = Some(r),
                HolderMsg::Release => {
                    if let Some(r) = self.0.take() {
                        r.send(7);
                    }
                }
            }
            Ok(())
        }
    }

    #[test]
    fn a_thread_that_sleeps_on_an_answer_asks_for_a_short_slice_and_keeps_its_nice_value() {
        let rt = Runtime::builder()
            .shards(Shards::Count(1))
            .idle(Idle::SpinThenPark(Duration::from_micros(50)))
            .build()
            .expect("runtime builds");
        let holder = rt.spawn(Holder::default).unwrap();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let h = holder.clone();
        let attrs = |a: SchedAttr| (a.policy, a.nice, a.runtime);
        let waiter = std::thread::spawn(move || {
            // SAFETY: `gettid` takes no arguments and touches no memory.
            let tid = unsafe { libc::syscall(libc::SYS_gettid) };
            // SAFETY: `setpriority` takes no pointers; on Linux `who = 0` is the calling thread.
            let niced = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 5) };
            assert_eq!(niced, 0);
            let before = attrs(sched_of_this_thread().expect("sched_getattr"));
            tid_tx.send(tid).unwrap();
            let answer = h.ask(HolderMsg::Hold).timeout(WAIT).wait();
            (before, answer, attrs(sched_of_this_thread().expect("sched_getattr")))
        });
        // Release the answer once the actor holds it and the waiter sleeps (its state in
        // /proc), so that it parked for it.
        let tid = tid_rx.recv_timeout(WAIT).unwrap();
        let stat = format!("/proc/self/task/{tid}/stat");
        let sleeping = || {
            std::fs::read_to_string(&stat).is_ok_and(|s| s.rsplit(')').next().unwrap_or("").starts_with(" S"))
        };
        let held = || holder.metrics().timeout(WAIT).wait().is_ok_and(|m| m.processed >= 1);
        let deadline = Instant::now() + WAIT;
        while !(held() && sleeping()) {
            assert!(Instant::now() < deadline, "the waiter never slept on the answer");
            std::thread::yield_now();
        }
        holder.tell(HolderMsg::Release).unwrap();
        let ((policy, nice, slice), answer, (policy_after, nice_after, slice_after)) = waiter.join().unwrap();
        assert_eq!(answer, Ok(7));
        assert_eq!((policy_after, nice_after), (policy, nice), "policy and nice value kept");
        assert_eq!(nice_after, 5);
        // Kernels before 6.12 (no custom slices) report no slice at all.
        if slice != 0 || slice_after != 0 {
            assert_eq!(slice_after, SHARD_SLICE_NS, "a 100 us slice");
        }
        rt.shutdown().unwrap();
    }
}
