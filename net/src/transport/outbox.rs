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
//!
//! A tell to an actor may join the tell queued right before it, when that one went to the same
//! actor with the same manifest and nothing else was queued after it (`push_tell`): its payload
//! is appended to that frame (`Envelope::more`, up to [`JOIN_MAX`] bytes a frame), so a stream of
//! tells travels as a few envelopes, each read once by the receiver. Order is kept: only the last
//! frame is ever joined, and the writer's take closes it.

use bytes::BytesMut;
use corelane_proto::frame::{MIN_MAX_FRAME, PREFIX_LEN};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// A segment's buffer: frames go into one until the next does not fit (a larger frame gets a
/// buffer of its own size).
pub(super) const SEGMENT: usize = 64 << 10;

/// Frames for one incarnation of the peer (0: whichever the stream addresses), in order.
pub(super) struct Segment {
    pub(super) incarnation: u64,
    pub(super) bytes: BytesMut,
    /// Messages in it: a frame of joined tells counts each.
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
    /// The most bytes a frame of joined tells grows to, prefix included: [`JOIN_MAX`], or less
    /// where the peer's frames are smaller (a join never makes a frame the receiver refuses).
    join_max: usize,
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
    /// The tell queued last, which the next tell to the same actor may join.
    open: Option<Open>,
}

/// A tell that later ones may join (`Envelope::more`): the actor (on the segment's incarnation)
/// or the grain, and the manifest. The manifest is compared by address (the name a payload type
/// travels under is one `&'static str`; two names that are equal but not the same string only
/// miss a join), a grain's kind and identity too, which the open tell holds on to meanwhile
/// ([`Key`]: so an address cannot be reused for another name while it is compared). Borrowed:
/// a tell that joins moves no reference count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TellTo<'a> {
    target: u64,
    manifest: (usize, usize),
    grain: Option<(&'a Arc<str>, u32, &'a Arc<str>, u64)>,
}

impl<'a> TellTo<'a> {
    /// A tell to actor `target` with payloads of type `manifest`.
    pub(crate) fn actor(target: u64, manifest: &'static str) -> Self {
        Self { target, manifest: (manifest.as_ptr() as usize, manifest.len()), grain: None }
    }

    /// A tell to a grain (its kind named by `kind_number` when not 0), carrying `epoch`.
    pub(crate) fn grain(
        manifest: &'static str,
        kind: &'a Arc<str>,
        kind_number: u32,
        identity: &'a Arc<str>,
        epoch: u64,
    ) -> Self {
        let grain = Some((kind, kind_number, identity, epoch));
        Self { target: 0, manifest: (manifest.as_ptr() as usize, manifest.len()), grain }
    }
}

/// What the open tell keeps of its [`TellTo`]: a grain's names held, so their addresses stay
/// theirs while later tells are compared with them.
#[derive(Debug)]
struct Key {
    target: u64,
    manifest: (usize, usize),
    grain: Option<(Arc<str>, u32, Arc<str>, u64)>,
}

impl Key {
    fn new(to: &TellTo<'_>) -> Self {
        let grain =
            to.grain.map(|(kind, number, identity, epoch)| (kind.clone(), number, identity.clone(), epoch));
        Self { target: to.target, manifest: to.manifest, grain }
    }

    /// Whether `to` goes where the open tell went.
    fn is(&self, to: &TellTo<'_>) -> bool {
        let grain = match (&self.grain, to.grain) {
            (None, None) => true,
            (Some((kind, number, identity, epoch)), Some((k, n, i, e))) => {
                Arc::ptr_eq(kind, k) && Arc::ptr_eq(identity, i) && (*number, *epoch) == (n, e)
            }
            _ => false,
        };
        grain && (self.target, self.manifest) == (to.target, to.manifest)
    }
}

/// The open tell: for which actor, and where its frame starts in the last segment.
#[derive(Debug)]
struct Open {
    to: Key,
    at: usize,
}

/// The most bytes a frame of joined tells grows to, prefix included: a batch of ~50 small
/// tells, so the receiver decodes one envelope for many, and each frame still arrives in a few
/// packets; no more than every node accepts ([`MIN_MAX_FRAME`]).
pub(super) const JOIN_MAX: usize = MIN_MAX_FRAME;

/// Buffers kept for reuse (1 MiB): a writer's batch in flight while senders fill the next.
const SPARE: usize = 16;

impl Outbox {
    /// An empty queue that holds at most `max` bytes, in frames of at most `max_frame` bytes
    /// (prefix excluded).
    pub(super) fn new(max: usize, max_frame: usize) -> Self {
        let join_max = JOIN_MAX.min(max_frame.saturating_add(PREFIX_LEN));
        let (queue, closed, wake) = (Mutex::new(Queue::default()), AtomicBool::new(false), Notify::new());
        Self { queue, closed, wake, max, join_max }
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
        self.push_joining(incarnation, size, None, |b, _| encode(b))
    }

    /// [`Outbox::push`] for a tell to an actor, `to`: when the frame queued last is a tell to
    /// the same actor with the same manifest, with room left ([`JOIN_MAX`]), `encode` is given
    /// where that frame starts and appends this tell's payload to it (`Envelope::more`);
    /// otherwise it writes a frame of its own (given `None`), which a later tell may join.
    pub(super) fn push_tell<E>(
        &self,
        incarnation: u64,
        size: usize,
        to: &TellTo<'_>,
        encode: impl FnOnce(&mut BytesMut, Option<usize>) -> Result<(), E>,
    ) -> Result<(), Refused<E>> {
        self.push_joining(incarnation, size, Some(to), encode)
    }

    fn push_joining<E>(
        &self,
        incarnation: u64,
        size: usize,
        to: Option<&TellTo<'_>>,
        encode: impl FnOnce(&mut BytesMut, Option<usize>) -> Result<(), E>,
    ) -> Result<(), Refused<E>> {
        let wake = {
            let mut q = self.queue.lock();
            let Queue { segments, bytes, waiting, spare, open } = &mut *q;
            if self.closed.load(Ordering::Relaxed) {
                return Err(Refused::Closed);
            }
            let fits = segments
                .back()
                .is_some_and(|s| s.incarnation == incarnation && s.bytes.capacity() - s.bytes.len() >= size);
            // The open tell is the last frame of the last segment (anything queued after it, or
            // a new segment, closes it).
            let joins = match (open.as_ref(), to) {
                (Some(o), Some(to)) if fits && o.to.is(to) => {
                    let seg = segments.back().expect("an open tell lies in the last segment");
                    (seg.bytes.len() - o.at + size <= self.join_max).then_some(o.at)
                }
                _ => None,
            };
            if !fits {
                let buf = match spare.pop() {
                    Some(b) if size <= b.capacity() => b,
                    _ => BytesMut::with_capacity(SEGMENT.max(size)),
                };
                segments.push_back(Segment { incarnation, bytes: buf, frames: 0 });
            }
            let seg = segments.back_mut().expect("a segment was just ensured");
            let before = seg.bytes.len();
            // A joined frame's length prefix changes: kept, to be put back if the tell is refused.
            let prefix = joins.map(|at| <[u8; 4]>::try_from(&seg.bytes[at..at + 4]).expect("a prefix"));
            let encoded = encode(&mut seg.bytes, joins);
            let len = seg.bytes.len() - before;
            let refused = match encoded {
                Err(e) => Some(Refused::Encode(e)),
                Ok(()) if *bytes + len > self.max => Some(Refused::Full),
                Ok(()) => None,
            };
            if let Some(r) = refused {
                seg.bytes.truncate(before);
                if let (Some(at), Some(p)) = (joins, prefix) {
                    seg.bytes[at..at + 4].copy_from_slice(&p);
                }
                if seg.frames == 0 {
                    segments.pop_back();
                }
                return Err(r);
            }
            // Every message counts, a joined one too: dropped segments count what they held.
            seg.frames += 1;
            *bytes += len;
            if joins.is_none() {
                *open = to.map(|to| Open { to: Key::new(to), at: before });
            }
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
                    q.open = None;
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
    use bytes::{BufMut, Bytes};
    use corelane_proto::frame::{append_more, encode_envelope, FrameDecoder, FrameError, Head};
    use corelane_proto::tell::PlainTell;
    use corelane_proto::v1::Kind;

    fn frame(b: &mut BytesMut, n: usize) -> Result<(), ()> {
        b.put_bytes(7, n);
        Ok(())
    }

    #[tokio::test]
    async fn frames_come_out_in_order_grouped_by_incarnation_within_the_maximum() {
        let o = Outbox::new(100, 1 << 20);
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
        let o = std::sync::Arc::new(Outbox::new(1 << 20, 1 << 20));
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

    /// A tell as the node writes it: a real frame, or the payload joined to the open one.
    fn tell(payload: &'static [u8]) -> impl FnOnce(&mut BytesMut, Option<usize>) -> Result<(), FrameError> {
        move |b, joins| {
            let write = |b: &mut BytesMut| b.put_slice(payload);
            match joins {
                Some(at) => append_more(b, at, payload.len(), write, 1 << 20),
                None => {
                    let head = Head { target: 9, kind: Kind::Tell, manifest: "m.N", ..Head::default() };
                    encode_envelope(&head, payload.len(), write, b, 1 << 20)
                }
            }
        }
    }

    /// The frames of a taken segment, each read as the receiver reads it.
    fn frames(seg: &Segment) -> Vec<Vec<Bytes>> {
        let mut dec = FrameDecoder::new(1 << 20);
        dec.push(seg.bytes.clone().freeze());
        std::iter::from_fn(|| dec.next_frame().unwrap())
            .map(|f| PlainTell::read(&f).expect("a tell").payloads().collect())
            .collect()
    }

    #[tokio::test]
    async fn a_tell_joins_the_tell_queued_last_when_it_goes_to_the_same_actor() {
        const M: &str = "m.N";
        let (a, b) = (&TellTo::actor(9, M), &TellTo::actor(10, M));
        let o = Outbox::new(1 << 20, 1 << 20);
        for p in [&b"1"[..], b"2", b"3"] {
            o.push_tell(0, 64, a, tell(p)).unwrap();
        }
        // Another actor (or another manifest), anything else queued, or a new segment
        // (another incarnation) starts a frame of its own.
        o.push_tell(0, 64, b, tell(b"4")).unwrap();
        o.push_tell(0, 64, a, tell(b"5")).unwrap();
        o.push_tell(0, 64, &TellTo::actor(9, "m.Other"), tell(b"6")).unwrap();
        o.push(0, 64, |b| tell(b"x")(b, None)).unwrap();
        o.push_tell(0, 64, a, tell(b"7")).unwrap();
        o.push_tell(3, 64, a, tell(b"8")).unwrap();
        o.push_tell(3, 64, a, tell(b"9")).unwrap();
        let mut got = VecDeque::new();
        assert_eq!(o.take(Duration::from_secs(1), &mut got).await, Take::Took);
        // The take closes the open tell: the next one is a frame of its own.
        o.push_tell(3, 64, a, tell(b"10")).unwrap();
        let counts: Vec<usize> = got.iter().map(|s| s.frames).collect();
        assert_eq!(counts, [8, 2], "every message counts, a joined one too");
        let first: Vec<Vec<Bytes>> = frames(&got[0]);
        let joined = |ps: &[&'static [u8]]| ps.iter().map(|p| Bytes::from_static(p)).collect::<Vec<_>>();
        let expected =
            [&[&b"1"[..], b"2", b"3"][..], &[b"4"], &[b"5"], &[b"6"], &[b"x"], &[b"7"]].map(&joined);
        assert_eq!(first, expected);
        assert_eq!(frames(&got[1]), [joined(&[b"8", b"9"])]);
        let mut again = VecDeque::new();
        assert_eq!(o.take(Duration::from_secs(1), &mut again).await, Take::Took);
        assert_eq!(frames(&again[0]), [joined(&[b"10"])]);
    }

    #[test]
    fn a_grain_tell_joins_only_a_tell_to_the_same_grain_at_the_same_epoch() {
        let (kind, id, other): (Arc<str>, Arc<str>, Arc<str>) = ("k".into(), "g-1".into(), "g-1".into());
        let open = Key::new(&TellTo::grain("m.N", &kind, 2, &id, 7));
        assert!(open.is(&TellTo::grain("m.N", &kind, 2, &id, 7)));
        // An equal name in another allocation, another epoch or kind number, another manifest,
        // or an actor: no join (a missed join costs a frame, a wrong one a misdelivery).
        for not in [
            TellTo::grain("m.N", &kind, 2, &other, 7),
            TellTo::grain("m.N", &kind, 2, &id, 8),
            TellTo::grain("m.N", &kind, 3, &id, 7),
            TellTo::grain("m.Other", &kind, 2, &id, 7),
            TellTo::actor(0, "m.N"),
        ] {
            assert!(!open.is(&not), "{not:?}");
        }
        // The open tell holds the names it was compared by.
        assert_eq!(Arc::strong_count(&id), 2);
        drop(open);
        assert_eq!(Arc::strong_count(&id), 1);
    }

    #[tokio::test]
    async fn joins_stop_short_of_the_frame_limit_where_it_is_lower() {
        // Frames of at most 200 bytes: joined tells of 30 bytes fill frames up to it, never past
        // it, and none is refused (each tell alone fits a frame of its own).
        let a = &TellTo::actor(9, "m.N");
        let o = Outbox::new(1 << 20, 200);
        let max_frame = |b: &mut BytesMut, joins: Option<usize>| match joins {
            Some(at) => append_more(b, at, 30, |b| b.put_bytes(3, 30), 200),
            None => {
                let head = Head { target: 9, kind: Kind::Tell, manifest: "m.N", ..Head::default() };
                encode_envelope(&head, 30, |b| b.put_bytes(3, 30), b, 200)
            }
        };
        let size = Head { target: 9, kind: Kind::Tell, manifest: "m.N", ..Head::default() }.max_len(30);
        for _ in 0..40 {
            o.push_tell(0, size, a, max_frame).unwrap();
        }
        let mut got = VecDeque::new();
        o.take(Duration::from_secs(1), &mut got).await;
        let mut dec = FrameDecoder::new(200);
        dec.push(got[0].bytes.clone().freeze());
        let mut told = 0;
        while let Some(f) = dec.next_frame().unwrap() {
            told += PlainTell::read(&f).unwrap().messages();
        }
        assert_eq!(told, 40);
        assert!(frames(&got[0]).len() > 1, "several frames, each within the limit");
    }

    #[tokio::test]
    async fn a_joined_frame_stops_at_its_limit_and_a_refused_join_leaves_it_whole() {
        let a = &TellTo::actor(9, "m.N");
        let o = Outbox::new(JOIN_MAX + 200, 1 << 20);
        let mut n = 0;
        while o.queue.lock().segments.front().is_none_or(|s| s.bytes.len() < JOIN_MAX + 100) {
            o.push_tell(0, 64, a, tell(&[7; 40])).unwrap();
            n += 1;
        }
        // Past the limit, a second frame; then a join the queue has no room for is refused
        // and the frame it would have joined reads as before.
        let queued = o.queued();
        assert_eq!(o.push_tell(0, 300, a, tell(&[1; 250])), Err(Refused::Full));
        assert_eq!(o.queued(), queued);
        let mut got = VecDeque::new();
        o.take(Duration::from_secs(1), &mut got).await;
        let sizes: Vec<usize> = frames(&got[0]).iter().map(Vec::len).collect();
        assert_eq!(sizes.iter().sum::<usize>(), n);
        assert_eq!(sizes.len(), 2, "{sizes:?}");
        let mut dec = FrameDecoder::new(1 << 20);
        dec.push(got[0].bytes.clone().freeze());
        assert!(dec.next_frame().unwrap().unwrap().len() <= JOIN_MAX);
    }
}
