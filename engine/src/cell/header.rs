//! The untyped part every cell starts with: the actor's id, its gate (life stage and mailbox
//! kind, read by every delivery), its flags, and the system lane.

use super::{Life, SystemMsg};
use crate::id::ActorId;
use std::cell::{Cell, UnsafeCell};
use std::collections::VecDeque;

/// Header flags.
pub(super) const SUSPENDED: u8 = 1;
/// A behavior is on the stack: messages go to it instead of `receive`.
pub(super) const BEHAVING: u8 = 2;
/// Has an idle timeout: each turn records the time.
pub(super) const PASSIVATING: u8 = 4;
/// Stopping, and its children were told to stop.
pub(super) const CHILDREN_STOPPING: u8 = 8;
/// The system lane is not empty.
pub(super) const SYSTEM: u8 = 64;
/// A queued message has a sender (set while the side list exists; cleared between turns), so
/// messages go through the slow path that looks senders up.
pub(super) const SENDERS: u8 = 16;
/// Gate bits: the actor no longer accepts user messages.
pub(super) const CLOSED: u8 = 1;
/// Gate bits: the mailbox is bounded or ordered by priority.
pub(super) const SHAPED: u8 = 2;
/// Gate bits: finalized.
pub(super) const DEAD: u8 = 4;
/// Gate bits: an operation on the user queue is running user code (a priority comparator);
/// messages that arrive meanwhile wait in the shard's deferred queue (see `mailbox::Busy`).
pub(super) const BUSY: u8 = 8;
/// Gate bits: the mailbox keeps its messages in a custom queue (`is_empty` counts them).
pub(super) const CUSTOM: u8 = 16;
/// A priority mailbox: each popped message takes the slow path, which moves the next best one
/// to the front.
pub(super) const PRIORITY: u8 = 32;
/// Each message checks a condition first: the stop deadline (stopping, draining the mailbox
/// until then) or the actor's lease.
pub(super) const CHECKED: u8 = 128;
/// What sends a message down the slow path.
pub(super) const SPECIAL: u8 = BEHAVING | SENDERS | PRIORITY | CHECKED;

/// The untyped part every cell starts with.
pub(crate) struct Header {
    pub(crate) id: ActorId,
    pub(crate) scheduled: Cell<bool>,
    /// The life stage and the mailbox kind in one byte, zero while a user message may take the
    /// fast path: bit `CLOSED` once the actor stops accepting messages (stopping or dead), bit
    /// `DEAD` once it is finalized, bit `SHAPED` for a bounded or priority mailbox, bit `BUSY`
    /// while user code runs inside an operation on the queue. One byte, so the header stays 32
    /// bytes.
    pub(super) gate: Cell<u8>,
    pub(super) flags: Cell<u8>,
    /// `None` until `started` has run; then whether it succeeded.
    pub(super) started: Cell<Option<bool>>,
    /// Per-message handling time of the last timed turn, in nanoseconds (0: none yet).
    pub(super) last_nanos: Cell<u32>,
    pub(super) processed: Cell<u64>,
    /// The system lane, allocated on the first system message (most actors never get one
    /// before they stop). Boxed on purpose: 8 bytes per idle actor instead of 32.
    #[allow(clippy::box_collection)]
    pub(super) system: UnsafeCell<Option<Box<VecDeque<SystemMsg>>>>,
}

impl Header {
    /// User messages this actor handled.
    pub(crate) fn processed(&self) -> u64 {
        self.processed.get()
    }

    pub(super) fn new(id: ActorId) -> Self {
        Self {
            id,
            scheduled: Cell::new(false),
            gate: Cell::new(0),
            flags: Cell::new(0),
            started: Cell::new(None),
            last_nanos: Cell::new(0),
            processed: Cell::new(0),
            system: UnsafeCell::new(None),
        }
    }
    pub(crate) fn life(&self) -> Life {
        let g = self.gate.get();
        if g & DEAD != 0 {
            Life::Dead
        } else if g & CLOSED != 0 {
            Life::Stopping
        } else {
            Life::Running
        }
    }
    pub(super) fn set_life(&self, l: Life) {
        let g = self.gate.get() & (SHAPED | BUSY | CUSTOM);
        self.gate.set(match l {
            Life::Running => g,
            Life::Stopping => g | CLOSED,
            Life::Dead => g | CLOSED | DEAD,
        });
    }
    pub(super) fn set_shaped(&self, on: bool) {
        let g = self.gate.get();
        self.gate.set(if on { g | SHAPED } else { g & !SHAPED });
    }
    /// Whether the mailbox keeps its messages in a custom queue.
    #[inline(always)]
    pub(super) fn custom(&self) -> bool {
        self.gate.get() & CUSTOM != 0
    }
    pub(super) fn set_custom(&self, on: bool) {
        let g = self.gate.get();
        self.gate.set(if on { g | CUSTOM } else { g & !CUSTOM });
    }
    /// Whether the actor still accepts user messages (it has not begun stopping).
    #[inline(always)]
    pub(super) fn accepts(&self) -> bool {
        self.gate.get() & CLOSED == 0
    }
    /// Whether an operation on the user queue is under way (user code runs inside it).
    #[inline(always)]
    pub(crate) fn busy(&self) -> bool {
        self.gate.get() & BUSY != 0
    }
    pub(super) fn set_busy(&self, on: bool) {
        let g = self.gate.get();
        self.gate.set(if on { g | BUSY } else { g & !BUSY });
    }
    /// Whether a user message may take the fast path (see `gate`).
    #[inline(always)]
    pub(super) fn open(&self) -> bool {
        self.gate.get() == 0
    }
    pub(super) fn flag(&self, f: u8) -> bool {
        self.flags.get() & f != 0
    }
    pub(super) fn set_flag(&self, f: u8, on: bool) {
        let v = self.flags.get();
        self.flags.set(if on { v | f } else { v & !f });
    }
    pub(crate) fn push_system(&self, m: SystemMsg) {
        // SAFETY: owner-thread only, and no reference into the lane outlives a single call.
        let lane = unsafe { (*self.system.get()).get_or_insert_with(Default::default) };
        // Most actors ever get one system message (their stop, a watch): room for one, not the
        // four a `VecDeque`'s first growth makes.
        if lane.capacity() == 0 {
            lane.reserve_exact(1);
        }
        lane.push_back(m);
        self.set_flag(SYSTEM, true);
    }
    pub(super) fn pop_system(&self) -> Option<SystemMsg> {
        // SAFETY: as in `push_system`.
        let lane = unsafe { (*self.system.get()).as_mut()? };
        let m = lane.pop_front();
        if lane.is_empty() {
            self.set_flag(SYSTEM, false);
        }
        m
    }
    /// Whether the system lane has messages: one flag, checked after every user message.
    #[inline(always)]
    pub(super) fn has_system(&self) -> bool {
        self.flag(SYSTEM)
    }
}
