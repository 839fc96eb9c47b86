//! Signals: lifecycle notices delivered to [`Actor::signal`](crate::Actor::signal) through the
//! system lane, ahead of user messages.

use crate::id::ActorId;

/// Why an actor stopped.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// A graceful stop (`stop`, `Ctx::stop`, its parent stopping, or a runtime shutdown).
    Stopped,
    /// Killed: queued messages became dead letters.
    Killed,
    /// Stopped by its supervisor after a failure (a `Stop` directive or the restart limit).
    Failed,
    /// Passivated after its idle timeout.
    Passivated,
    /// It was already gone when the watch arrived (or never existed).
    NotFound,
    /// The node it lived on was lost (remoting: the connection to that node failed).
    NodeDown,
}

/// A notice for an actor, handled before its user messages.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// An actor this one watches has stopped. Delivered once per watch.
    Terminated {
        /// The watched actor.
        id: ActorId,
        /// Why it stopped.
        reason: StopReason,
    },
}
