//! Single-value channel behind `ask` replies and stop notifications.
//!
//! # Protocol
//! One state byte of flags, changed only by read-modify-write:
//! - `VALUE`: the sender wrote the value (written before the `fetch_or`, so `Acquire` readers
//!   see it).
//! - `WAITING`: the receiver stored a waiter (written before the `fetch_or`). Once `VALUE` or
//!   `TX_CLOSED` is set the receiver never touches the waiter again, so the side that set one of
//!   those and saw `WAITING` may read the waiter to wake it.
//! - `RX_CLOSED`: the receiver gave up (timeout or drop). A value sent after it is handed back to
//!   the sender, which counts it as a dead letter (a late reply).
//! - `TX_CLOSED`: the sender went away without a value (the reply was dropped).
//! - `TAKEN`: the value was moved out; `Drop` must not drop it again.
//!
//! The waiter type is a parameter so the protocol does not depend on the runtime.

use crate::sync::{AtomicU8, Ordering, UnsafeCell};
use std::mem::MaybeUninit;

const VALUE: u8 = 1;
const WAITING: u8 = 2;
const RX_CLOSED: u8 = 4;
const TX_CLOSED: u8 = 8;
const TAKEN: u8 = 16;

/// What the receiver finds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received<T> {
    /// The value arrived.
    Value(T),
    /// The sender went away without sending.
    SenderGone,
    /// Nothing yet.
    Empty,
}

/// Laid out in this order (`repr(C)`): the state and the value first, next to the counts of
/// the `Arc` that holds them, so that an answer moves one cache line between the two threads.
/// The `Arc` of an answer of up to a word is 64 bytes (`ask::Waiter` is kept to 32), which a
/// size-class allocator such as mimalloc places on one line; elsewhere the state, the value
/// and the counts still share the first 32 bytes. Before, the state sat after the waiter, a
/// line away from the counts: two lines moved per answer.
/// Plain-thread asks, alternated processes: p50 ~615 → ~570 ns (`docs/benchmarks.md`).
#[repr(C)]
pub(crate) struct Oneshot<T, W> {
    state: AtomicU8,
    value: UnsafeCell<MaybeUninit<T>>,
    waiter: UnsafeCell<Option<W>>,
}

// SAFETY: the value moves from the sender's thread to the receiver's (`T: Send`); the waiter is
// written by the receiver and read by the waking side under the flag protocol (`W: Send + Sync`).
unsafe impl<T: Send, W: Send + Sync> Send for Oneshot<T, W> {}
// SAFETY: as above; all shared mutation goes through the state flags.
unsafe impl<T: Send, W: Send + Sync> Sync for Oneshot<T, W> {}

impl<T, W> Oneshot<T, W> {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicU8::new(0),
            value: UnsafeCell::new(MaybeUninit::uninit()),
            waiter: UnsafeCell::new(None),
        }
    }

    /// Stores the value. `Ok(true)`: a waiter is registered and must be woken (see `waiter`).
    /// `Err(v)`: the receiver had given up; the value comes back.
    pub(crate) fn send(&self, v: T) -> Result<bool, T> {
        if self.state.load(Ordering::Acquire) & RX_CLOSED != 0 {
            return Err(v);
        }
        // SAFETY: only the one sender writes the value, once, before setting VALUE; the receiver
        // reads it only after seeing VALUE.
        self.value.with_mut(|p| unsafe { (*p).write(v) });
        let prev = self.state.fetch_or(VALUE, Ordering::AcqRel);
        if prev & RX_CLOSED != 0 {
            // The receiver closed without seeing VALUE and will not read the value: take it back.
            self.state.fetch_or(TAKEN, Ordering::Relaxed);
            // SAFETY: written just above; TAKEN stops Drop from dropping it again.
            return Err(self.value.with(|p| unsafe { (*p).assume_init_read() }));
        }
        Ok(prev & WAITING != 0)
    }

    /// The sender goes away without a value. Returns whether a waiter must be woken.
    pub(crate) fn close_sender(&self) -> bool {
        let prev = self.state.fetch_or(TX_CLOSED, Ordering::AcqRel);
        prev & WAITING != 0 && prev & VALUE == 0
    }

    /// Receiver: takes the value if it arrived.
    pub(crate) fn try_recv(&self) -> Received<T> {
        let s = self.state.load(Ordering::Acquire);
        if s & VALUE != 0 && s & TAKEN == 0 {
            self.state.fetch_or(TAKEN, Ordering::Relaxed);
            // SAFETY: VALUE was set with Release after the write, read here with Acquire; the
            // single receiver takes it once (TAKEN).
            return Received::Value(self.value.with(|p| unsafe { (*p).assume_init_read() }));
        }
        if s & TX_CLOSED != 0 {
            return Received::SenderGone;
        }
        Received::Empty
    }

    /// Receiver: stores `w` to be woken. Returns `false` when a value or close already landed
    /// (call `try_recv` instead of waiting).
    pub(crate) fn register(&self, w: W) -> bool {
        let s = self.state.load(Ordering::Acquire);
        if s & (VALUE | TX_CLOSED) != 0 {
            return false;
        }
        if s & WAITING != 0
            && self.state.compare_exchange(s, s & !WAITING, Ordering::AcqRel, Ordering::Acquire).is_err()
        {
            // Only the sender changes the state meanwhile: a value or a close landed.
            return false;
        }
        // SAFETY: WAITING is clear, so no waking side reads the waiter now.
        self.waiter.with_mut(|p| unsafe { *p = Some(w) });
        let prev = self.state.fetch_or(WAITING, Ordering::AcqRel);
        prev & (VALUE | TX_CLOSED) == 0
    }

    /// Receiver gives up. Returns the value if it landed first.
    pub(crate) fn close_receiver(&self) -> Option<T> {
        let prev = self.state.fetch_or(RX_CLOSED, Ordering::AcqRel);
        if prev & VALUE != 0 && prev & TAKEN == 0 {
            self.state.fetch_or(TAKEN, Ordering::Relaxed);
            // SAFETY: VALUE seen with Acquire; not taken yet, and the receiver is the only taker.
            return Some(self.value.with(|p| unsafe { (*p).assume_init_read() }));
        }
        None
    }

    /// The registered waiter, for the side that set `VALUE`/`TX_CLOSED` and saw `WAITING`.
    ///
    /// # Safety
    /// Call only after `send` returned `Ok(true)` or `close_sender` returned `true`: from then on
    /// the receiver never writes the waiter.
    pub(crate) unsafe fn waiter<R>(&self, f: impl FnOnce(Option<&W>) -> R) -> R {
        // SAFETY: per the contract, no writer exists any more.
        self.waiter.with(|p| f(unsafe { (*p).as_ref() }))
    }

    /// Whether the receiver gave up (a reply now would be late).
    pub(crate) fn is_receiver_closed(&self) -> bool {
        self.state.load(Ordering::Acquire) & RX_CLOSED != 0
    }
}

impl<T, W> Drop for Oneshot<T, W> {
    fn drop(&mut self) {
        let s = self.state.load(Ordering::Acquire);
        if s & VALUE != 0 && s & TAKEN == 0 {
            // SAFETY: sole owner; the value was written and never moved out.
            self.value.with_mut(|p| unsafe { (*p).assume_init_drop() });
        }
    }
}

#[cfg(all(test, not(corelane_loom)))]
mod tests {
    use super::*;

    #[test]
    fn value_then_receive() {
        let o: Oneshot<String, ()> = Oneshot::new();
        assert_eq!(o.try_recv(), Received::Empty);
        assert_eq!(o.send("a".into()), Ok(false));
        assert_eq!(o.try_recv(), Received::Value("a".into()));
    }

    #[test]
    fn late_value_comes_back_to_sender() {
        let o: Oneshot<String, ()> = Oneshot::new();
        assert!(o.register(()));
        assert_eq!(o.close_receiver(), None);
        assert_eq!(o.send("late".into()), Err("late".into()));
    }

    #[test]
    fn close_wins_value_when_value_landed_first() {
        let o: Oneshot<u32, ()> = Oneshot::new();
        assert!(o.register(()));
        assert_eq!(o.send(5), Ok(true));
        assert_eq!(o.close_receiver(), Some(5));
    }

    #[test]
    fn dropped_sender_is_seen() {
        let o: Oneshot<u32, ()> = Oneshot::new();
        assert!(o.register(()));
        assert!(o.close_sender());
        assert_eq!(o.try_recv(), Received::SenderGone);
        assert!(!o.register(()), "nothing to wait for after the sender left");
    }

    #[test]
    fn unread_value_is_dropped_once() {
        let marker = std::sync::Arc::new(());
        let o: Oneshot<std::sync::Arc<()>, ()> = Oneshot::new();
        o.send(marker.clone()).unwrap();
        drop(o);
        assert_eq!(std::sync::Arc::strong_count(&marker), 1);
    }
}

#[cfg(all(test, corelane_loom))]
mod loom_tests {
    use super::*;
    use crate::sync::{Arc, Thread};

    /// A sender races a receiver that registers, waits and may time out: the value is either
    /// received or handed back to the sender, exactly once, and a registered waiter is woken.
    #[test]
    fn loom_oneshot_value_is_received_or_returned_once() {
        loom::model(|| {
            let o: Arc<Oneshot<u32, Thread>> = Arc::new(Oneshot::new());
            let tx = o.clone();
            let t = loom::thread::spawn(move || match tx.send(7) {
                Ok(true) => {
                    // SAFETY: send returned Ok(true).
                    unsafe { tx.waiter(|w| w.unwrap().unpark()) };
                    false
                }
                Ok(false) => false,
                Err(v) => {
                    assert_eq!(v, 7);
                    true
                }
            });
            let mut got = None;
            if o.register(crate::sync::current_thread()) {
                if let Received::Value(v) = o.try_recv() {
                    got = Some(v);
                }
            }
            if got.is_none() {
                got = match o.try_recv() {
                    Received::Value(v) => Some(v),
                    _ => o.close_receiver(),
                };
            }
            let returned = t.join().unwrap();
            assert!(got.is_some() ^ returned, "exactly one side ends up with the value");
        });
    }
}
