//! Sending from a thread that is not one of this runtime's shards: through the thread's own
//! lane into the target shard (`crate::lane`), kept in a thread-local table, one lane per
//! runtime and shard the thread sends to.

use super::Shared;
use crate::lane::{lane, Closed, LaneTx};
use crate::metrics::DeadLetterReason;
use crate::packet::{Deliver, Packet};
use std::cell::RefCell;
use std::sync::Weak;

/// How long a thread that lets go of a lane waits for the shard's last drain of it.
const CLOSE_PATIENCE: std::time::Duration = std::time::Duration::from_millis(100);

/// One lane of this thread.
struct Entry {
    rt: Weak<Shared>,
    shard: usize,
    lane: LaneTx,
}

impl Drop for Entry {
    fn drop(&mut self) {
        // A shard that closed the lane is in its last drain, which does not block: wait for it
        // (bounded, in case a message's drop panicked there), so what this thread sent after
        // that drain is counted and nothing is counted twice.
        let start = std::time::Instant::now();
        while self.lane.is_closed() && !self.lane.is_dead() && start.elapsed() < CLOSE_PATIENCE {
            std::thread::yield_now();
        }
        if self.lane.is_dead() {
            // Sent after the shard's last drain: never delivered, dropped and counted here once
            // the shard lets go of its end (right after that drain).
            let n = loop {
                match self.lane.take_undelivered() {
                    Some(n) => break n as u64,
                    None if start.elapsed() < CLOSE_PATIENCE => std::thread::yield_now(),
                    None => break 0,
                }
            };
            if let (Some(rt), true) = (self.rt.upgrade(), n > 0) {
                rt.off_shard_dead.add(DeadLetterReason::RuntimeClosed, n);
            }
        } else {
            self.lane.leave();
        }
    }
}

thread_local! {
    static LANES: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Where this thread's lane into shard `to` of `sh` is in `lanes`, if it has one.
#[inline(always)]
fn lane_of(lanes: &[Entry], sh: &Shared, to: usize) -> Option<usize> {
    lanes.iter().position(|e| e.shard == to && std::ptr::eq(e.rt.as_ptr(), sh))
}

/// Sends `payload` for `target` to shard `to` of `sh`: written straight into this thread's
/// lane when the lane exists and has room (`LaneTx::push_new`); otherwise as a packet by
/// [`push`] (down the same lane when the ring is full or messages are queued behind it; the
/// first send makes the lane; the injector takes it where the thread-local is unavailable).
///
/// Inlined into every send from outside the runtime, so it holds only the common case: what
/// it hands back on the way is the payload itself, and everything else is out of line.
#[inline(always)]
pub(super) fn push_new<P: Deliver>(sh: &Shared, to: usize, target: u64, payload: P) -> Result<(), Packet> {
    let mut payload = Some(payload);
    let sent = LANES.try_with(|lanes| {
        let Ok(mut lanes) = lanes.try_borrow_mut() else { return false };
        let Some(i) = lane_of(&lanes, sh, to) else { return false };
        let stamp = sh.shards[to].lanes.stamp();
        match lanes[i].lane.push_new(stamp, target, payload.take().expect("not sent yet")) {
            Ok(()) => true,
            Err(back) => {
                payload = Some(back);
                false
            }
        }
    });
    if sent == Ok(true) {
        return Ok(());
    }
    push_packet_new(sh, to, target, payload.take().expect("not sent yet"))
}

/// [`push_new`]'s other cases: the payload goes as a packet.
#[cold]
#[inline(never)]
fn push_packet_new<P: Deliver>(sh: &Shared, to: usize, target: u64, payload: P) -> Result<(), Packet> {
    push(sh, to, Packet::new(target, payload))
}

/// Sends `p`, stamped `stamp`, down lane `i` of `lanes`; gives it back when the shard has
/// stopped, and lets go of a lane whose shard drained it for the last time.
fn push_packet(lanes: &mut Vec<Entry>, i: usize, stamp: u64, p: Packet) -> Result<(), Packet> {
    match lanes[i].lane.push(stamp, p) {
        Ok(()) => Ok(()),
        Err(Closed(back)) => {
            if lanes[i].lane.is_dead() {
                lanes.swap_remove(i);
            }
            Err(back)
        }
    }
}

/// Sends `p` to shard `to` of `sh` down this thread's lane (made on first use); gives it back
/// when the shard has stopped. Where the thread-local is gone (the thread is exiting) or in use
/// (a message's drop sending again), the shard's injector takes it instead.
pub(super) fn push(sh: &Shared, to: usize, p: Packet) -> Result<(), Packet> {
    let mut p = Some(p);
    let sent = LANES.try_with(|lanes| {
        let mut lanes = lanes.try_borrow_mut().ok()?;
        let i = match lane_of(&lanes, sh, to) {
            Some(i) => i,
            None => {
                // Lanes of runtimes that are gone are dropped while we are here.
                lanes.retain(|e| e.rt.strong_count() > 0);
                let (tx, rx) = lane();
                if !sh.shards[to].lanes.register(rx) {
                    return Some(Err(p.take().expect("not sent yet")));
                }
                lanes.push(Entry { rt: sh.me.clone(), shard: to, lane: tx });
                lanes.len() - 1
            }
        };
        let stamp = sh.shards[to].lanes.stamp();
        Some(push_packet(&mut lanes, i, stamp, p.take().expect("not sent yet")))
    });
    match sent {
        Ok(Some(r)) => r,
        _ => {
            let stamp = sh.shards[to].lanes.fresh_stamp();
            sh.shards[to].injector.push(stamp, p.take().expect("not sent yet"))
        }
    }
}
