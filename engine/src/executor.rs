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
