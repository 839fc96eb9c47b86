//! Counters: shard-local plain integers (single writer, relaxed), gathered on demand.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Declares `DeadLetterReason` and its nested `RemoteReason`, their number and
/// `DeadLetterReason::ALL` from one list, so that they cannot drift apart.
macro_rules! dead_letter_reasons {
    (
        local { $($(#[doc = $doc:expr])* $name:ident,)+ }
        remote { $($(#[doc = $rdoc:expr])* $rname:ident,)+ }
    ) => {
        /// Why a message could not be delivered.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum DeadLetterReason {
            $($(#[doc = $doc])* $name,)+
            /// Remoting: what another node sent that could not be delivered here, or what could
            /// not reach another node.
            Remote(RemoteReason),
        }

        /// Why a message from or to another node could not be delivered
        /// ([`DeadLetterReason::Remote`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum RemoteReason {
            $($(#[doc = $rdoc])* $rname,)+
        }

        /// The local reasons' positions.
        #[allow(dead_code)]
        enum LocalIndex {
            $($name,)+
        }

        /// Number of local reasons.
        const LOCAL: usize = [$(stringify!($name)),+].len();
        /// Number of dead-letter reasons, remote ones included.
        pub(crate) const REASONS: usize = LOCAL + [$(stringify!($rname)),+].len();

        impl DeadLetterReason {
            /// Every reason, in index order (the remote ones last).
            pub const ALL: [DeadLetterReason; REASONS] =
                [$(DeadLetterReason::$name,)+ $(DeadLetterReason::Remote(RemoteReason::$rname),)+];

            $(
                #[doc(hidden)]
                #[allow(non_upper_case_globals)]
                /// The remote reason's former place, kept so that `DeadLetterReason::Malformed`
                /// and its kin still name `DeadLetterReason::Remote(RemoteReason::Malformed)`.
                pub const $rname: DeadLetterReason = DeadLetterReason::Remote(RemoteReason::$rname);
            )+

            /// The reason's name, as it is spelled in the enums (`ActorStopped`, `Malformed`):
            /// a stable label for exported metrics and logs.
            pub const fn name(self) -> &'static str {
                match self {
                    $(DeadLetterReason::$name => stringify!($name),)+
                    DeadLetterReason::Remote(r) => match r {
                        $(RemoteReason::$rname => stringify!($rname),)+
                    },
                }
            }

            pub(crate) fn index(self) -> usize {
                match self {
                    $(DeadLetterReason::$name => LocalIndex::$name as usize,)+
                    DeadLetterReason::Remote(r) => LOCAL + r as usize,
                }
            }
        }
    };
}

dead_letter_reasons! {
    local {
        /// The target actor had stopped (or was stopping), or it stopped with the message queued.
        ActorStopped,
        /// A reply arrived after its asker gave up.
        LateReply,
        /// An ask timed out (the request counts as undelivered in time).
        AskTimeout,
        /// The runtime shut down with the message still in flight.
        RuntimeClosed,
        /// The message's handler failed (error or panic) and the supervisor did not resume.
        HandlerFailed,
        /// Sent through an untyped address ([`AnyRef`](crate::AnyRef)) to an actor of another
        /// message type.
        TypeMismatch,
        /// A bounded mailbox was full: the message was dropped by its overflow policy (the newest
        /// or the oldest), or rejected where no sender could take it back.
        MailboxFull,
        /// The target actor's [`Lease`](crate::Lease) no longer held (for a cluster's named actor:
        /// its member was fenced): the actor stopped without handling it.
        LeaseLost,
        /// The actor received it and said it does not handle it ([`Ctx::unhandled`](crate::Ctx::unhandled)).
        Unhandled,
    }
    remote {
        /// From another node, for an actor this node does not know (never exposed, or gone).
        UnknownTarget,
        /// From another node, of a manifest no codec here accepts (or accepts only as an ask
        /// where it came as a tell).
        UnknownManifest,
        /// From another node, a frame or payload that did not decode.
        Malformed,
        /// For another node that could not be reached, or lost with its connection.
        Unreachable,
    }
}

/// Adds to a counter that only one thread writes (no read-modify-write instruction needed).
#[inline]
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// Subtracts from a counter that only one thread writes.
#[inline]
pub(crate) fn unbump(c: &AtomicU64, n: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_sub(n), Ordering::Relaxed);
}

/// Counters of one shard, written only by its thread.
#[derive(Default)]
pub(crate) struct ShardStats {
    pub(crate) processed: AtomicU64,
    pub(crate) wakes: AtomicU64,
    pub(crate) yields_to_waiters: AtomicU64,
    pub(crate) actors: AtomicU64,
    pub(crate) run_queue: AtomicU64,
    /// Nanoseconds spent with nothing to do (spinning idle or parked).
    pub(crate) idle_nanos: AtomicU64,
    pub(crate) dead: [AtomicU64; REASONS],
}

/// Counters for dead letters seen off any shard thread (plain threads), written by many.
#[derive(Default)]
pub(crate) struct SharedDeadLetters(pub(crate) [AtomicU64; REASONS]);

impl SharedDeadLetters {
    pub(crate) fn add(&self, r: DeadLetterReason, n: u64) {
        self.0[r.index()].fetch_add(n, Ordering::Relaxed);
    }
}

/// A late reply sent from a thread that belongs to no runtime cannot be attributed to one; it
/// is counted here. Actors reply from their shard, where the count is attributed normally.
static UNATTRIBUTED_LATE_REPLIES: AtomicU64 = AtomicU64::new(0);

pub(crate) fn count_unattributed_late_reply() {
    UNATTRIBUTED_LATE_REPLIES.fetch_add(1, Ordering::Relaxed);
}

pub(crate) fn unattributed_late_replies_count() -> u64 {
    UNATTRIBUTED_LATE_REPLIES.load(Ordering::Relaxed)
}

/// Moved to [`integration::unattributed_late_replies`](crate::integration::unattributed_late_replies).
#[doc(hidden)]
#[deprecated(note = "an integration hook: use `corelane::integration::unattributed_late_replies`")]
pub fn unattributed_late_replies() -> u64 {
    unattributed_late_replies_count()
}

/// A snapshot of one shard.
///
/// Each shard publishes its figures at the end of each pass of its dispatcher, not per
/// message: a snapshot taken right after an answer came back may not count the message that
/// was answered yet (the answer leaves during the turn, the count after it). An actor's own
/// figures (`ActorRef::metrics`) are read on its shard and are exact.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ShardMetrics {
    /// User messages handled.
    pub processed: u64,
    /// Times the shard thread woke from parking.
    pub wakes: u64,
    /// Times the shard gave up its CPU to a thread on that same CPU waiting for its answer (a
    /// blocking ask). Growing means the scheduler runs a caller of the runtime on this shard's
    /// core, so each such answer costs two context switches: give that thread a core of its
    /// own, or ask from an actor (see `docs/deployment.md`).
    pub yields_to_waiters: u64,
    /// Times a thread outside the runtime, waiting for an answer while the scheduler ran it on
    /// this shard's pinned core, moved itself to a core its own affinity allows and no shard is
    /// pinned to (it keeps its affinity; see `docs/runtime-semantics.md`, sizing). Growing means
    /// the scheduler keeps putting a caller of the runtime on this core: another process
    /// probably keeps the cores left free busy.
    pub waiters_moved_off: u64,
    /// Live actors.
    pub actors: u64,
    /// Actors waiting in the run queue at the last turn.
    pub run_queue_depth: u64,
    /// Packets waiting in the shard's inbound rings and injector.
    pub inbound_depth: u64,
    /// Share of the runtime's uptime this shard had nothing to do (0.0 to 1.0).
    pub idle_share: f64,
    /// Dead letters counted on this shard, of every reason.
    pub dead_letters: u64,
}

/// A snapshot of one actor, gathered on its shard ([`AnyRef::metrics`](crate::AnyRef::metrics)).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ActorMetrics {
    /// Children that have not yet reported their stop.
    pub children: usize,
    /// Stashed messages.
    pub stash_len: usize,
    /// Restarts so far.
    pub restarts: u32,
    /// Time per message of the last timed turn (its first turn with messages, then one turn in
    /// 256 on each shard);
    /// `None` before the first.
    pub last_processing: Option<Duration>,
    /// User messages handled.
    pub processed: u64,
    /// Messages waiting in the mailbox.
    pub mailbox_len: usize,
    /// Messages addressed to this actor that became dead letters while it lived (the messages
    /// its failing handlers were given, and what its bounded mailbox dropped).
    pub dead_letters: u64,
    /// Whether it is suspended after a failure.
    pub suspended: bool,
    /// How long it has lived: since its spawn, across restarts, to within 1/16 s.
    pub uptime: Duration,
}

/// The live actors of one kind (one actor type) on the whole runtime
/// ([`Handle::kind_metrics`](crate::Handle::kind_metrics)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KindMetrics {
    /// The actor type (`std::any::type_name`).
    pub kind: &'static str,
    /// Live actors of this kind.
    pub actors: u64,
    /// User messages they handled (the live ones: a stopped actor's count goes with it).
    pub processed: u64,
    /// User messages waiting in their mailboxes.
    pub queued: u64,
}

/// A snapshot of the runtime.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RuntimeMetrics {
    /// Live actors on all shards.
    pub actors: u64,
    /// Dead letters of every reason.
    pub dead_letters: u64,
    /// Dead letters by reason.
    pub dead_letters_by_reason: Vec<(DeadLetterReason, u64)>,
    /// Time since the runtime was built.
    pub uptime: Duration,
    /// One entry per shard.
    pub shards: Vec<ShardMetrics>,
}

impl RuntimeMetrics {
    /// Dead letters of one reason.
    pub fn dead_letters_for(&self, r: DeadLetterReason) -> u64 {
        self.dead_letters_by_reason.iter().find(|(k, _)| *k == r).map_or(0, |(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_index_and_remote_reasons_are_nested() {
        let idx: Vec<usize> = DeadLetterReason::ALL.iter().map(|r| r.index()).collect();
        assert_eq!(idx, (0..REASONS).collect::<Vec<_>>(), "ALL is in index order, one index each");
        let remote: Vec<_> =
            DeadLetterReason::ALL.iter().filter(|r| matches!(r, DeadLetterReason::Remote(_))).collect();
        assert_eq!(remote.len(), 4);
        assert!(idx[..LOCAL].iter().all(|&i| i < LOCAL), "the local reasons come first");
        // The former flat names still name the nested reasons, in expressions and in patterns.
        assert_eq!(DeadLetterReason::Malformed, DeadLetterReason::Remote(RemoteReason::Malformed));
        let r = DeadLetterReason::Remote(RemoteReason::Unreachable);
        assert!(matches!(r, DeadLetterReason::Unreachable));
        assert!(!matches!(r, DeadLetterReason::UnknownTarget));
    }
}
