//! A node's inbound stream, sans-IO: arbitrary bytes cut into arbitrary chunks go through the
//! `StreamReader` the transport uses. Never a panic; a Hello comes first and once; a stream
//! that broke stays broken with the same error; what is held is never more than what came.
#![no_main]

use bytes::Bytes;
use corelane_proto::stream::{Inbound, StreamReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else { return };
    // A small maximum, so the oversized path is reached often.
    let max = 16 + (first as usize) * 64;
    let mut r = StreamReader::new(max);
    let mut pushed = 0usize;
    let mut hellos = 0;
    let mut broken = None;
    while let Some((&len, tail)) = rest.split_first() {
        let n = (len as usize).min(tail.len());
        let (chunk, tail) = tail.split_at(n);
        rest = tail;
        r.push(Bytes::copy_from_slice(chunk));
        pushed += chunk.len();
        loop {
            match r.next() {
                Ok(None) => break,
                Ok(Some(Inbound::Hello(_))) => {
                    hellos += 1;
                    assert_eq!(hellos, 1, "one hello per stream");
                }
                Ok(Some(_)) => assert_eq!(hellos, 1, "nothing before the hello"),
                Err(e) => {
                    if let Some(b) = &broken {
                        assert_eq!(b, &e, "a broken stream keeps its error");
                    }
                    broken = Some(e);
                    break;
                }
            }
        }
        assert!(r.buffered() <= pushed);
        if broken.is_some() {
            assert_eq!(r.next().err(), broken, "a broken stream stays broken");
        }
    }
    let _ = r.finish();
});
