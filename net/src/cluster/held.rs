//! Grain messages held while their partition is not ready here (being handed over, the
//! cluster below its minimum of members, or this member's topology behind the sender's): one
//! queue per partition, delivered in arrival order
//! once it is ready, so a sender's tells and asks keep their order across a handover.
//!
//! Once a partition has a queue, everything for it joins the queue until the queue is empty
//! again (a message that could be served at once must not pass one held before it). Bounded:
//! at most `MAX_HELD` messages across the member, each for at most twice the TTL; past either,
//! a message is refused as not ready (an ask is answered so; a tell is a dead letter).

use super::serve::Refusal;
use super::ClusterInner;
use super::HostRef;
use crate::error::ErrorCode;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// What to do with a held message once its partition is ready (or it expired).
pub(crate) type Deliver = Box<dyn FnOnce(&Arc<ClusterInner>, Result<Arc<dyn HostRef>, Refusal>) + Send>;

/// At most this many messages held on one member.
pub(crate) const MAX_HELD: usize = 10_000;

struct Item {
    /// The sender's epoch (0: from this member).
    epoch: u64,
    until: Instant,
    deliver: Deliver,
}

/// A grain kind and one of its partitions.
type PartitionKey = (Arc<str>, u16);

/// The queues; their total is `Gate::held` (0: the fast path skips the lock).
#[derive(Default)]
pub(crate) struct Held {
    queues: Mutex<HashMap<PartitionKey, VecDeque<Item>>>,
}

impl ClusterInner {
    /// Serves a grain message of `partition` now, or holds it behind earlier ones of its
    /// partition, or holds it because its partition is not ready: `deliver` gets the
    /// partition's host (or the refusal).
    pub(crate) fn serve_or_hold<F>(
        self: &Arc<Self>,
        kind: &str,
        partition: u16,
        sender_epoch: u64,
        deliver: F,
    ) where
        F: FnOnce(&Arc<ClusterInner>, Result<Arc<dyn HostRef>, Refusal>) + Send + 'static,
    {
        if self.gate.held.load(Ordering::Acquire) == 0 {
            match self.target(kind, partition, sender_epoch) {
                Err(r) if r.code == ErrorCode::NotReady => {}
                r => return self.hand_over(deliver, r),
            }
        }
        let p = partition;
        let mut queues = self.held.queues.lock();
        let key = (Arc::<str>::from(kind), p);
        if queues.get(&key).is_none_or(|q| q.is_empty()) {
            match self.target(kind, p, sender_epoch) {
                Err(r) if r.code == ErrorCode::NotReady => {}
                r => {
                    drop(queues);
                    return self.hand_over(deliver, r);
                }
            }
        }
        if self.gate.held.load(Ordering::Acquire) >= MAX_HELD {
            drop(queues);
            let detail = format!("{MAX_HELD} messages are already held for partitions being handed over");
            return self.hand_over(
                deliver,
                Err(Refusal { code: ErrorCode::NotReady, detail, epoch: self.current().epoch }),
            );
        }
        let until = Instant::now() + 2 * self.cfg.ttl;
        queues.entry(key).or_default().push_back(Item {
            epoch: sender_epoch,
            until,
            deliver: Box::new(deliver),
        });
        self.gate.held.fetch_add(1, Ordering::AcqRel);
    }

    /// Delivers, in order, what is held for partitions that are ready now; refuses what waited
    /// too long. Called when a handover completes, when a topology is applied, and
    /// periodically.
    pub(crate) fn release_held(self: &Arc<Self>) {
        if self.gate.held.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut queues = self.held.queues.lock();
        let now = Instant::now();
        queues.retain(|(kind, p), q| {
            while let Some(front) = q.front() {
                let r = self.target(kind, *p, front.epoch);
                if matches!(&r, Err(r) if r.code == ErrorCode::NotReady) && front.until > now {
                    return true;
                }
                let item = q.pop_front().expect("front exists");
                self.gate.held.fetch_sub(1, Ordering::AcqRel);
                self.hand_over(item.deliver, r);
            }
            false
        });
    }

    /// Hands a message its host, or its refusal (counted: the sender is refused, not held).
    fn hand_over<F>(self: &Arc<Self>, deliver: F, r: Result<Arc<dyn HostRef>, Refusal>)
    where
        F: FnOnce(&Arc<ClusterInner>, Result<Arc<dyn HostRef>, Refusal>),
    {
        if r.is_err() {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
        deliver(self, r)
    }

    /// Messages held now.
    pub(crate) fn held(&self) -> usize {
        self.gate.held.load(Ordering::Acquire)
    }
}
