//! The one switch between `std` and `loom` synchronization primitives.
//!
//! The lock-free pieces (the SPSC ring, the park/wake protocol, the reply oneshot, the slot
//! table, the injector's flag) take their
//! atomics, `Arc`, `UnsafeCell` and thread parking from here, so `RUSTFLAGS="--cfg loom"` swaps
//! them all for loom's model-checked versions (`scripts/loom.sh`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::fence;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(loom)]
pub(crate) use loom::thread::{park, Thread};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::fence;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::thread::{park, Thread};

/// `std::thread::current`, or loom's under the model checker.
pub(crate) fn current_thread() -> Thread {
    #[cfg(loom)]
    return loom::thread::current();
    #[cfg(not(loom))]
    return std::thread::current();
}

/// Parks until unparked or until `timeout` passes. Loom has no timed park: under the model checker
/// every park is untimed, which is stricter (a lost wake-up becomes a reported deadlock).
#[cfg_attr(loom, allow(unused_variables))]
pub(crate) fn park_timeout(timeout: Option<std::time::Duration>) {
    #[cfg(loom)]
    park();
    #[cfg(not(loom))]
    match timeout {
        Some(t) => std::thread::park_timeout(t),
        None => park(),
    }
}

/// An `UnsafeCell` with loom's closure-based API, so one body of code serves both builds.
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// An `UnsafeCell` with loom's closure-based API, so one body of code serves both builds.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
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
