//! Length-prefixed frames, sans-IO: bytes in, frames out; no sockets, no clock.
//!
//! A frame is a 4-byte little-endian length `n` followed by `n` bytes (one encoded envelope).
//! `n` may not exceed the decoder's maximum: a larger prefix is an error as soon as the prefix
//! is seen, before anything is buffered for it, and the stream cannot be resynchronised after it
//! (the decoder keeps answering the same error).
//!
//! Decoding takes the stream as the `Bytes` chunks the transport hands over and slices frames
//! out of them without copying; only a frame that straddles two chunks is assembled, once, in a
//! side buffer.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Bytes of the length prefix.
pub const PREFIX_LEN: usize = 4;

/// The default maximum frame length (prefix excluded): 8 MiB.
pub const DEFAULT_MAX_FRAME: usize = 8 << 20;

/// The smallest maximum frame length a node may have (prefix excluded): every node accepts
/// frames this long, so a sender may join tells into frames of up to this length, prefix
/// included (`Envelope::more`), whatever the receiver's own limit.
pub const MIN_MAX_FRAME: usize = 4096;

/// What can go wrong with the framing of a stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame longer than the maximum: announced by a peer, or about to be encoded.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    Oversized {
        /// The frame's length.
        len: u64,
        /// The maximum.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({buffered} bytes of it received)")]
    Truncated {
        /// How many bytes of the unfinished frame (prefix included) had arrived.
        buffered: usize,
    },
}

/// Incremental frame decoder for one stream.
///
/// Push each chunk the transport delivers, then take frames until there are none:
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use corelane_proto::frame::{encode_frame, FrameDecoder, DEFAULT_MAX_FRAME};
///
/// let mut wire = BytesMut::new();
/// encode_frame(b"hello", &mut wire, DEFAULT_MAX_FRAME)?;
/// let wire = wire.freeze();
///
/// let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
/// dec.push(wire.slice(..3)); // a chunk boundary inside the prefix
/// assert_eq!(dec.next_frame()?, None);
/// dec.push(wire.slice(3..));
/// assert_eq!(dec.next_frame()?, Some(Bytes::from_static(b"hello")));
/// assert_eq!(dec.next_frame()?, None);
/// dec.finish()?; // the stream ended on a frame boundary
/// # Ok::<(), corelane_proto::frame::FrameError>(())
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    max: usize,
    /// A frame that straddles chunks, prefix included, being assembled. Empty when none.
    partial: BytesMut,
    /// The unread part of the last chunk pushed.
    rest: Bytes,
    /// Set once the stream is beyond repair.
    failed: Option<FrameError>,
}

impl FrameDecoder {
    /// A decoder that refuses frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self { max: max_frame, partial: BytesMut::new(), rest: Bytes::new(), failed: None }
    }

    /// Hands over the next chunk of the stream.
    pub fn push(&mut self, chunk: Bytes) {
        if !self.rest.is_empty() {
            // Unread bytes left: they begin an unfinished frame, which is assembled aside.
            self.partial.extend_from_slice(&self.rest);
        }
        self.rest = chunk;
    }

    /// The next complete frame (without its prefix), `None` until more bytes arrive.
    ///
    /// # Errors
    /// [`FrameError::Oversized`] when a prefix announces more than the maximum; the stream is
    /// then unusable and every later call returns the same error.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.partial.is_empty() {
            return self.frame_in_rest();
        }
        // Complete the prefix, then the body, from the front of `rest`.
        if self.partial.len() < PREFIX_LEN && !self.fill_partial(PREFIX_LEN) {
            return Ok(None);
        }
        let len = self.check(u32::from_le_bytes(self.partial[..PREFIX_LEN].try_into().unwrap()))?;
        if !self.fill_partial(PREFIX_LEN + len) {
            return Ok(None);
        }
        let mut frame = self.partial.split().freeze();
        frame.advance(PREFIX_LEN);
        Ok(Some(frame))
    }

    /// Tells the decoder the stream has ended.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when it ended inside a frame; the error already returned by
    /// `next_frame`, if any.
    pub fn finish(&self) -> Result<(), FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.buffered() {
            0 => Ok(()),
            buffered => Err(FrameError::Truncated { buffered }),
        }
    }

    /// Bytes received but not yet returned as a frame.
    pub fn buffered(&self) -> usize {
        self.partial.len() + self.rest.len()
    }

    /// A frame sliced straight out of `rest`, when all of it is there.
    fn frame_in_rest(&mut self) -> Result<Option<Bytes>, FrameError> {
        if self.rest.len() < PREFIX_LEN {
            return Ok(None);
        }
        let len = self.check(u32::from_le_bytes(self.rest[..PREFIX_LEN].try_into().unwrap()))?;
        if self.rest.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        self.rest.advance(PREFIX_LEN);
        Ok(Some(self.rest.split_to(len)))
    }

    /// Moves bytes from `rest` into `partial` until it holds `want`; whether it does.
    fn fill_partial(&mut self, want: usize) -> bool {
        let take = (want - self.partial.len()).min(self.rest.len());
        self.partial.extend_from_slice(&self.rest[..take]);
        self.rest.advance(take);
        self.partial.len() == want
    }

    fn check(&mut self, len: u32) -> Result<usize, FrameError> {
        if len as u64 > self.max as u64 {
            let e = FrameError::Oversized { len: len.into(), max: self.max };
            self.failed = Some(e.clone());
            return Err(e);
        }
        Ok(len as usize)
    }
}

/// Appends `body` to `out` as one frame.
///
/// # Errors
/// [`FrameError::Oversized`] when `body` is longer than `max_frame`; nothing is written.
pub fn encode_frame(body: &[u8], out: &mut BytesMut, max_frame: usize) -> Result<(), FrameError> {
    let len = frame_len(body.len(), max_frame)?;
    out.reserve(PREFIX_LEN + body.len());
    out.put_u32_le(len);
    out.put_slice(body);
    Ok(())
}

/// Appends `msg` to `out` as one frame, encoded in place (no intermediate buffer).
///
/// # Errors
/// [`FrameError::Oversized`] when the encoded message is longer than `max_frame`; nothing is
/// written.
pub fn encode_message(
    msg: &impl prost::Message,
    out: &mut BytesMut,
    max_frame: usize,
) -> Result<(), FrameError> {
    let n = msg.encoded_len();
    let len = frame_len(n, max_frame)?;
    out.reserve(PREFIX_LEN + n);
    out.put_u32_le(len);
    msg.encode_raw(out);
    Ok(())
}

/// The fields of an envelope that the fast path writes (no sender).
#[derive(Debug, Clone, Copy, Default)]
pub struct Head<'a> {
    /// `Envelope::target`.
    pub target: u64,
    /// `Envelope::correlation_id`.
    pub correlation_id: u64,
    /// `Envelope::kind`.
    pub kind: crate::v1::Kind,
    /// `Envelope::manifest`.
    pub manifest: &'a str,
    /// `Envelope::incarnation`.
    pub incarnation: u64,
    /// `Envelope::epoch`.
    pub epoch: u64,
    /// `Envelope::grain`.
    pub grain: Option<GrainName<'a>>,
    /// `Envelope::trace` (empty: not traced).
    pub trace: &'a [u8],
}

impl Head<'_> {
    /// At least the length of the frame [`encode_envelope`] writes for this head and a payload
    /// of `payload_len` bytes (prefix included): every field at its longest.
    pub fn max_len(&self, payload_len: usize) -> usize {
        // Key and length prefix of a length-delimited field, a varint field, a fixed64 field.
        const DELIMITED: usize = 1 + 10;
        const VARINT: usize = 1 + 10;
        const FIXED: usize = 1 + 8;
        let grain = self.grain.map_or(0, |g| 3 * DELIMITED + g.identity.len() + g.kind.len() + VARINT);
        PREFIX_LEN
            + 2 * FIXED
            + 3 * VARINT
            + 3 * DELIMITED
            + self.manifest.len()
            + payload_len
            + grain
            + self.trace.len()
    }
}

/// A grain as [`Head`] names it (`Envelope.grain`, `grain_kind`, `grain_kind_number`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrainName<'a> {
    /// Its kind's name, written only when `kind_number` is 0.
    pub kind: &'a str,
    /// Its kind's number in the receiving member's record (0: by name).
    pub kind_number: u32,
    /// Its identity within the kind.
    pub identity: &'a str,
}

impl GrainName<'_> {
    /// The kind name as written: empty when the number stands for it.
    fn written_kind(&self) -> &str {
        if self.kind_number == 0 {
            self.kind
        } else {
            ""
        }
    }
}

/// Appends one frame holding the envelope `head` with a payload of `payload_len` bytes that
/// `write_payload` appends: the same bytes as encoding the `Envelope` with
/// [`encode_message`], without building it (no allocation for the manifest or the payload).
///
/// # Errors
/// [`FrameError::Oversized`] when the envelope is longer than `max_frame`; nothing is written.
pub fn encode_envelope(
    head: &Head<'_>,
    payload_len: usize,
    write_payload: impl FnOnce(&mut BytesMut),
    out: &mut BytesMut,
    max_frame: usize,
) -> Result<(), FrameError> {
    use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
    let kind = head.kind as i32 as u64;
    let delimited = |n: usize| if n == 0 { 0 } else { 1 + encoded_len_varint(n as u64) + n };
    let n = if head.target != 0 { 9 } else { 0 }
        + if head.correlation_id != 0 { 1 + encoded_len_varint(head.correlation_id) } else { 0 }
        + if kind != 0 { 1 + encoded_len_varint(kind) } else { 0 }
        + delimited(head.manifest.len())
        + delimited(payload_len)
        + if head.epoch != 0 { 1 + encoded_len_varint(head.epoch) } else { 0 }
        + if head.incarnation != 0 { 9 } else { 0 }
        + head.grain.map_or(0, |g| {
            // The identity is written even when empty (an optional field): it marks a grain.
            1 + encoded_len_varint(g.identity.len() as u64)
                + g.identity.len()
                + delimited(g.written_kind().len())
                + if g.kind_number != 0 { 1 + encoded_len_varint(g.kind_number.into()) } else { 0 }
        })
        + delimited(head.trace.len());
    let len = frame_len(n, max_frame)?;
    out.reserve(PREFIX_LEN + n);
    out.put_u32_le(len);
    if head.target != 0 {
        encode_key(1, WireType::SixtyFourBit, out);
        out.put_u64_le(head.target);
    }
    if head.correlation_id != 0 {
        encode_key(3, WireType::Varint, out);
        encode_varint(head.correlation_id, out);
    }
    if kind != 0 {
        encode_key(4, WireType::Varint, out);
        encode_varint(kind, out);
    }
    if !head.manifest.is_empty() {
        encode_key(5, WireType::LengthDelimited, out);
        encode_varint(head.manifest.len() as u64, out);
        out.put_slice(head.manifest.as_bytes());
    }
    if payload_len != 0 {
        encode_key(6, WireType::LengthDelimited, out);
        encode_varint(payload_len as u64, out);
        let before = out.len();
        write_payload(out);
        debug_assert_eq!(out.len() - before, payload_len, "the payload writer wrote its announced length");
    }
    if head.epoch != 0 {
        encode_key(7, WireType::Varint, out);
        encode_varint(head.epoch, out);
    }
    if head.incarnation != 0 {
        encode_key(8, WireType::SixtyFourBit, out);
        out.put_u64_le(head.incarnation);
    }
    if let Some(g) = head.grain {
        encode_key(10, WireType::LengthDelimited, out);
        encode_varint(g.identity.len() as u64, out);
        out.put_slice(g.identity.as_bytes());
        let kind = g.written_kind();
        if !kind.is_empty() {
            encode_key(11, WireType::LengthDelimited, out);
            encode_varint(kind.len() as u64, out);
            out.put_slice(kind.as_bytes());
        }
        if g.kind_number != 0 {
            encode_key(12, WireType::Varint, out);
            encode_varint(g.kind_number.into(), out);
        }
    }
    if !head.trace.is_empty() {
        encode_key(13, WireType::LengthDelimited, out);
        encode_varint(head.trace.len() as u64, out);
        out.put_slice(head.trace);
    }
    Ok(())
}

/// Bytes [`append_more`] adds for a payload of `payload_len` bytes (key, length, payload).
pub fn more_len(payload_len: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(payload_len as u64) + payload_len
}

/// Appends a payload of `payload_len` bytes, which `write_payload` appends, to the tell whose
/// frame starts at `frame_at` in `out` and ends at `out`'s end (`Envelope::more`: one more
/// message for the same actor), and updates the frame's length prefix.
///
/// # Errors
/// [`FrameError::Oversized`] when the frame would grow past `max_frame`; nothing is written.
///
/// # Panics
/// When `frame_at` is not followed by a length prefix in `out`.
pub fn append_more(
    out: &mut BytesMut,
    frame_at: usize,
    payload_len: usize,
    write_payload: impl FnOnce(&mut BytesMut),
    max_frame: usize,
) -> Result<(), FrameError> {
    use prost::encoding::{encode_key, encode_varint, WireType};
    let prefix: [u8; PREFIX_LEN] = out[frame_at..frame_at + PREFIX_LEN].try_into().expect("a length prefix");
    let len = frame_len(u32::from_le_bytes(prefix) as usize + more_len(payload_len), max_frame)?;
    out.reserve(more_len(payload_len));
    encode_key(14, WireType::LengthDelimited, out);
    encode_varint(payload_len as u64, out);
    let before = out.len();
    write_payload(out);
    debug_assert_eq!(out.len() - before, payload_len, "the payload writer wrote its announced length");
    out[frame_at..frame_at + PREFIX_LEN].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

fn frame_len(n: usize, max_frame: usize) -> Result<u32, FrameError> {
    match u32::try_from(n) {
        Ok(len) if n <= max_frame => Ok(len),
        _ => Err(FrameError::Oversized { len: n as u64, max: max_frame }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn wire(bodies: &[Vec<u8>]) -> Bytes {
        let mut out = BytesMut::new();
        for b in bodies {
            encode_frame(b, &mut out, DEFAULT_MAX_FRAME).unwrap();
        }
        out.freeze()
    }

    /// Feeds `wire` cut at `cuts`, draining after each chunk.
    fn decode(wire: &Bytes, cuts: &[usize], max: usize) -> (Vec<Bytes>, Result<(), FrameError>) {
        let mut dec = FrameDecoder::new(max);
        let mut frames = vec![];
        let mut at = 0;
        let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        bounds.push(wire.len());
        bounds.sort_unstable();
        for b in bounds {
            dec.push(wire.slice(at..b));
            at = b;
            loop {
                match dec.next_frame() {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => break,
                    Err(e) => return (frames, Err(e)),
                }
            }
        }
        (frames, dec.finish())
    }

    proptest! {
        #[test]
        fn any_chunking_yields_the_same_frames(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20),
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
        ) {
            let w = wire(&bodies);
            let (frames, end) = decode(&w, &cuts, DEFAULT_MAX_FRAME);
            prop_assert_eq!(end, Ok(()));
            prop_assert_eq!(frames.iter().map(|f| f.to_vec()).collect::<Vec<_>>(), bodies);
        }

        #[test]
        fn a_cut_stream_is_truncated_never_a_frame_too_many(
            bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 1..10),
            cut in any::<usize>(),
        ) {
            let w = wire(&bodies);
            let cut = cut % w.len();
            let (frames, end) = decode(&w.slice(..cut), &[], DEFAULT_MAX_FRAME);
            // Whatever decoded is a prefix of what was sent; the tail is reported.
            prop_assert!(frames.len() <= bodies.len());
            for (f, b) in frames.iter().zip(&bodies) {
                prop_assert_eq!(&f[..], &b[..]);
            }
            let whole: usize = bodies[..frames.len()].iter().map(|b| b.len() + PREFIX_LEN).sum();
            if whole == cut {
                prop_assert_eq!(end, Ok(()));
            } else {
                prop_assert_eq!(end, Err(FrameError::Truncated { buffered: cut - whole }));
            }
        }

        #[test]
        fn garbage_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..20)) {
            let mut dec = FrameDecoder::new(256);
            for c in chunks {
                dec.push(Bytes::from(c));
                while let Ok(Some(f)) = dec.next_frame() {
                    prop_assert!(f.len() <= 256);
                }
            }
            let _ = dec.finish();
        }
    }

    #[test]
    fn an_oversized_prefix_fails_at_once_and_for_good() {
        let mut dec = FrameDecoder::new(16);
        let mut w = BytesMut::new();
        w.put_u32_le(17);
        dec.push(w.freeze());
        let e = FrameError::Oversized { len: 17, max: 16 };
        assert_eq!(dec.next_frame(), Err(e.clone()));
        dec.push(Bytes::from_static(&[0; 17]));
        assert_eq!(dec.next_frame(), Err(e.clone()));
        assert_eq!(dec.finish(), Err(e));
    }

    #[test]
    fn an_oversized_prefix_split_over_chunks_fails_too() {
        let mut dec = FrameDecoder::new(16);
        dec.push(Bytes::from_static(&[0xff, 0xff]));
        assert_eq!(dec.next_frame(), Ok(None));
        dec.push(Bytes::from_static(&[0xff, 0xff]));
        assert_eq!(dec.next_frame(), Err(FrameError::Oversized { len: u32::MAX.into(), max: 16 }));
    }

    #[test]
    fn frames_are_slices_of_the_chunk_not_copies() {
        let w = wire(&[vec![1; 100], vec![2; 100]]);
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        dec.push(w.clone());
        let f = dec.next_frame().unwrap().unwrap();
        assert_eq!(f.as_ptr(), w[PREFIX_LEN..].as_ptr());
    }

    proptest! {
        #[test]
        fn in_place_envelopes_match_the_generated_encoding(
            target in any::<u64>(),
            correlation_id in any::<u64>(),
            kind in 0i32..6,
            manifest in "[a-z.]{0,30}",
            payload in proptest::collection::vec(any::<u8>(), 0..200),
            incarnation in prop_oneof![Just(0u64), any::<u64>()],
            epoch in prop_oneof![Just(0u64), any::<u64>()],
            grain in proptest::option::of(("[a-z]{0,12}", "[a-z0-9-]{0,40}", prop_oneof![Just(0u32), any::<u32>()])),
            trace in prop_oneof![Just(Vec::new()), proptest::collection::vec(any::<u8>(), 25)],
        ) {
            use crate::v1::{Envelope, Kind};
            let kind = Kind::try_from(kind).unwrap();
            let env = Envelope {
                target,
                correlation_id,
                kind: kind.into(),
                manifest: manifest.clone(),
                payload: payload.clone().into(),
                incarnation,
                epoch,
                grain: grain.as_ref().map(|(_, identity, _)| identity.clone().into_bytes()),
                grain_kind: match &grain {
                    Some((kind, _, 0)) => kind.clone().into_bytes(),
                    _ => Vec::new(),
                },
                grain_kind_number: grain.as_ref().map_or(0, |(_, _, n)| *n),
                trace: trace.clone(),
                ..Default::default()
            };
            let mut want = BytesMut::new();
            encode_message(&env, &mut want, DEFAULT_MAX_FRAME).unwrap();
            let mut got = BytesMut::new();
            let grain = grain.as_ref().map(|(k, i, n)| GrainName { kind: k, kind_number: *n, identity: i });
            let head = Head { target, correlation_id, kind, manifest: &manifest, incarnation, epoch, grain, trace: &trace };
            encode_envelope(&head, payload.len(), |b| b.put_slice(&payload), &mut got, DEFAULT_MAX_FRAME).unwrap();
            prop_assert!(got.len() <= head.max_len(payload.len()), "{} > {}", got.len(), head.max_len(payload.len()));
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn encoding_refuses_oversized_and_writes_nothing() {
        let mut out = BytesMut::new();
        assert_eq!(encode_frame(&[0; 9], &mut out, 8), Err(FrameError::Oversized { len: 9, max: 8 }));
        assert!(out.is_empty());
        encode_frame(&[0; 8], &mut out, 8).unwrap();
        assert_eq!(out.len(), PREFIX_LEN + 8);
    }
}
