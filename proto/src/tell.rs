//! A plain tell read straight from its frame: the receiver's hot path.
//!
//! Most envelopes on a busy stream are tells to a local actor with no sender, no grain and no
//! answer expected. [`PlainTell::read`] reads such an envelope's few fields where they lie in
//! the frame (the manifest borrowed, the payload a slice of the frame) instead of building an
//! [`Envelope`] (a `String` for the manifest, a reference count for every byte field). It
//! follows protobuf's rules as prost's decoder does: fields in any order, the last of a repeated
//! scalar wins, unknown fields skipped. Anything else (another kind, a sender or grain field, a
//! field of the wrong wire type, a manifest that is not UTF-8, a truncated field) is not a
//! plain tell: the caller decodes the whole envelope, which yields the envelope or its error
//! exactly as before.

use crate::v1::{Envelope, Kind};
use bytes::{Buf, Bytes};
use prost::encoding::{decode_key, decode_varint, skip_field, DecodeContext, WireType};

/// A tell with no sender and no grain, as it lies in its frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainTell<'a> {
    /// The actor on the receiving node (`Envelope::target`).
    pub target: u64,
    /// The receiving node's incarnation the target belongs to (0: not said).
    pub incarnation: u64,
    /// The payload's type.
    pub manifest: &'a str,
    /// The encoded payload (a slice of the frame: no copy).
    pub payload: Bytes,
}

impl<'a> PlainTell<'a> {
    /// Reads `frame` (an envelope, without its length prefix) as a plain tell; `None` when it
    /// is anything else, or not well-formed (decode the whole envelope then).
    pub fn read(frame: &'a Bytes) -> Option<Self> {
        let mut buf: &[u8] = frame;
        let (mut target, mut incarnation, mut kind) = (0, 0, 0u64);
        let mut manifest: &[u8] = &[];
        let mut payload = 0..0;
        while buf.has_remaining() {
            let (tag, wire) = decode_key(&mut buf).ok()?;
            match (tag, wire) {
                (1, WireType::SixtyFourBit) if buf.remaining() >= 8 => target = buf.get_u64_le(),
                (8, WireType::SixtyFourBit) if buf.remaining() >= 8 => incarnation = buf.get_u64_le(),
                (4, WireType::Varint) => kind = decode_varint(&mut buf).ok()?,
                (3 | 7 | 12, WireType::Varint) => {
                    decode_varint(&mut buf).ok()?;
                }
                (5 | 6 | 11, WireType::LengthDelimited) => {
                    let len = usize::try_from(decode_varint(&mut buf).ok()?).ok()?;
                    if len > buf.remaining() {
                        return None;
                    }
                    let start = frame.len() - buf.remaining();
                    match tag {
                        5 => manifest = &buf[..len],
                        6 => payload = start..start + len,
                        _ => {} // grain_kind: no grain without `grain` (10), checked below
                    }
                    buf.advance(len);
                }
                // The sender (2), the grain (10) and a trace (13) make it more than a plain
                // tell; so does a known field of the wrong wire type (prost refuses it).
                (1..=13, _) => return None,
                _ => skip_field(wire, tag, &mut buf, DecodeContext::default()).ok()?,
            }
        }
        if i32::try_from(kind).ok()? != Kind::Tell as i32 {
            return None;
        }
        let manifest = std::str::from_utf8(manifest).ok()?;
        Some(Self { target, incarnation, manifest, payload: frame.slice(payload) })
    }

    /// The same tell as an [`Envelope`] (without an epoch or a correlation id, which only grain
    /// messages and asks use).
    pub fn to_envelope(&self) -> Envelope {
        Envelope {
            incarnation: self.incarnation,
            ..Envelope::tell(self.target, self.manifest, self.payload.clone())
        }
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
        assert_eq!((t.target, t.manifest, &t.payload[..]), (9, "m", &b"ab"[..]));
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
            Envelope { grain: Some(b"g".to_vec()), ..tell.clone() },
            // A traced tell takes the whole decode, which keeps the trace.
            Envelope { trace: vec![1; 25], ..tell.clone() },
        ];
        for env in not_plain {
            assert_eq!(PlainTell::read(&body(&env)), None, "{env:?}");
        }
        let mut out = BytesMut::new();
        let grain = GrainName { kind: "k", identity: "", kind_number: 0 };
        let head = Head { target: 0, kind: Kind::Tell, manifest: "m", grain: Some(grain), ..Head::default() };
        encode_envelope(&head, 0, |_| {}, &mut out, 1 << 20).unwrap();
        assert_eq!(PlainTell::read(&out.freeze().slice(4..)), None, "an empty grain identity is a grain");
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
}
