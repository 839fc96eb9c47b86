//! Envelope, system-message and error decoding on arbitrary bytes: an error or a value, never a
//! panic; a decoded envelope's kind is a known one and it encodes again; what reads as a plain
//! tell (a batch too) decodes as the same tell.
#![no_main]

use bytes::Bytes;
use corelane_proto::tell::PlainTell;
use corelane_proto::v1::Kind;
use corelane_proto::{decode_envelope, decode_error, decode_system};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    let _ = decode_system(frame.clone());
    let _ = decode_error(frame.clone());
    if let Some(t) = PlainTell::read(&frame) {
        let whole = decode_envelope(frame.clone()).expect("a plain tell decodes");
        assert_eq!(t.payloads().count(), t.messages());
        assert_eq!((t.target, &t.payload, &t.more), (whole.target, &whole.payload, &whole.more.len()));
        assert_eq!(t.payloads().skip(1).collect::<Vec<_>>(), whole.more);
    }
    if let Ok(env) = decode_envelope(frame) {
        assert_ne!(env.kind(), Kind::Unspecified);
        let again = decode_envelope(env.encode_to_vec().into()).expect("re-encoded envelope decodes");
        assert_eq!(again, env);
    }
});
