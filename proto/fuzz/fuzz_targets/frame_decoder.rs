//! The frame decoder on arbitrary bytes cut into arbitrary chunks: it never panics, never
//! returns a frame over the maximum, and accounts for every byte (frames + prefixes + what is
//! still buffered = what was pushed), until it reports an oversized prefix.
#![no_main]

use bytes::Bytes;
use corelane_proto::frame::{FrameDecoder, PREFIX_LEN};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1024;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the chunk length; the rest is the stream.
    let Some((&cut, stream)) = data.split_first() else { return };
    let cut = usize::from(cut).max(1);
    let mut dec = FrameDecoder::new(MAX);
    let mut taken = 0;
    for chunk in stream.chunks(cut) {
        dec.push(Bytes::copy_from_slice(chunk));
        loop {
            match dec.next_frame() {
                Ok(Some(f)) => {
                    assert!(f.len() <= MAX);
                    taken += PREFIX_LEN + f.len();
                }
                Ok(None) => break,
                Err(_) => {
                    assert!(dec.next_frame().is_err() && dec.finish().is_err());
                    return;
                }
            }
        }
    }
    assert_eq!(taken + dec.buffered(), stream.len());
    assert_eq!(dec.finish().is_ok(), dec.buffered() == 0);
});
