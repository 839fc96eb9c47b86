//! The one switch between `std` and `loom` synchronization primitives.
//!
//! The lock-free pieces (the SPSC ring, the park/wake protocol, the reply oneshot, the slot
//! table, the injector's flag) take their
//! atomics, `Arc`, `UnsafeCell` and thread parking from here, so `RUSTFLAGS="--cfg corelane_loom"` swaps
//! them all for loom's model-checked versions (`scripts/loom.sh`).

#[cfg(corelane_loom)]
pub(crate) use loom::sync::atomic::fence;
#[cfg(corelane_loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(corelane_loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(corelane_loom)]
pub(crate) use loom::thread::{park, Thread};

#[cfg(not(corelane_loom))]
pub(crate) use std::sync::atomic::fence;
#[cfg(not(corelane_loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(not(corelane_loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(corelane_loom))]
pub(crate) use std::thread::{park, Thread};

/// `std::thread::current`, or loom's under the model checker.
pub(crate) fn current_thread() -> Thread {
    #[cfg(corelane_loom)]
    return loom::thread::current();
    #[cfg(not(corelane_loom))]
    return std::thread::current();
}

/// Parks until unparked or until `timeout` passes. Loom has no timed park: under the model checker
/// every park is untimed, which is stricter (a lost wake-up becomes a reported deadlock).
#[cfg_attr(corelane_loom, allow(unused_variables))]
pub(crate) fn park_timeout(timeout: Option<std::time::Duration>) {
    #[cfg(corelane_loom)]
    park();
    #[cfg(not(corelane_loom))]
    match timeout {
        Some(t) => std::thread::park_timeout(t),
        None => park(),
    }
}

/// An `UnsafeCell` with loom's closure-based API, so one body of code serves both builds.
#[cfg(corelane_loom)]
pub(crate) use loom::cell::UnsafeCell;

/// An `UnsafeCell` with loom's closure-based API, so one body of code serves both builds.
#[cfg(not(corelane_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(corelane_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(v: T) -> Self {
        Self(std::cell::UnsafeCell::new(v))
    }
    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}
