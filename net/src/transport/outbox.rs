//! A peer's queue of frames to send. Any thread appends a frame by encoding it in place, at the
//! end of the queue's current buffer (no allocation, no reference count and no wake-up per
//! frame); the peer's writer task takes everything queued at once, writes each buffer and gives
//! it back for reuse (buffers allocated on one thread and freed on another made the allocator
//! fetch fresh pages, zeroed by the kernel, for every few buffers).
//!
//! Frames are kept in segments: consecutive frames meant for the same incarnation of the peer
//! share a buffer of up to [`SEGMENT`] bytes, so the writer decides per segment which stream
//! they go on. The queue counts its bytes until the writer has written them (or dropped them)
//! and refuses a frame that would take it past its maximum. A writer that found the queue
//! empty says it waits; only the frame that finds it waiting wakes it.

use bytes::BytesMut;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// A segment's buffer: frames go into one until the next does not fit (a larger frame gets a
/// buffer of its own size).
pub(super) const SEGMENT: usize = 64 << 10;

/// Frames for one incarnation of the peer (0: whichever the stream addresses), in order.
pub(super) struct Segment {
    pub(super) incarnation: u64,
    pub(super) bytes: BytesMut,
    pub(super) frames: usize,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused<E> {
    /// The queue holds its maximum.
    Full,
    /// The writer is gone (the peer was forgotten, or the transport shut down).
    Closed,
    /// The frame could not be encoded.
    Encode(E),
}

/// What [`Outbox::take`] found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Take {
    /// Frames, now in the caller's hands.
    Took,
    /// Nothing within the idle time.
    Idle,
    /// Nothing, and nothing will come: the queue is closed.
    Closed,
}

pub(super) struct Outbox {
    queue: Mutex<Queue>,
    /// Set (under the queue's lock) once closed; readable without the lock, so a sender looking
    /// up its peer does not take it twice per frame.
    closed: AtomicBool,
    wake: Notify,
    max: usize,
}

#[derive(Default)]
struct Queue {
    segments: VecDeque<Segment>,
    /// Bytes queued or being written.
    bytes: usize,
    /// The writer found nothing and waits to be woken.
    waiting: bool,
    /// Written buffers, emptied, for the next segments.
    spare: Vec<BytesMut>,
}

/// Buffers kept for reuse (1 MiB): a writer's batch in flight while senders fill the next.
const SPARE: usize = 16;

impl Outbox {
    /// An empty queue that holds at most `max` bytes.
    pub(super) fn new(max: usize) -> Self {
        Self { queue: Mutex::new(Queue::default()), closed: AtomicBool::new(false), wake: Notify::new(), max }
    }

    /// Appends one frame of about `size` bytes that `encode` writes (and that is meant for the
    /// peer's incarnation `incarnation`); wakes the writer if it waits. Nothing is queued when
    /// `encode` fails, the frame would take the queue past its maximum, or the queue is closed.
    /// (A frame longer than `size` is queued all the same, at the cost of growing its buffer.)
    pub(super) fn push<E>(
        &self,
        incarnation: u64,
        size: usize,
        encode: impl FnOnce(&mut BytesMut) -> Result<(), E>,
    ) -> Result<(), Refused<E>> {
        let wake = {
            let mut q = self.queue.lock();
            let Queue { segments, bytes, waiting, spare } = &mut *q;
            if self.closed.load(Ordering::Relaxed) {
                return Err(Refused::Closed);
            }
            let fits = segments
                .back()
                .is_some_and(|s| s.incarnation == incarnation && s.bytes.capacity() - s.bytes.len() >= size);
            if !fits {
                let buf = match spare.pop() {
                    Some(b) if size <= b.capacity() => b,
                    _ => BytesMut::with_capacity(SEGMENT.max(size)),
                };
                segments.push_back(Segment { incarnation, bytes: buf, frames: 0 });
            }
            let seg = segments.back_mut().expect("a segment was just ensured");
            let before = seg.bytes.len();
            let encoded = encode(&mut seg.bytes);
            let len = seg.bytes.len() - before;
            let refused = match encoded {
                Err(e) => Some(Refused::Encode(e)),
                Ok(()) if *bytes + len > self.max => Some(Refused::Full),
                Ok(()) => None,
            };
            if let Some(r) = refused {
                seg.bytes.truncate(before);
                if seg.frames == 0 {
                    segments.pop_back();
                }
                return Err(r);
            }
            seg.frames += 1;
            *bytes += len;
            std::mem::take(waiting)
        };
        if wake {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Moves everything queued into `into` (empty), waiting up to `idle` for something to
    /// come.
    pub(super) async fn take(&self, idle: Duration, into: &mut VecDeque<Segment>) -> Take {
        loop {
            {
                let mut q = self.queue.lock();
                if !q.segments.is_empty() {
                    std::mem::swap(&mut q.segments, into);
                    q.waiting = false;
                    return Take::Took;
                }
                if self.closed.load(Ordering::Relaxed) {
                    return Take::Closed;
                }
                q.waiting = true;
            }
            // A frame pushed between the unlock and this wait left a permit: no wake is lost.
            if tokio::time::timeout(idle, self.wake.notified()).await.is_err() {
                return Take::Idle;
            }
        }
    }

    /// Segments taken from the queue are written (or dropped): their bytes are no longer
    /// counted, and their buffers are kept for reuse (unless one grew past a segment's size for
    /// a large frame, or enough are kept). One lock for all.
    pub(super) fn done(&self, bufs: &mut Vec<BytesMut>) {
        let mut q = self.queue.lock();
        for mut buf in bufs.drain(..) {
            q.bytes -= buf.len();
            if buf.capacity() == SEGMENT && q.spare.len() < SPARE {
                buf.clear();
                q.spare.push(buf);
            }
        }
    }

    /// Bytes queued or being written.
    pub(super) fn queued(&self) -> usize {
        self.queue.lock().bytes
    }

    /// Accepts nothing more; the writer takes what is queued, then ends.
    pub(super) fn close(&self) {
        let _q = self.queue.lock();
        self.closed.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn frame(b: &mut BytesMut, n: usize) -> Result<(), ()> {
        b.put_bytes(7, n);
        Ok(())
    }

    #[tokio::test]
    async fn frames_come_out_in_order_grouped_by_incarnation_within_the_maximum() {
        let o = Outbox::new(100);
        o.push(0, 10, |b| frame(b, 10)).unwrap();
        o.push(0, 20, |b| frame(b, 20)).unwrap();
        o.push(5, 30, |b| frame(b, 30)).unwrap();
        o.push(0, 5, |b| frame(b, 5)).unwrap();
        // 65 queued: 40 more would pass 100; a failed encode leaves nothing behind.
        assert_eq!(o.push(0, 40, |b| frame(b, 40)), Err(Refused::Full));
        let half_written = |b: &mut BytesMut| {
            b.put_bytes(1, 3);
            Err(())
        };
        assert_eq!(o.push(0, 3, half_written), Err(Refused::Encode(())));
        assert_eq!(o.queued(), 65);
        let mut got = VecDeque::new();
        assert_eq!(o.take(Duration::from_secs(1), &mut got).await, Take::Took);
        let shape: Vec<_> = got.iter().map(|s| (s.incarnation, s.bytes.len(), s.frames)).collect();
        assert_eq!(shape, [(0, 30, 2), (5, 30, 1), (0, 5, 1)]);
        o.done(&mut got.drain(..).map(|s| s.bytes).collect());
        assert_eq!(o.queued(), 0);
        o.close();
        assert_eq!(o.push(0, 1, |b| frame(b, 1)), Err(Refused::Closed));
        got.clear();
        assert_eq!(o.take(Duration::from_secs(1), &mut got).await, Take::Closed);
    }

    #[tokio::test]
    async fn a_waiting_writer_is_woken_by_the_next_frame() {
        let o = std::sync::Arc::new(Outbox::new(1 << 20));
        let w = o.clone();
        let writer = tokio::spawn(async move {
            let mut got = VecDeque::new();
            let came = w.take(Duration::from_secs(30), &mut got).await;
            (came, got.iter().map(|s| s.frames).sum::<usize>())
        });
        // Until the writer waits, then one frame.
        while !o.queue.lock().waiting {
            tokio::task::yield_now().await;
        }
        o.push(0, 8, |b| frame(b, 8)).unwrap();
        assert_eq!(writer.await.unwrap(), (Take::Took, 1));
    }
}
