//! Raw hardware baselines, measured in the same process as the engine workloads:
//! - `raw-c2c`: two pinned threads bounce one cache line (an atomic counter): the floor for any
//!   cross-core round trip.
//! - `raw-spsc`: a bare bounded SPSC ring of `u64` between two pinned threads, with cached
//!   indices and batched publication: the floor for cross-core streaming.

use crate::report::{fig, percentiles, Figure};
use crate::{pin, Cores};
use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Round trips per histogram sample (a sample is the mean of a batch, so the clock's own cost
/// does not swamp a ~100 ns round trip).
pub(crate) const BATCH: u64 = 100;

pub(crate) fn raw_c2c(cores: Cores, round_trips: u64) -> Vec<Figure> {
    let line = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let l2 = line.clone();
    let ponger = std::thread::spawn(move || {
        pin(cores.b);
        let mut expect = 1;
        while expect < 2 * round_trips {
            while l2.load(Ordering::Acquire) != expect {
                std::hint::spin_loop();
            }
            l2.store(expect + 1, Ordering::Release);
            expect += 2;
        }
    });
    let pinger = std::thread::spawn(move || {
        pin(cores.a);
        let mut h = Histogram::<u64>::new(3).unwrap();
        let start = Instant::now();
        let mut v = 0;
        for _ in 0..round_trips / BATCH {
            let t = Instant::now();
            for _ in 0..BATCH {
                line.store(v + 1, Ordering::Release);
                while line.load(Ordering::Acquire) != v + 2 {
                    std::hint::spin_loop();
                }
                v += 2;
            }
            h.record((t.elapsed().as_nanos() as u64 / BATCH).max(1)).unwrap();
        }
        (start.elapsed(), h, v)
    });
    let (total, h, v) = pinger.join().unwrap();
    ponger.join().unwrap();
    let mut out = vec![fig("raw-c2c", "ns_per_roundtrip", total.as_nanos() as f64 / (v / 2) as f64, "ns")];
    out.extend(percentiles("raw-c2c", &h));
    out
}

struct RawRing {
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
    buf: Box<[UnsafeCell<u64>]>,
    mask: usize,
}
// SAFETY: the one producer writes only free slots and the one consumer reads only published
// ones; the indices are atomics (the same protocol as the engine's ring).
unsafe impl Sync for RawRing {}

pub(crate) fn raw_spsc(cores: Cores, items: u64) -> Vec<Figure> {
    const CAP: usize = 4096;
    const PUBLISH: usize = 64;
    let r = Arc::new(RawRing {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        buf: (0..CAP).map(|_| UnsafeCell::new(0)).collect(),
        mask: CAP - 1,
    });
    let rp = r.clone();
    let producer = std::thread::spawn(move || {
        pin(cores.b);
        let (mut tail, mut head_cache) = (0usize, 0usize);
        for i in 0..items {
            while tail - head_cache == CAP {
                head_cache = rp.head.load(Ordering::Acquire);
                if tail - head_cache == CAP {
                    rp.tail.store(tail, Ordering::Release);
                    std::hint::spin_loop();
                }
            }
            // SAFETY: slot `tail` is free (tail - head < CAP) and only we write free slots.
            unsafe { *rp.buf[tail & rp.mask].get() = i };
            tail += 1;
            if tail % PUBLISH == 0 {
                rp.tail.store(tail, Ordering::Release);
            }
        }
        rp.tail.store(tail, Ordering::Release);
    });
    let consumer = std::thread::spawn(move || {
        pin(cores.a);
        let start = Instant::now();
        let (mut head, mut tail_cache, mut sum) = (0usize, 0usize, 0u64);
        while (head as u64) < items {
            if head == tail_cache {
                r.head.store(head, Ordering::Release);
                tail_cache = r.tail.load(Ordering::Acquire);
                if head == tail_cache {
                    std::hint::spin_loop();
                    continue;
                }
            }
            // SAFETY: slot `head` was published (head < tail, read with Acquire).
            sum = sum.wrapping_add(unsafe { *r.buf[head & r.mask].get() });
            head += 1;
            if head % PUBLISH == 0 {
                r.head.store(head, Ordering::Release);
            }
        }
        (start.elapsed(), sum)
    });
    let (t, sum) = consumer.join().unwrap();
    producer.join().unwrap();
    assert_eq!(sum, items * (items - 1) / 2, "raw ring lost items");
    vec![fig("raw-spsc", "msgs_per_sec", items as f64 / t.as_secs_f64(), "msg/s")]
}
