//! One inbound stream of a connection, sans-IO: chunks in; the peer's `Hello`, then its
//! envelopes, out.
//!
//! Every stream a node opens begins with a `Hello` saying who speaks (its advertised address and
//! incarnation) and which wire version it speaks. The reader checks that, then yields each
//! envelope. What it cannot use is sorted by how bad it is:
//! - a frame that is not a usable envelope after the `Hello` is skipped
//!   ([`Inbound::Skipped`]): its frame was intact, the stream goes on;
//! - a stream that does not begin with a valid `Hello`, or a frame over the maximum, is beyond
//!   repair ([`StreamError`]): the transport closes the connection.
//!
//! The transport owns the clock: [`StreamReader::in_frame`] tells it when a frame has begun and
//! not ended, so it can bound how long one may take.

use crate::envelope::{decode_envelope, decode_system, EnvelopeError};
use crate::frame::{FrameDecoder, FrameError};
use crate::tell::PlainTell;
use crate::v1::system_message::Body;
use crate::v1::{Envelope, Kind};
use crate::WIRE_VERSION;
use bytes::Bytes;
use std::net::SocketAddr;
use std::ops::ControlFlow;

/// Who speaks on a stream, as its `Hello` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerHello {
    /// The speaker's advertised address.
    pub node: SocketAddr,
    /// The speaker's incarnation (chosen at random when it started).
    pub incarnation: u64,
    /// The incarnation of the receiving node the stream's envelopes are meant for (0: the
    /// speaker did not know it).
    pub addressed: u64,
}

/// What a stream yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound<'a> {
    /// The stream's first frame: who speaks. Yielded once.
    Hello(PeerHello),
    /// A checked envelope (its kind is known).
    Envelope(Envelope),
    /// A plain tell, read where it lies ([`StreamReader::drain`] only; `next` yields it as an
    /// [`Inbound::Envelope`]).
    Tell(PlainTell<'a>),
    /// A frame that is not a usable envelope; the stream goes on.
    Skipped(EnvelopeError),
}

impl Inbound<'_> {
    /// The same, owning what it holds: a plain tell becomes its [`Envelope`].
    pub fn into_owned(self) -> Inbound<'static> {
        match self {
            Inbound::Tell(t) => Inbound::Envelope(t.to_envelope()),
            Inbound::Hello(h) => Inbound::Hello(h),
            Inbound::Envelope(e) => Inbound::Envelope(e),
            Inbound::Skipped(e) => Inbound::Skipped(e),
        }
    }
}

/// A stream beyond repair: the connection it came on is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A frame over the maximum.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The first frame is not a `Hello` of this wire version with a valid address.
    #[error("the stream does not begin with a valid Hello")]
    NoHello,
}

/// Reads one stream: see the module documentation.
#[derive(Debug)]
pub struct StreamReader {
    dec: FrameDecoder,
    hello: Option<PeerHello>,
    failed: Option<StreamError>,
}

impl StreamReader {
    /// A reader that refuses frames longer than `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self { dec: FrameDecoder::new(max_frame), hello: None, failed: None }
    }

    /// Hands over the next chunk of the stream.
    pub fn push(&mut self, chunk: Bytes) {
        self.dec.push(chunk);
    }

    /// The next thing the stream says, `None` until more bytes arrive.
    ///
    /// # Errors
    /// A [`StreamError`] when the stream is beyond repair; every later call returns it again.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Inbound<'static>>, StreamError> {
        let mut out = None;
        self.drain(|x| {
            out = Some(x.into_owned());
            ControlFlow::Break(())
        })?;
        Ok(out)
    }

    /// Hands everything complete to `f`, in order, until `f` breaks or nothing complete is
    /// left: the same as calling [`StreamReader::next`] in a loop, without moving each
    /// envelope through the return value, and handing plain tells over as they lie in their
    /// frame ([`Inbound::Tell`]; the transport's hot path). Returns how many envelopes (plain
    /// tells included) were handed over.
    ///
    /// # Errors
    /// As [`StreamReader::next`]; what came before the error was handed over.
    pub fn drain(&mut self, mut f: impl FnMut(Inbound<'_>) -> ControlFlow<()>) -> Result<usize, StreamError> {
        let mut envelopes = 0;
        loop {
            if let Some(e) = &self.failed {
                return Err(e.clone());
            }
            let frame = match self.dec.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(envelopes),
                Err(e) => return Err(self.fail(StreamError::Frame(e))),
            };
            let flow = if self.hello.is_none() {
                match decode_envelope(frame).ok().as_ref().and_then(hello) {
                    Some(h) => {
                        self.hello = Some(h);
                        f(Inbound::Hello(h))
                    }
                    None => return Err(self.fail(StreamError::NoHello)),
                }
            } else if let Some(t) = PlainTell::read(&frame) {
                envelopes += 1;
                f(Inbound::Tell(t))
            } else {
                match decode_envelope(frame) {
                    Ok(env) => {
                        envelopes += 1;
                        f(Inbound::Envelope(env))
                    }
                    Err(e) => f(Inbound::Skipped(e)),
                }
            };
            if flow.is_break() {
                return Ok(envelopes);
            }
        }
    }

    /// Who speaks, once the `Hello` was read.
    pub fn peer(&self) -> Option<PeerHello> {
        self.hello
    }

    /// Bytes received and not yet returned (the unfinished frame, if any).
    pub fn buffered(&self) -> usize {
        self.dec.buffered()
    }

    /// Whether a frame has begun and not ended.
    pub fn in_frame(&self) -> bool {
        self.dec.buffered() > 0
    }

    /// Tells the reader the stream has ended.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when it ended inside a frame (that frame is lost).
    pub fn finish(&self) -> Result<(), FrameError> {
        self.dec.finish()
    }

    fn fail(&mut self, e: StreamError) -> StreamError {
        self.failed = Some(e.clone());
        e
    }
}

/// The speaker in a `Hello` envelope of this wire version.
fn hello(env: &Envelope) -> Option<PeerHello> {
    if env.kind() != Kind::System {
        return None;
    }
    match decode_system(env.payload.clone()) {
        Ok(Body::Hello(h)) if h.version == WIRE_VERSION => {
            Some(PeerHello { node: h.node.parse().ok()?, incarnation: h.incarnation, addressed: h.addressed })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{encode_frame, encode_message, DEFAULT_MAX_FRAME};
    use crate::v1::{Hello, Lookup};
    use bytes::BytesMut;
    use proptest::prelude::*;

    fn hello_frame(node: &str, version: u32) -> Vec<u8> {
        let env = Envelope::system(
            0,
            0,
            Body::Hello(Hello { node: node.into(), version, incarnation: 7, addressed: 0 }),
        );
        let mut b = BytesMut::new();
        encode_message(&env, &mut b, DEFAULT_MAX_FRAME).unwrap();
        b.to_vec()
    }

    fn all(r: &mut StreamReader) -> Result<Vec<Inbound<'static>>, StreamError> {
        let mut out = vec![];
        while let Some(x) = r.next()? {
            out.push(x);
        }
        Ok(out)
    }

    #[test]
    fn a_hello_then_envelopes_and_skipped_frames() {
        let mut wire = hello_frame("127.0.0.1:4000", WIRE_VERSION);
        let lookup = Envelope::system(0, 3, Body::Lookup(Lookup { name: "ledger".into() }));
        let mut b = BytesMut::new();
        encode_message(&lookup, &mut b, DEFAULT_MAX_FRAME).unwrap();
        encode_frame(&[0xff; 5], &mut b, DEFAULT_MAX_FRAME).unwrap();
        wire.extend_from_slice(&b);
        let mut r = StreamReader::new(DEFAULT_MAX_FRAME);
        r.push(Bytes::from(wire));
        let got = all(&mut r).unwrap();
        let peer = PeerHello { node: "127.0.0.1:4000".parse().unwrap(), incarnation: 7, addressed: 0 };
        assert_eq!(got[0], Inbound::Hello(peer));
        assert_eq!(got[1], Inbound::Envelope(lookup));
        assert!(matches!(got[2], Inbound::Skipped(_)));
        assert_eq!(r.peer(), Some(peer));
        assert!(r.finish().is_ok() && !r.in_frame());
    }

    #[test]
    fn drain_hands_over_what_next_would_and_stops_on_break() {
        let mut wire = hello_frame("127.0.0.1:4000", WIRE_VERSION);
        let mut b = BytesMut::new();
        for i in 1..=3 {
            encode_message(&Envelope::tell(i, "m", Bytes::new()), &mut b, DEFAULT_MAX_FRAME).unwrap();
        }
        wire.extend_from_slice(&b);
        let (mut a, mut z) = (StreamReader::new(DEFAULT_MAX_FRAME), StreamReader::new(DEFAULT_MAX_FRAME));
        a.push(Bytes::from(wire.clone()));
        z.push(Bytes::from(wire));
        let mut got = vec![];
        assert_eq!(
            a.drain(|x| {
                got.push(x.into_owned());
                ControlFlow::Continue(())
            }),
            Ok(3)
        );
        assert_eq!(got, all(&mut z).unwrap());
        // A break after the hello leaves the envelopes for later.
        let mut r = StreamReader::new(DEFAULT_MAX_FRAME);
        r.push(Bytes::from(hello_frame("127.0.0.1:4000", WIRE_VERSION)));
        assert_eq!(r.drain(|_| ControlFlow::Break(())), Ok(0));
        assert!(r.peer().is_some());
    }

    #[test]
    fn a_stream_without_a_valid_hello_is_refused_for_good() {
        for first in
            [hello_frame("nonsense", WIRE_VERSION), hello_frame("127.0.0.1:1", 99), vec![1, 0, 0, 0, 0]]
        {
            let mut r = StreamReader::new(DEFAULT_MAX_FRAME);
            r.push(Bytes::from(first));
            assert_eq!(r.next(), Err(StreamError::NoHello));
            assert_eq!(r.next(), Err(StreamError::NoHello));
        }
    }

    #[test]
    fn an_oversized_frame_is_fatal_and_a_partial_one_is_visible() {
        let mut r = StreamReader::new(16);
        r.push(Bytes::from(hello_frame("127.0.0.1:4000", WIRE_VERSION)));
        let mut r2 = StreamReader::new(DEFAULT_MAX_FRAME);
        r2.push(Bytes::from_static(&[10, 0, 0, 0, 1, 2]));
        assert_eq!(r2.next(), Ok(None));
        assert!(r2.in_frame() && r2.buffered() == 6);
        assert!(matches!(r.next(), Err(StreamError::Frame(FrameError::Oversized { .. }))));
    }

    proptest! {
        #[test]
        fn arbitrary_chunks_never_panic(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
            with_hello in any::<bool>(),
        ) {
            let mut r = StreamReader::new(1024);
            if with_hello {
                r.push(Bytes::from(hello_frame("[::1]:9", WIRE_VERSION)));
            }
            for c in chunks {
                r.push(Bytes::from(c));
                while let Ok(Some(_)) = r.next() {}
            }
            let _ = r.finish();
        }
    }
}
