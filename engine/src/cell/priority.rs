//! The queue of a priority mailbox: a binary heap ordered by the user's ordering, then by
//! arrival (a sequence number), so that messages of equal priority come out first in, first
//! out. Push and pop are O(log n) comparisons whatever the priorities.
//!
//! The mailbox keeps the best message outside the heap, at the front of its ordinary queue,
//! so that the turn's loop pops it like any other; this heap holds the rest.

use crate::mailbox::Order;
use std::cmp::Ordering;
use std::sync::Arc;

/// A queued message with its arrival number and sender (0: none).
pub(super) struct Entry<M> {
    pub(super) msg: M,
    pub(super) seq: u64,
    pub(super) sender: u64,
}

pub(super) struct PriorityHeap<M> {
    order: Arc<Order<M>>,
    heap: Vec<Entry<M>>,
    next_seq: u64,
}

impl<M> PriorityHeap<M> {
    pub(super) fn new(order: Arc<Order<M>>) -> Self {
        // Numbers start mid-range, so that unstashed messages can be numbered below them.
        Self { order, heap: Vec::new(), next_seq: 1 << 62 }
    }

    /// Whether `a` has a strictly higher priority than `b`.
    pub(super) fn outranks(&self, a: &M, b: &M) -> bool {
        (self.order)(a, b) == Ordering::Greater
    }

    /// Whether `a` goes before `b`: higher priority, or equal priority and earlier arrival.
    fn before(&self, a: &Entry<M>, b: &Entry<M>) -> bool {
        match (self.order)(&a.msg, &b.msg) {
            Ordering::Greater => true,
            Ordering::Less => false,
            Ordering::Equal => a.seq < b.seq,
        }
    }

    /// Numbers an arriving message.
    pub(super) fn entry(&mut self, msg: M, sender: u64) -> Entry<M> {
        let seq = self.next_seq;
        self.next_seq += 1;
        Entry { msg, seq, sender }
    }

    /// The lowest sequence number in use, minus one (for `first_entry`).
    pub(super) fn lowest_seq(&self) -> u64 {
        self.heap.iter().map(|e| e.seq).min().unwrap_or(self.next_seq).wrapping_sub(1)
    }

    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    pub(super) fn push(&mut self, e: Entry<M>) {
        self.heap.push(e);
        self.sift_up(self.heap.len() - 1);
    }

    /// Moves the entry at `i` up while it goes before its parent.
    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.before(&self.heap[i], &self.heap[parent]) {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    /// Takes the first entry. Bottom-up (Floyd): the entry moved to the root from the bottom
    /// almost always belongs near the bottom again, so the hole is walked down along the better
    /// child to a leaf (one comparison per level, not two), and the entry then rises the step
    /// or two it needs.
    pub(super) fn pop(&mut self) -> Option<Entry<M>> {
        let last = self.heap.len().checked_sub(1)?;
        self.heap.swap(0, last);
        let top = self.heap.pop();
        let n = self.heap.len();
        let mut i = 0;
        loop {
            let l = 2 * i + 1;
            if l >= n {
                break;
            }
            let r = l + 1;
            let c = if r < n && self.before(&self.heap[r], &self.heap[l]) { r } else { l };
            self.heap.swap(i, c);
            i = c;
        }
        self.sift_up(i);
        top
    }
}
