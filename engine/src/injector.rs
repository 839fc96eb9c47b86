//! The fallback queue into a shard from a thread outside the runtime whose lanes cannot be
//! reached (its thread-locals are being torn down, or in use by a send from a message's drop):
//! producers append stamped messages under a `parking_lot` mutex and raise `pending`; the shard
//! takes the whole batch under the lock only when `pending` is set and merges it with the
//! lanes by stamp (`crate::lane`). After the shard exits, the queue is closed and pushes fail,
//! returning the packet.

use crate::lane::Stamped;
use crate::packet::Packet;
use crate::sync::{AtomicBool, Ordering};
use parking_lot::Mutex;

#[derive(Default)]
pub(crate) struct Injector {
    queue: Mutex<Queue>,
    pending: AtomicBool,
}

#[derive(Default)]
struct Queue {
    items: Vec<Stamped>,
    closed: bool,
}

impl Injector {
    /// Queues `p` with its stamp (see `crate::lane`), or gives it back after the shard exited.
    pub(crate) fn push(&self, stamp: u64, p: Packet) -> Result<(), Packet> {
        let mut q = self.queue.lock();
        if q.closed {
            return Err(p);
        }
        q.items.push((stamp, p));
        // Only the first push of a batch writes the flag (both sides change it under the lock,
        // so this read is exact): a shard polling the flag keeps its cache line shared while a
        // thread streams tells, instead of losing it at every push.
        if !self.pending.load(Ordering::Relaxed) {
            self.pending.store(true, Ordering::Release);
        }
        Ok(())
    }

    #[inline]
    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Moves everything queued onto the end of `out`.
    pub(crate) fn take_into(&self, out: &mut Vec<Stamped>) {
        let mut q = self.queue.lock();
        out.append(&mut q.items);
        self.pending.store(false, Ordering::Relaxed);
    }

    /// Refuses all later pushes and hands back what is still queued.
    pub(crate) fn close(&self) -> Vec<Stamped> {
        let mut q = self.queue.lock();
        q.closed = true;
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut q.items)
    }

    /// The shard exited: later pushes are refused.
    pub(crate) fn is_closed(&self) -> bool {
        self.queue.lock().closed
    }

    pub(crate) fn depth(&self) -> usize {
        self.queue.lock().items.len()
    }
}
