//! A plain tell read straight from its frame: the receiver's hot path.
//!
//! Most envelopes on a busy stream are tells, to a local actor or to a grain, with no sender and
//! no answer expected. [`PlainTell::read`] reads such an envelope's few fields where they lie in
//! the frame (the manifest and the grain's names borrowed, the payload a slice of the frame)
//! instead of building an [`Envelope`] (a `String` for the manifest, a vector for each of the
//! grain's names, a reference count for every byte field). It follows protobuf's rules as
//! prost's decoder does: fields in any order, the last of a repeated field wins, unknown fields
//! skipped. Anything else (another kind, a sender or a trace, a field of the wrong wire type, a
//! manifest that is not UTF-8, a truncated field) is not a plain tell: the caller decodes the
//! whole envelope, which yields the envelope or its error exactly as before.
//!
//! A plain tell may carry further payloads for the same actor (`Envelope::more`: a batch);
//! [`PlainTell::payloads`] yields them all, in order, as slices of the frame.

use crate::v1::{Envelope, Kind};
use bytes::{Buf, Bytes};
use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};

/// A tell with no sender and no trace, as it lies in its frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainTell<'a> {
    /// The actor on the receiving node (`Envelope::target`; 0 for a grain).
    pub target: u64,
    /// The receiving node's incarnation the target belongs to (0: not said).
    pub incarnation: u64,
    /// The payload's type.
    pub manifest: &'a str,
    /// The encoded payload (a slice of the frame: no copy).
    pub payload: Bytes,
    /// The topology epoch the sender knew (`Envelope::epoch`; grain messages carry it).
    pub epoch: u64,
    /// The grain it is for, if it is for one.
    pub grain: Option<GrainTo<'a>>,
    /// How many further payloads follow `payload` (`Envelope::more`: a batch of tells to the
    /// same actor or grain).
    pub more: usize,
    /// The frame, for the further payloads.
    frame: &'a Bytes,
    /// Where the first further payload's field starts in the frame.
    more_at: usize,
}

/// The grain a tell is for, its names as they lie in the frame (not checked as UTF-8: the
/// receiver checks them when it has not seen them before).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrainTo<'a> {
    /// The kind's name (`Envelope::grain_kind`; empty when `kind_number` stands for it).
    pub kind: &'a [u8],
    /// The kind's number in the receiver's record (`Envelope::grain_kind_number`; 0: by name).
    pub kind_number: u32,
    /// The identity within the kind (`Envelope::grain`).
    pub identity: &'a [u8],
}

impl<'a> PlainTell<'a> {
    /// Reads `frame` (an envelope, without its length prefix) as a plain tell; `None` when it
    /// is anything else, or not well-formed (decode the whole envelope then).
    pub fn read(frame: &'a Bytes) -> Option<Self> {
        let mut buf: &[u8] = frame;
        let (mut target, mut incarnation, mut kind, mut epoch, mut kind_number) = (0, 0, 0u64, 0, 0);
        let mut manifest: &[u8] = &[];
        let mut payload = 0..0;
        let (mut grain, mut grain_kind): (Option<&[u8]>, &[u8]) = (None, &[]);
        let (mut more, mut more_at) = (0, 0);
        while buf.has_remaining() {
            let at = frame.len() - buf.remaining();
            let (tag, wire) = decode_key(&mut buf).ok()?;
            match (tag, wire) {
                (1, WireType::SixtyFourBit) if buf.remaining() >= 8 => target = buf.get_u64_le(),
                (8, WireType::SixtyFourBit) if buf.remaining() >= 8 => incarnation = buf.get_u64_le(),
                (4, WireType::Varint) => kind = decode_varint(&mut buf).ok()?,
                (7, WireType::Varint) => epoch = decode_varint(&mut buf).ok()?,
                // A `uint32`: prost keeps the low 32 bits of the varint.
                (12, WireType::Varint) => kind_number = decode_varint(&mut buf).ok()? as u32,
                (3, WireType::Varint) => {
                    decode_varint(&mut buf).ok()?;
                }
                (5 | 6 | 10 | 11, WireType::LengthDelimited) => {
                    let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                    if len > buf.remaining() {
                        return None;
                    }
                    let start = frame.len() - buf.remaining();
                    match tag {
                        5 => manifest = &buf[..len],
                        6 => payload = start..start + len,
                        10 => grain = Some(&buf[..len]),
                        _ => grain_kind = &buf[..len],
                    }
                    buf.advance(len);
                }
                (14, WireType::LengthDelimited) => {
                    let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                    if len > buf.remaining() {
                        return None;
                    }
                    if more == 0 {
                        more_at = at;
                    }
                    more += 1;
                    buf.advance(len);
                }
                // The sender (2) and a trace (13) make it more than a plain tell; so does a
                // known field of the wrong wire type (prost refuses it).
                (1..=14, _) => return None,
                _ => skip_field(wire, tag, &mut buf, DecodeContext::default()).ok()?,
            }
        }
        if i32::try_from(kind).ok()? != Kind::Tell as i32 {
            return None;
        }
        // A batch is for an actor or a grain: with neither (a tell to the node), it is
        // malformed (the whole decode leaves that to the receiver, which counts every message).
        if more > 0 && grain.is_none() && target == 0 {
            return None;
        }
        let manifest = std::str::from_utf8(manifest).ok()?;
        // The grain's kind and number are read only with a grain, as an envelope's are.
        let grain = grain.map(|identity| GrainTo { kind: grain_kind, kind_number, identity });
        let payload = frame.slice(payload);
        Some(Self { target, incarnation, manifest, payload, epoch, grain, more, frame, more_at })
    }

    /// Messages the tell carries: its payload and the further ones.
    pub fn messages(&self) -> usize {
        1 + self.more
    }

    /// Every payload, in order: `payload`, then the further ones (slices of the frame).
    pub fn payloads(&self) -> impl Iterator<Item = Bytes> + 'a {
        let (frame, mut left) = (self.frame, self.more);
        let mut buf: &[u8] = &frame[self.more_at.min(frame.len())..];
        std::iter::once(self.payload.clone()).chain(std::iter::from_fn(move || {
            // `read` checked every field of the frame: the walk cannot fail, and stops if it did.
            while left > 0 && buf.has_remaining() {
                let (tag, wire) = decode_key(&mut buf).ok()?;
                if (tag, wire) != (14, WireType::LengthDelimited) {
                    skip_field(wire, tag, &mut buf, DecodeContext::default()).ok()?;
                    continue;
                }
                let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?.min(buf.remaining());
                let start = frame.len() - buf.remaining();
                buf.advance(len);
                left -= 1;
                return Some(frame.slice(start..start + len));
            }
            None
        }))
    }

    /// The same tell as an [`Envelope`] (fields that do not matter to a tell, such as a
    /// correlation id, read as their defaults; a grain's kind and number only with a grain).
    pub fn to_envelope(&self) -> Envelope {
        let mut env = Envelope {
            incarnation: self.incarnation,
            epoch: self.epoch,
            more: self.payloads().skip(1).collect(),
            ..Envelope::tell(self.target, self.manifest, self.payload.clone())
        };
        if let Some(g) = &self.grain {
            env.grain = Some(g.identity.to_vec());
            env.grain_kind = g.kind.to_vec();
            env.grain_kind_number = g.kind_number;
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode_envelope;
    use crate::frame::{encode_envelope, GrainName, Head};
    use crate::v1::ActorAddress;
    use bytes::{BufMut, BytesMut};
    use prost::Message;

    fn body(env: &Envelope) -> Bytes {
        env.encode_to_vec().into()
    }

    #[test]
    fn a_plain_tell_reads_as_the_whole_decode_does() {
        let mut env = Envelope::tell(42, "orders.v1.Order", Bytes::from_static(b"\x08\x01"));
        env.incarnation = 7;
        let frame = body(&env);
        let t = PlainTell::read(&frame).expect("a plain tell");
        assert_eq!(
            (t.target, t.incarnation, t.manifest, &t.payload[..]),
            (42, 7, "orders.v1.Order", &b"\x08\x01"[..])
        );
        assert_eq!(t.to_envelope(), decode_envelope(frame.clone()).unwrap());
        // Empty manifest and payload, and the in-place encoder's bytes, read the same.
        let frame = body(&Envelope::tell(1, "", Bytes::new()));
        assert_eq!(PlainTell::read(&frame).unwrap().to_envelope(), decode_envelope(frame.clone()).unwrap());
        let mut out = BytesMut::new();
        let head = Head { target: 9, kind: Kind::Tell, manifest: "m", epoch: 3, ..Head::default() };
        encode_envelope(&head, 2, |b| b.put_slice(b"ab"), &mut out, 1 << 20).unwrap();
        let frame = out.freeze().slice(4..);
        let t = PlainTell::read(&frame).unwrap();
        assert_eq!((t.target, t.manifest, &t.payload[..], t.epoch, t.grain), (9, "m", &b"ab"[..], 3, None));
        assert_eq!(t.to_envelope(), decode_envelope(frame.clone()).unwrap());
    }

    #[test]
    fn a_grain_tell_reads_as_the_whole_decode_does() {
        // Named by its kind, and by its kind's number; an empty identity is still a grain.
        let by_name = GrainName { kind: "counter", identity: "c-7", kind_number: 0 };
        let by_number = GrainName { kind: "counter", identity: "", kind_number: 3 };
        for (grain, kind, number) in [(by_name, &b"counter"[..], 0), (by_number, &b""[..], 3)] {
            let mut out = BytesMut::new();
            let head =
                Head { kind: Kind::Tell, manifest: "m.N", epoch: 12, grain: Some(grain), ..Head::default() };
            encode_envelope(&head, 2, |b| b.put_slice(b"xy"), &mut out, 1 << 20).unwrap();
            let frame = out.freeze().slice(4..);
            let t = PlainTell::read(&frame).expect("a grain tell is plain");
            let to = GrainTo { kind, kind_number: number, identity: grain.identity.as_bytes() };
            assert_eq!(
                (t.target, t.manifest, &t.payload[..], t.epoch, t.grain),
                (0, "m.N", &b"xy"[..], 12, Some(to))
            );
            assert_eq!(t.to_envelope(), decode_envelope(frame.clone()).unwrap());
        }
        // A kind number past 32 bits keeps its low bits, as prost's `uint32` does.
        let mut frame =
            body(&Envelope { grain: Some(b"g".to_vec()), ..Envelope::tell(0, "a.B", Bytes::new()) });
        let mut raw = frame.to_vec();
        prost::encoding::uint64::encode(12, &((1 << 32) + 5), &mut raw);
        frame = Bytes::from(raw);
        let whole = decode_envelope(frame.clone()).unwrap();
        assert_eq!(whole.grain_kind_number, 5);
        assert_eq!(PlainTell::read(&frame).unwrap().to_envelope(), whole);
    }

    #[test]
    fn fields_in_any_order_repeated_or_unknown_read_as_prost_reads_them() {
        let env = Envelope::tell(5, "a.B", Bytes::from_static(b"xyz"));
        // The same fields twice (the last wins), then an unknown field 20 (skipped).
        let mut frame = env.encode_to_vec();
        Envelope::tell(6, "c.D", Bytes::from_static(b"uv")).encode(&mut frame).unwrap();
        prost::encoding::uint64::encode(20, &99, &mut frame);
        let frame = Bytes::from(frame);
        let whole = decode_envelope(frame.clone()).unwrap();
        assert_eq!(PlainTell::read(&frame).unwrap().to_envelope(), whole);
        assert_eq!(whole.target, 6);
    }

    #[test]
    fn anything_but_a_well_formed_plain_tell_is_left_to_the_whole_decode() {
        let tell = Envelope::tell(5, "a.B", Bytes::from_static(b"xyz"));
        let not_plain = [
            Envelope::ask(5, 1, "a.B", Bytes::new()),
            Envelope { sender: Some(ActorAddress::default()), ..tell.clone() },
            // A traced tell takes the whole decode, which keeps the trace.
            Envelope { trace: vec![1; 25], ..tell.clone() },
            Envelope { grain: Some(b"g".to_vec()), trace: vec![1; 25], ..tell.clone() },
        ];
        for env in not_plain {
            assert_eq!(PlainTell::read(&body(&env)), None, "{env:?}");
        }
        // Broken: truncated, a manifest that is not UTF-8, a known field of the wrong type.
        let whole = body(&tell);
        assert_eq!(PlainTell::read(&whole.slice(..whole.len() - 1)), None);
        let bad_utf8 = body(&Envelope { manifest: String::new(), ..tell.clone() });
        let mut bad = bad_utf8.to_vec();
        prost::encoding::bytes::encode(5, &vec![0xff, 0xfe], &mut bad);
        assert_eq!(PlainTell::read(&Bytes::from(bad)), None);
        let mut wrong_type = whole.to_vec();
        prost::encoding::uint64::encode(6, &1, &mut wrong_type);
        assert_eq!(PlainTell::read(&Bytes::from(wrong_type)), None);
    }

    #[test]
    fn a_batch_of_tells_reads_as_the_whole_decode_does() {
        use crate::frame::{append_more, more_len};
        // The in-place encoder's tell (an incarnation after its payload), three more appended.
        let mut out = BytesMut::from(&b"before"[..]);
        let head = Head { target: 9, kind: Kind::Tell, manifest: "m.N", incarnation: 4, ..Head::default() };
        encode_envelope(&head, 2, |b| b.put_slice(b"p0"), &mut out, 1 << 20).unwrap();
        for p in [&b"p1"[..], b"", b"p33"] {
            let before = out.len();
            append_more(&mut out, 6, p.len(), |b| b.put_slice(p), 1 << 20).unwrap();
            assert_eq!(out.len() - before, more_len(p.len()));
        }
        let frame = out.freeze().slice(6 + 4..);
        let t = PlainTell::read(&frame).expect("a batch is a plain tell");
        assert_eq!((t.target, t.incarnation, t.manifest, t.more, t.messages()), (9, 4, "m.N", 3, 4));
        let got: Vec<Bytes> = t.payloads().collect();
        assert_eq!(got, [&b"p0"[..], b"p1", b"", b"p33"]);
        let whole = decode_envelope(frame.clone()).unwrap();
        assert_eq!(whole.more.len(), 3);
        assert_eq!(t.to_envelope(), whole);
        // Fields after and between the further payloads (prost's own order) read the same.
        let env = Envelope {
            more: vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")],
            epoch: 5,
            ..Envelope::tell(3, "x.Y", Bytes::from_static(b"z"))
        };
        let mut raw = env.encode_to_vec();
        prost::encoding::uint64::encode(20, &7, &mut raw);
        prost::encoding::bytes::encode(14, &b"d".to_vec(), &mut raw);
        let frame = Bytes::from(raw);
        let t = PlainTell::read(&frame).unwrap();
        assert_eq!(t.payloads().collect::<Vec<_>>(), [&b"z"[..], b"a", b"bc", b"d"]);
        assert_eq!(t.to_envelope(), decode_envelope(frame.clone()).unwrap());
        // The frame's maximum holds for the batch as a whole: nothing is appended past it.
        let mut out = BytesMut::new();
        encode_envelope(&head, 2, |b| b.put_slice(b"p0"), &mut out, 64).unwrap();
        let full = out.len();
        assert!(append_more(&mut out, 0, 64, |b| b.put_slice(&[0; 64]), 64).is_err());
        assert_eq!(out.len(), full, "a refused payload writes nothing");
    }

    #[test]
    fn a_batch_for_neither_an_actor_nor_a_grain_is_left_to_the_whole_decode() {
        let more = vec![Bytes::from_static(b"m")];
        let tell = Envelope { more: more.clone(), ..Envelope::tell(5, "a.B", Bytes::from_static(b"xyz")) };
        // A grain's batch reads as one.
        let grain = Envelope { grain: Some(b"g".to_vec()), target: 0, ..tell.clone() };
        let frame = body(&grain);
        let t = PlainTell::read(&frame).expect("a grain's batch is plain");
        assert_eq!((t.messages(), t.to_envelope()), (2, decode_envelope(frame.clone()).unwrap()));
        for env in [
            Envelope { target: 0, ..tell.clone() },
            Envelope { kind: Kind::Ask as i32, correlation_id: 1, ..tell.clone() },
        ] {
            let frame = body(&env);
            assert_eq!(PlainTell::read(&frame), None, "{env:?}");
            assert_eq!(decode_envelope(frame).unwrap().more, more, "the whole decode keeps them");
        }
        // A further payload cut short, or of the wrong wire type.
        let whole = body(&tell);
        assert_eq!(PlainTell::read(&whole.slice(..whole.len() - 1)), None);
        assert!(decode_envelope(whole.slice(..whole.len() - 1)).is_err());
        let mut wrong_type = body(&Envelope::tell(5, "a.B", Bytes::new())).to_vec();
        prost::encoding::uint64::encode(14, &1, &mut wrong_type);
        assert_eq!(PlainTell::read(&Bytes::from(wrong_type)), None);
    }

    proptest::proptest! {
        #[test]
        fn any_tell_reads_as_the_whole_decode_does(
            target in proptest::prelude::any::<u64>(),
            incarnation in proptest::prelude::any::<u64>(),
            epoch in proptest::prelude::any::<u64>(),
            manifest in "[a-zA-Z0-9._é]{0,24}",
            payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80),
            grain in proptest::option::of((
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..20),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
                proptest::prelude::any::<u32>(),
            )),
            more in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 0..4),
        ) {
            let mut env = Envelope { incarnation, epoch, ..Envelope::tell(target, &manifest, Bytes::from(payload)) };
            let to_grain = grain.is_some();
            if let Some((identity, kind, number)) = grain {
                env.grain = Some(identity);
                env.grain_kind = kind;
                env.grain_kind_number = number;
            }
            if to_grain || target != 0 {
                // A batch: only on a tell to an actor or a grain.
                env.more = more.into_iter().map(Bytes::from).collect();
            }
            let frame = body(&env);
            let t = PlainTell::read(&frame).expect("every tell without a sender or a trace is plain");
            proptest::prop_assert_eq!(t.to_envelope(), decode_envelope(frame.clone()).unwrap());
        }

        #[test]
        fn damaged_tells_read_as_plain_only_when_they_decode_as_tells(
            at in proptest::prelude::any::<proptest::sample::Index>(),
            with in proptest::prelude::any::<u8>(),
            cut in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            // A grain tell with every field a plain tell reads, one byte replaced and the end cut.
            let env = Envelope {
                incarnation: 9,
                epoch: 300,
                grain: Some(b"id".to_vec()),
                grain_kind: b"kind".to_vec(),
                grain_kind_number: 2,
                ..Envelope::tell(7, "a.B", Bytes::from_static(b"\x08\x96\x01"))
            };
            let mut bytes = body(&env).to_vec();
            let i = at.index(bytes.len());
            bytes[i] = with;
            bytes.truncate(bytes.len() - cut.index(4));
            let frame = Bytes::from(bytes);
            if let Some(t) = PlainTell::read(&frame) {
                let whole = decode_envelope(frame.clone()).expect("what reads as a tell decodes");
                proptest::prop_assert_eq!(whole.kind(), Kind::Tell);
                proptest::prop_assert!(whole.sender.is_none() && whole.trace.is_empty());
                let mine = t.to_envelope();
                proptest::prop_assert_eq!(
                    (mine.target, mine.incarnation, mine.epoch, &mine.manifest, &mine.payload, &mine.grain),
                    (whole.target, whole.incarnation, whole.epoch, &whole.manifest, &whole.payload, &whole.grain)
                );
                if whole.grain.is_some() {
                    proptest::prop_assert_eq!(
                        (&mine.grain_kind, mine.grain_kind_number),
                        (&whole.grain_kind, whole.grain_kind_number)
                    );
                }
            }
        }
    }
}
