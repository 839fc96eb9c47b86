//! Raw hardware baselines, measured in the same process as the engine workloads:
//! - `raw-c2c`: two pinned threads bounce one cache line (an atomic counter): the floor for any
//!   cross-core round trip.
//! - `raw-c2c-pair`: the same round trip over two cache lines, each written by one thread only
//!   (a request line and an answer line): the floor for any exchange in which each side writes
//!   its own memory and the other only reads it, as rings, lanes and reply slots do. On some
//!   hosts it costs twice `raw-c2c`: there a thread that writes the line it has just read
//!   (one line both ways) takes it in one transfer, while a line only ever read by the other
//!   side is first shared, then taken back by its writer (two transfers per hop).
//! - `raw-spsc`: a bare bounded SPSC ring of `u64` between two pinned threads, with cached
//!   indices and batched publication: the floor for cross-core streaming.
//! - `raw-same-core`: two threads pinned to one core hand a word back and forth, each yielding
//!   its core while it waits: the floor for a round trip between two threads the scheduler put
//!   on one core (two context switches), which is where a plain thread and the shard it asks
//!   end up on a host whose other core is busy.

use crate::report::{fig, percentiles, Figure};
use crate::spsc::spsc;
use crate::{pin, Cores};
use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Round trips per histogram sample (a sample is the mean of a batch, so the clock's own cost
/// does not swamp a ~100 ns round trip).
pub(crate) const BATCH: u64 = 100;

pub(crate) fn raw_c2c(cores: Cores, round_trips: u64) -> Vec<Figure> {
    bounce("raw-c2c", cores, round_trips, false)
}

pub(crate) fn raw_c2c_pair(cores: Cores, round_trips: u64) -> Vec<Figure> {
    bounce("raw-c2c-pair", cores, round_trips, true)
}

/// Round trips between two pinned threads: the pinger writes `2i + 1` into the first line, the
/// ponger answers `2i + 2` in the same line (`two_lines` false) or in a second line that only
/// it writes (`two_lines` true).
fn bounce(name: &str, cores: Cores, round_trips: u64, two_lines: bool) -> Vec<Figure> {
    // Whole batches only, so both threads agree on the count.
    let round_trips = (round_trips / BATCH).max(1) * BATCH;
    // Each line on a cache line of its own.
    let lines = Arc::new([CachePadded::new(AtomicU64::new(0)), CachePadded::new(AtomicU64::new(0))]);
    let l2 = lines.clone();
    let ponger = std::thread::spawn(move || {
        pin(cores.b);
        let (ping, pong) = (&l2[0], &l2[usize::from(two_lines)]);
        for i in 0..round_trips {
            while ping.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            pong.store(2 * i + 2, Ordering::Release);
        }
    });
    let pinger = std::thread::spawn(move || {
        pin(cores.a);
        let (ping, pong) = (&lines[0], &lines[usize::from(two_lines)]);
        let mut h = Histogram::<u64>::new(3).unwrap();
        let start = Instant::now();
        let mut i = 0;
        for _ in 0..round_trips / BATCH {
            let t = Instant::now();
            for _ in 0..BATCH {
                ping.store(2 * i + 1, Ordering::Release);
                while pong.load(Ordering::Acquire) != 2 * i + 2 {
                    std::hint::spin_loop();
                }
                i += 1;
            }
            h.record((t.elapsed().as_nanos() as u64 / BATCH).max(1)).unwrap();
        }
        (start.elapsed(), h)
    });
    let (total, h) = pinger.join().unwrap();
    ponger.join().unwrap();
    let mut out = vec![fig(name, "ns_per_roundtrip", total.as_nanos() as f64 / round_trips as f64, "ns")];
    out.extend(percentiles(name, &h));
    out
}

pub(crate) fn raw_spsc(cores: Cores, items: u64) -> Vec<Figure> {
    const CAP: usize = 4096;
    const PUBLISH: usize = 64;
    let (tx, rx) = spsc::<u64>(CAP, PUBLISH);
    let producer = std::thread::spawn(move || {
        pin(cores.b);
        // A local of this thread, not the spawned closure's heap copy: the compiler keeps the
        // indices in registers.
        let mut tx = tx;
        for i in 0..items {
            tx.push(i);
        }
        tx.flush();
    });
    let consumer = std::thread::spawn(move || {
        pin(cores.a);
        let mut rx = rx;
        let start = Instant::now();
        let (mut got, mut sum) = (0u64, 0u64);
        while got < items {
            match rx.pop() {
                Some(v) => {
                    sum = sum.wrapping_add(v);
                    got += 1;
                }
                None => std::hint::spin_loop(),
            }
        }
        (start.elapsed(), sum)
    });
    let (t, sum) = consumer.join().unwrap();
    producer.join().unwrap();
    assert_eq!(sum, items * (items - 1) / 2, "raw ring lost items");
    vec![fig("raw-spsc", "msgs_per_sec", items as f64 / t.as_secs_f64(), "msg/s")]
}

pub(crate) fn raw_same_core(cores: Cores, round_trips: u64) -> Vec<Figure> {
    let word = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let w2 = word.clone();
    let ponger = std::thread::spawn(move || {
        pin(cores.b);
        for i in 0..round_trips {
            while w2.load(Ordering::Acquire) != 2 * i + 1 {
                std::thread::yield_now();
            }
            w2.store(2 * i + 2, Ordering::Release);
        }
    });
    let pinger = std::thread::spawn(move || {
        pin(cores.b);
        let mut h = Histogram::<u64>::new(3).unwrap();
        let start = Instant::now();
        for i in 0..round_trips {
            let t = Instant::now();
            word.store(2 * i + 1, Ordering::Release);
            while word.load(Ordering::Acquire) != 2 * i + 2 {
                std::thread::yield_now();
            }
            h.record(t.elapsed().as_nanos() as u64).unwrap();
        }
        (start.elapsed(), h)
    });
    let (total, h) = pinger.join().unwrap();
    ponger.join().unwrap();
    let mut out =
        vec![fig("raw-same-core", "ns_per_roundtrip", total.as_nanos() as f64 / round_trips as f64, "ns")];
    out.extend(percentiles("raw-same-core", &h));
    out
}
