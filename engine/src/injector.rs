//! The queue into a shard from threads that are not shards (and from other runtimes).
//!
//! These senders are the slow path, so a short lock is enough: producers append under a
//! `parking_lot` mutex and raise `pending`; the shard swaps the whole batch out under the lock
//! only when `pending` is set. After the shard exits, the queue is closed and pushes fail,
//! returning the packet.

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
    items: Vec<Packet>,
    closed: bool,
}

impl Injector {
    pub(crate) fn push(&self, p: Packet) -> Result<(), Packet> {
        let mut q = self.queue.lock();
        if q.closed {
            return Err(p);
        }
        q.items.push(p);
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

    /// Moves everything queued into `out` (which should be empty; its capacity is reused).
    pub(crate) fn take_into(&self, out: &mut Vec<Packet>) {
        let mut q = self.queue.lock();
        std::mem::swap(&mut q.items, out);
        self.pending.store(false, Ordering::Relaxed);
    }

    /// Refuses all later pushes and hands back what is still queued.
    pub(crate) fn close(&self) -> Vec<Packet> {
        let mut q = self.queue.lock();
        q.closed = true;
        self.pending.store(false, Ordering::Relaxed);
        std::mem::take(&mut q.items)
    }

    pub(crate) fn depth(&self) -> usize {
        self.queue.lock().items.len()
    }
}
