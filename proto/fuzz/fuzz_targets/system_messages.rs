//! System-message and error decoding on arbitrary bytes: an error or a value, never a panic; a
//! decoded message encodes again to an equal one; a Hello is judged by the stream reader the
//! same way whatever else it holds.
#![no_main]

use bytes::{Bytes, BytesMut};
use corelane_proto::frame::encode_message;
use corelane_proto::stream::{Inbound, StreamError, StreamReader};
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{Envelope, SystemMessage};
use corelane_proto::{decode_error, decode_system};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(err) = decode_error(bytes.clone()) {
        assert_eq!(decode_error(err.encode_to_vec().into()).unwrap(), err);
    }
    let Ok(body) = decode_system(bytes) else { return };
    let again = SystemMessage { body: Some(body.clone()) }.encode_to_vec();
    assert_eq!(decode_system(again.into()).unwrap(), body);
    // Whatever the body, as the first frame of a stream it is a Hello or the stream is refused.
    let mut frame = BytesMut::new();
    encode_message(&Envelope::system(0, 0, body.clone()), &mut frame, usize::MAX).unwrap();
    let mut r = StreamReader::new(1 << 20);
    r.push(frame.freeze());
    match (r.next(), &body) {
        (Ok(Some(Inbound::Hello(h))), Body::Hello(sent)) => {
            assert_eq!(h.incarnation, sent.incarnation);
            assert_eq!(sent.node.parse(), Ok(h.node));
        }
        (Err(StreamError::NoHello), _) => {}
        (other, _) => panic!("unexpected {other:?} for {body:?}"),
    }
});
