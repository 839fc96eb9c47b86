//! Envelopes: how they are built, and how a frame becomes one (decoded, then checked).

use crate::v1::{system_message::Body, Envelope, ErrorCode, Kind, RemoteError, SystemMessage};
use bytes::Bytes;
use prost::Message;

/// A frame that is not a usable envelope (or a payload that is not a usable system message or
/// error). The transport answers it with an error where someone waits, and otherwise counts it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The bytes are not the protobuf message they should be.
    #[error("malformed {what}: {source}")]
    Malformed {
        /// Which message: "envelope", "system message" or "error".
        what: &'static str,
        /// What prost said.
        source: prost::DecodeError,
    },
    /// The envelope's kind is unspecified or unknown to this version.
    #[error("envelope of unknown kind {0}")]
    UnknownKind(i32),
    /// A system message without a body (or with one this version does not know).
    #[error("system message without a known body")]
    EmptySystemMessage,
}

/// Decodes one frame into an envelope whose kind is known. The payload is a slice of `frame`,
/// not a copy.
///
/// # Errors
/// [`EnvelopeError::Malformed`] for bytes that do not decode, [`EnvelopeError::UnknownKind`]
/// for an unspecified or unknown kind.
pub fn decode_envelope(frame: Bytes) -> Result<Envelope, EnvelopeError> {
    let env =
        Envelope::decode(frame).map_err(|source| EnvelopeError::Malformed { what: "envelope", source })?;
    match Kind::try_from(env.kind) {
        Ok(Kind::Unspecified) | Err(_) => Err(EnvelopeError::UnknownKind(env.kind)),
        Ok(_) => Ok(env),
    }
}

/// Decodes the payload of a SYSTEM envelope (or of a REPLY to a system request).
///
/// # Errors
/// [`EnvelopeError::Malformed`], or [`EnvelopeError::EmptySystemMessage`] when no known body
/// is set.
pub fn decode_system(payload: Bytes) -> Result<Body, EnvelopeError> {
    SystemMessage::decode(payload)
        .map_err(|source| EnvelopeError::Malformed { what: "system message", source })?
        .body
        .ok_or(EnvelopeError::EmptySystemMessage)
}

/// Decodes the payload of an ERROR envelope.
///
/// # Errors
/// [`EnvelopeError::Malformed`].
pub fn decode_error(payload: Bytes) -> Result<RemoteError, EnvelopeError> {
    RemoteError::decode(payload).map_err(|source| EnvelopeError::Malformed { what: "error", source })
}

/// The longest error detail sent: a few lines for people. Longer ones are cut, marked with `…`.
pub const MAX_ERROR_DETAIL: usize = 256;

/// Cuts `detail` to at most `MAX_ERROR_DETAIL` bytes, at a character boundary.
fn truncate_detail(detail: &mut String) {
    if detail.len() > MAX_ERROR_DETAIL {
        let mut end = MAX_ERROR_DETAIL - '…'.len_utf8();
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
}

impl Envelope {
    /// A tell of `payload` (of type `manifest`) to actor `target` of the receiving node.
    pub fn tell(target: u64, manifest: impl Into<String>, payload: Bytes) -> Self {
        Self { target, kind: Kind::Tell.into(), manifest: manifest.into(), payload, ..Default::default() }
    }

    /// An ask: like a tell, answered by a reply or an error with `correlation_id`.
    pub fn ask(target: u64, correlation_id: u64, manifest: impl Into<String>, payload: Bytes) -> Self {
        Self {
            target,
            correlation_id,
            kind: Kind::Ask.into(),
            manifest: manifest.into(),
            payload,
            ..Default::default()
        }
    }

    /// The reply to the ask (or system request) `correlation_id`.
    pub fn reply(correlation_id: u64, manifest: impl Into<String>, payload: Bytes) -> Self {
        Self {
            correlation_id,
            kind: Kind::Reply.into(),
            manifest: manifest.into(),
            payload,
            ..Default::default()
        }
    }

    /// The failure of the ask (or system request) `correlation_id`. The detail is cut to
    /// [`MAX_ERROR_DETAIL`] bytes (at a character boundary): an error never echoes back more
    /// than that of what it was given.
    pub fn error(correlation_id: u64, code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::error_at(correlation_id, code, detail, 0)
    }

    /// As [`Envelope::error`], with the refusing member's topology epoch (grain refusals).
    pub fn error_at(correlation_id: u64, code: ErrorCode, detail: impl Into<String>, epoch: u64) -> Self {
        let mut detail = detail.into();
        truncate_detail(&mut detail);
        let err = RemoteError { code: code.into(), detail, epoch };
        Self {
            correlation_id,
            kind: Kind::Error.into(),
            payload: err.encode_to_vec().into(),
            ..Default::default()
        }
    }

    /// A system message for `target` (0: the node), a request when `correlation_id` is not 0.
    pub fn system(target: u64, correlation_id: u64, body: Body) -> Self {
        let msg = SystemMessage { body: Some(body) };
        Self {
            target,
            correlation_id,
            kind: Kind::System.into(),
            payload: msg.encode_to_vec().into(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{encode_message, FrameDecoder, DEFAULT_MAX_FRAME};
    use crate::v1::{ActorAddress, Lookup};
    use bytes::BytesMut;
    use proptest::prelude::*;

    fn roundtrip(env: &Envelope) -> Envelope {
        let mut out = BytesMut::new();
        encode_message(env, &mut out, DEFAULT_MAX_FRAME).unwrap();
        let mut dec = FrameDecoder::new(DEFAULT_MAX_FRAME);
        dec.push(out.freeze());
        decode_envelope(dec.next_frame().unwrap().unwrap()).unwrap()
    }

    #[test]
    fn every_kind_roundtrips() {
        let mut tell = Envelope::tell(7, "bench.Ping", Bytes::from_static(&[1; 64]));
        tell.sender = Some(ActorAddress { node: "127.0.0.1:4000".into(), id: 9, incarnation: 5 });
        tell.incarnation = 11;
        tell.epoch = 3;
        for env in [
            tell,
            Envelope::ask(7, 1, "bench.Ping", Bytes::from_static(b"x")),
            Envelope::reply(1, "bench.Pong", Bytes::new()),
            Envelope::error(1, ErrorCode::UnknownManifest, "no codec for bench.Ping"),
            Envelope::system(0, 2, Body::Lookup(Lookup { name: "ledger".into() })),
        ] {
            assert_eq!(roundtrip(&env), env);
        }
    }

    #[test]
    fn system_and_error_payloads_decode() {
        let env = roundtrip(&Envelope::system(0, 2, Body::Lookup(Lookup { name: "ledger".into() })));
        assert_eq!(decode_system(env.payload).unwrap(), Body::Lookup(Lookup { name: "ledger".into() }));
        let env = roundtrip(&Envelope::error(1, ErrorCode::NotFound, "ledger"));
        let err = decode_error(env.payload).unwrap();
        assert_eq!((err.code(), err.detail.as_str()), (ErrorCode::NotFound, "ledger"));
    }

    #[test]
    fn unknown_kinds_and_empty_bodies_are_errors() {
        let mut env = Envelope::tell(1, "m", Bytes::new());
        env.kind = 99;
        let frame: Bytes = env.encode_to_vec().into();
        assert_eq!(decode_envelope(frame), Err(EnvelopeError::UnknownKind(99)));
        assert_eq!(decode_envelope(Bytes::new()), Err(EnvelopeError::UnknownKind(0)));
        let empty: Bytes = SystemMessage { body: None }.encode_to_vec().into();
        assert_eq!(decode_system(empty), Err(EnvelopeError::EmptySystemMessage));
    }

    #[test]
    fn error_details_are_bounded_at_a_character_boundary() {
        let long = "é".repeat(4 << 20);
        let env = roundtrip(&Envelope::error(1, ErrorCode::NotFound, long));
        assert!(env.encoded_len() < 2 * MAX_ERROR_DETAIL, "{}", env.encoded_len());
        let err = decode_error(env.payload).unwrap();
        assert!(err.detail.len() <= MAX_ERROR_DETAIL && err.detail.ends_with('…'));
        let short = roundtrip(&Envelope::error(1, ErrorCode::NotFound, "short"));
        assert_eq!(decode_error(short.payload).unwrap().detail, "short");
    }

    #[test]
    fn garbage_is_malformed() {
        let e = decode_envelope(Bytes::from_static(&[0xff; 12])).unwrap_err();
        assert!(matches!(e, EnvelopeError::Malformed { what: "envelope", .. }), "{e}");
    }

    #[test]
    fn the_payload_is_a_slice_of_the_frame() {
        let frame: Bytes = Envelope::tell(7, "m", Bytes::from(vec![5; 64])).encode_to_vec().into();
        let env = decode_envelope(frame.clone()).unwrap();
        let off = env.payload.as_ptr() as usize - frame.as_ptr() as usize;
        assert!(off < frame.len(), "payload was copied");
    }

    #[test]
    fn a_64_byte_tell_costs_little_on_the_wire() {
        let env = Envelope::tell(u64::MAX, "bench.Payload", Bytes::from(vec![0; 64]));
        // target 9 + kind 2 + manifest 15 + payload 66: 92 bytes, 96 with the prefix.
        assert_eq!(env.encoded_len(), 92);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(env) = decode_envelope(Bytes::from(bytes)) {
                let _ = decode_system(env.payload.clone());
                let _ = decode_error(env.payload);
            }
        }
    }
}
