//! Errors of sending, asking, spawning, building and shutting down.
//!
//! Send errors give the message back, so nothing the caller handed over is lost.

use std::fmt;

/// `tell` failed: the runtime has shut down. The message is returned.
#[derive(PartialEq, Eq)]
pub enum SendError<M> {
    /// The runtime no longer accepts messages.
    Closed(M),
}

impl<M> SendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            SendError::Closed(m) => m,
        }
    }
}

/// `try_tell` failed. The message is returned.
#[derive(PartialEq, Eq)]
pub enum TrySendError<M> {
    /// The target actor has stopped (or is stopping and accepts nothing new).
    Stopped(M),
    /// The target's bounded mailbox is full and its policy is `Reject` (known only on the
    /// target's own shard; elsewhere the message becomes a `MailboxFull` dead letter).
    Full(M),
    /// The runtime no longer accepts messages.
    Closed(M),
}

impl<M> TrySendError<M> {
    /// The message that was not sent.
    pub fn into_inner(self) -> M {
        match self {
            TrySendError::Stopped(m) | TrySendError::Full(m) | TrySendError::Closed(m) => m,
        }
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SendError::Closed(..)")
    }
}
impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the runtime has shut down")
    }
}
impl<M> std::error::Error for SendError<M> {}

impl<M> fmt::Debug for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Stopped(_) => f.write_str("TrySendError::Stopped(..)"),
            TrySendError::Full(_) => f.write_str("TrySendError::Full(..)"),
            TrySendError::Closed(_) => f.write_str("TrySendError::Closed(..)"),
        }
    }
}
impl<M> fmt::Display for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Stopped(_) => f.write_str("the target actor has stopped"),
            TrySendError::Full(_) => f.write_str("the target's mailbox is full"),
            TrySendError::Closed(_) => f.write_str("the runtime has shut down"),
        }
    }
}
impl<M> std::error::Error for TrySendError<M> {}

/// Why an `ask` produced no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AskError {
    /// No reply within the timeout (the ask's own, or the runtime's `ask_timeout`, 5 s unless
    /// configured). A reply that comes later is a dead letter.
    #[error("no reply within the ask's timeout (its own, or the runtime's ask_timeout)")]
    Timeout,
    /// The target dropped the reply handle without answering (it stopped, or the message
    /// became a dead letter).
    #[error("the target dropped the request without replying")]
    NoReply,
    /// The runtime has shut down.
    #[error("the runtime has shut down")]
    Closed,
    /// A blocking wait was attempted on a shard thread, where it could deadlock the shard.
    /// Await the answer instead, or use `Ctx::ask`.
    #[error("blocking wait on a shard thread; await it or use Ctx::ask")]
    WouldBlock,
}

/// Why a spawn failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The runtime is shutting down or has shut down (a spawn from outside the actors).
    #[error("the runtime has shut down")]
    Closed,
    /// A child spawn by an actor that is already stopping while the runtime shuts down. (An
    /// actor that has not begun to stop may still spawn children during a shutdown: they are
    /// started and then stopped with it, children first.)
    #[error("the runtime is shutting down and the parent is stopping")]
    ShuttingDown,
    /// The shard index is out of range.
    #[error("no shard {0}")]
    NoSuchShard(usize),
    /// The name asked for (`SpawnOptions::name`) is taken: nothing was spawned.
    #[error("the name {0:?} is taken")]
    NameTaken(String),
    /// The factory panicked while building the actor.
    #[error("the actor factory panicked: {0}")]
    FactoryPanicked(String),
    /// The shard has no free actor slot left (2^26 per shard).
    #[error("shard {0} has no free actor slot")]
    SlotsExhausted(usize),
    /// The mailbox (a priority ordering, a custom queue) is written for another message type
    /// than the actor's.
    #[error("the mailbox holds {mailbox}, but the actor takes {actor}")]
    MailboxType {
        /// The actor's message type.
        actor: &'static str,
        /// The message type the mailbox's ordering or queue is written for.
        mailbox: &'static str,
    },
}

/// Why a runtime could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Zero shards, or more than the id space allows (4096).
    #[error("invalid shard count {0} (1..=4096)")]
    InvalidShardCount(usize),
    /// Pinning was asked for more shards than there are cores, or a named core does not exist.
    #[error("cannot pin {shards} shards: cores available are {available:?}")]
    NotEnoughCores {
        /// Shards asked for.
        shards: usize,
        /// Core ids this process may run on.
        available: Vec<usize>,
    },
    /// A core named in `Shards::Cores` is not one this process may run on.
    #[error("core {core} is not available to this process: cores available are {available:?}")]
    NoSuchCore {
        /// The core named.
        core: usize,
        /// Core ids this process may run on.
        available: Vec<usize>,
    },
    /// Locked memory for the executors' io_uring buffers is too low and could not be raised.
    #[error(
        "RLIMIT_MEMLOCK is {have_kib} KiB but {need_kib} KiB are needed for {shards} shards; \
         raise it (ulimit -l {need_kib}, or LimitMEMLOCK= in a systemd unit) or lower io_memory"
    )]
    MemlockTooLow {
        /// Current soft limit.
        have_kib: u64,
        /// What the shards need.
        need_kib: u64,
        /// Shard count.
        shards: usize,
    },
    /// A shard thread or its executor failed to start.
    #[error("shard {shard} failed to start")]
    ShardStart {
        /// Shard index.
        shard: usize,
        /// The underlying error (the thread's, the pinning's or the executor's).
        #[source]
        source: std::io::Error,
    },
    /// An environment variable that configures the runtime (`CORELANE_CORES`,
    /// `CORELANE_SHARDS`, `CORELANE_IDLE`) holds a value it cannot use.
    #[error("{var}={value:?}: {reason}")]
    Environment {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a shutdown was not clean.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// Shutdown was called from a shard thread, which would join itself. The runtime comes
    /// back, still running: hand it to a thread outside it to shut it down (dropping it on the
    /// shard stops it without waiting).
    #[error("shutdown called from a shard thread of the same runtime")]
    CalledFromShard {
        /// The runtime, still running.
        runtime: Box<crate::Runtime>,
    },
    /// These shard threads panicked.
    #[error("shard threads panicked: {0:?}")]
    ShardPanicked(Vec<usize>),
    /// A coordinated-shutdown task failed: the shutdown halted before any actor stopped.
    #[error("shutdown task {task:?} failed: {error}")]
    TaskFailed {
        /// The task's name.
        task: String,
        /// Its error.
        error: crate::ActorError,
        /// The runtime, still running: call `shutdown` again to resume at the failed task,
        /// or drop it.
        runtime: Box<crate::Runtime>,
    },
}

/// `Ctx::stash` refused a message: the stash is at capacity. The message is returned.
pub struct StashFull<M>(pub M);

impl<M> fmt::Debug for StashFull<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StashFull(..)")
    }
}
impl<M> fmt::Display for StashFull<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the stash is full")
    }
}
impl<M> std::error::Error for StashFull<M> {}

/// Registering a name failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    /// Another live actor already holds this name.
    #[error("the name {0:?} is taken")]
    Taken(String),
    /// The actor is not alive.
    #[error("the actor has stopped")]
    Stopped,
}
