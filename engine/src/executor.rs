//! The one module that knows the per-core executor (glommio). Swapping executors means
//! rewriting this file, not the actors.

use std::future::Future;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Starts a shard thread: pins it to `core` if given, builds a glommio `LocalExecutor` with
/// `io_memory` bytes of io_uring buffers, reports success or failure on `ready`, then runs
/// the future that `body` makes until it completes.
pub(crate) fn spawn_shard_thread<F, Fut>(
    name: String,
    core: Option<usize>,
    io_memory: usize,
    ready: mpsc::Sender<Result<(), String>>,
    body: F,
) -> std::io::Result<JoinHandle<()>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    std::thread::Builder::new().name(name).spawn(move || {
        if let Some(c) = core {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: c }) {
                let _ = ready.send(Err(format!("could not pin to core {c}")));
                return;
            }
        }
        request_short_slice();
        let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound).io_memory(io_memory).make();
        match ex {
            Ok(ex) => {
                let _ = ready.send(Ok(()));
                ex.run(body());
            }
            Err(e) => {
                let _ = ready.send(Err(format!("glommio executor: {e}")));
            }
        }
    })
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

/// Asks the kernel for a short scheduler slice for the calling thread. A shard that shares its
/// core with a busy thread of another process is woken by a message while that thread holds
/// the core; with the default slice (3 ms) it waits for the slice to end, with a short one the
/// scheduler lets it in at once (EEVDF: the earlier virtual deadline preempts).
fn request_short_slice() {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: libc::SCHED_OTHER as u32,
        runtime: SHARD_SLICE_NS,
        ..SchedAttr::default()
    };
    // SAFETY: `sched_setattr(0, attr, 0)` reads `attr.size` bytes from a live, initialised
    // `SchedAttr` of exactly that size and changes only the calling thread's scheduling; a
    // kernel that does not know the request returns an error, which leaves everything as it was.
    let _ = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
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
    let mut attr = SchedAttr::default();
    let size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: `sched_getattr(0, attr, size, 0)` writes at most `size` bytes into a live
    // `SchedAttr` of exactly that size, describing the calling thread.
    let got = unsafe { libc::syscall(libc::SYS_sched_getattr, 0, &mut attr as *mut SchedAttr, size, 0) };
    let fair = [libc::SCHED_OTHER as u32, libc::SCHED_BATCH as u32].contains(&attr.policy);
    if got != 0 || !fair || (attr.runtime != 0 && attr.runtime <= SHARD_SLICE_NS) {
        return;
    }
    attr.size = size;
    attr.flags = 0;
    attr.runtime = SHARD_SLICE_NS;
    // SAFETY: as in `request_short_slice`: reads `size` bytes from a live `SchedAttr` and
    // changes only the calling thread's slice (its policy and nice value as they were).
    let _ = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
}

/// Lets the executor's other tasks run once.
pub(crate) async fn yield_now() {
    futures_lite::future::yield_now().await
}

/// Whether the executor wants the current task to yield (its time slice is over).
#[inline]
pub(crate) fn should_yield() -> bool {
    glommio::executor().need_preempt()
}

/// A task on a shard's executor that can be cancelled (dropping the handle lets it run on).
pub(crate) struct TaskHandle(glommio::task::JoinHandle<()>);

impl TaskHandle {
    /// Cancels the task: its future is dropped without being polled again.
    pub(crate) fn cancel(self) {
        self.0.cancel();
    }
}

/// Spawns a task on the current shard's executor.
pub(crate) fn spawn_local(fut: impl Future<Output = ()> + 'static) -> TaskHandle {
    TaskHandle(glommio::spawn_local(fut).detach())
}
