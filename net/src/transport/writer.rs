//! Sending: one writer task per peer drains that peer's queue onto the outbound stream of its
//! connection (dialed here, or adopted from the peer), and forgets the peer once it has
//! neither a connection nor anything to send.
//!
//! A stream's `Hello` says which incarnation of the peer its frames are meant for (the one
//! known when the stream opened), so frames need not carry it. A frame for a newer incarnation
//! (learned since) starts a new stream; a frame for an incarnation the peer no longer has is
//! dropped here as stale.

use super::outbox::{Outbox, Segment, Take};
use super::{close, Live, Net};
use bytes::BytesMut;
use corelane_proto::frame::encode_message;
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{Envelope, Hello};
use corelane_proto::WIRE_VERSION;
use parking_lot::Mutex;
use quinn::SendStream;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a writer shares with its peer's entry.
pub(super) struct Writer {
    pub(super) peer: SocketAddr,
    /// The connection to use (dialed here, or adopted).
    pub(super) slot: Arc<Mutex<Option<Live>>>,
    /// The peer's queue.
    pub(super) outbox: Arc<Outbox>,
    /// The peer's incarnation as last heard (0: not yet).
    pub(super) incarnation: Arc<AtomicU64>,
}

/// The stream being written, on which connection, whether this node dialed it, and which
/// incarnation of the peer its `Hello` addressed.
struct Out {
    live: Live,
    stream: SendStream,
    dialed: bool,
    addressed: u64,
}

/// Where a frame meant for `inc` can go, given the stream `addressed` (`None`: no stream yet)
/// and the incarnation `known` now.
enum Fit {
    /// On the current stream.
    Here,
    /// On a new stream addressing this incarnation.
    NewStream(u64),
    /// Nowhere: that incarnation is gone.
    Stale,
}

fn fit(inc: u64, addressed: Option<u64>, known: u64) -> Fit {
    let wanted = if inc == 0 { addressed.unwrap_or(known) } else { inc };
    if known != 0 && wanted != known && inc != 0 {
        return Fit::Stale;
    }
    match addressed {
        Some(a) if a == wanted || inc == 0 => Fit::Here,
        _ => Fit::NewStream(wanted),
    }
}

/// One peer's writer: hands its queue's buffers to the connection's outbound stream.
pub(super) async fn writer(net: Arc<Net>, w: Writer) {
    let peer = w.peer;
    let mut out: Option<Out> = None;
    let mut seen = 0u64;
    let mut taken = VecDeque::new();
    let mut written = Vec::new();
    loop {
        match w.outbox.take(net.cfg.idle, &mut taken).await {
            Take::Took => {}
            Take::Closed => return,
            Take::Idle => {
                // Idle: the dialer closes the connection unless messages came in meanwhile.
                if let Some(o) = out.as_ref().filter(|o| o.dialed) {
                    let now = o.live.received.load(Ordering::Relaxed);
                    if now == seen {
                        o.live.conn.close(close::IDLE, b"idle");
                        out = None;
                    }
                    seen = now;
                }
                // No connection and nothing to send: the peer is forgotten (a later message
                // makes a new entry), so abandoned peers do not accumulate.
                let open = out.as_ref().is_some_and(|o| o.live.is_open())
                    || w.slot.lock().as_ref().is_some_and(Live::is_open);
                if !open && net.forget(peer, &w.outbox) {
                    w.outbox.close();
                    return;
                }
                continue;
            }
        }
        for seg in taken.drain(..) {
            written.push(write(&net, &w, &mut out, seg).await);
        }
        // Counted until written (or dropped), so an entry with nothing queued has nothing in
        // flight either, and forgetting it cannot reorder anything.
        w.outbox.done(&mut written);
    }
}

/// Writes one segment on the stream that addresses its incarnation (opening one if needed), or
/// drops it as stale or unsendable, counted; gives its buffer back.
async fn write(net: &Arc<Net>, w: &Writer, out: &mut Option<Out>, seg: Segment) -> BytesMut {
    let peer = w.peer;
    let open_out = out.as_ref().filter(|o| o.live.is_open()).map(|o| o.addressed);
    let addressed = match fit(seg.incarnation, open_out, w.incarnation.load(Ordering::Acquire)) {
        Fit::Here => open_out.unwrap_or_else(|| w.incarnation.load(Ordering::Acquire)),
        Fit::NewStream(a) => {
            if let Some(mut o) = out.take() {
                let _ = o.stream.finish();
            }
            a
        }
        Fit::Stale => {
            net.inbound.stale(peer, seg.frames);
            return seg.bytes;
        }
    };
    if !out.as_ref().is_some_and(|o| o.live.is_open()) {
        *out = open(net, peer, &w.slot, addressed).await;
    }
    match out.as_mut() {
        None => {
            net.inbound.peer_down(peer);
            net.inbound.dropped(peer, seg.frames);
        }
        Some(o) => {
            if o.stream.write_all(&seg.bytes).await.is_err() {
                // At most once: what was in this write is lost, not sent again.
                net.inbound.dropped(peer, seg.frames);
                *out = None;
            }
        }
    }
    seg.bytes
}

/// A new outbound stream to `peer` addressing its incarnation `addressed`: on its open
/// connection (dialed or adopted), or on a new one.
async fn open(net: &Arc<Net>, peer: SocketAddr, slot: &Mutex<Option<Live>>, addressed: u64) -> Option<Out> {
    let existing = slot.lock().clone().filter(Live::is_open);
    let (live, dialed) = match existing {
        Some(l) => (l, false),
        None => {
            let l = dial(net, peer).await?;
            *slot.lock() = Some(l.clone());
            (l, true)
        }
    };
    let mut stream = live.conn.open_uni().await.ok()?;
    let hello =
        Hello { node: net.me.to_string(), version: WIRE_VERSION, incarnation: net.incarnation, addressed };
    let mut buf = BytesMut::new();
    encode_message(&Envelope::system(0, 0, Body::Hello(hello)), &mut buf, net.cfg.max_frame).ok()?;
    stream.write_all(&buf).await.ok()?;
    Some(Out { live, stream, dialed, addressed })
}

/// Dials `peer`, retrying with backoff; `None` after the last attempt.
async fn dial(net: &Arc<Net>, peer: SocketAddr) -> Option<Live> {
    let mut backoff = corelane::Backoff::new(net.cfg.backoff.0, net.cfg.backoff.1);
    for attempt in 1..=net.cfg.attempts {
        let connecting = net.endpoint.connect(peer, &net.server_name);
        match connecting {
            Ok(c) => match c.await {
                Ok(conn) => {
                    let live = Live::new(conn);
                    tokio::spawn(super::reader::read_connection(net.clone(), live.clone(), Some(peer)));
                    return Some(live);
                }
                Err(e) => tracing::debug!(%peer, attempt, "connection failed: {e}"),
            },
            Err(e) => tracing::debug!(%peer, attempt, "cannot connect: {e}"),
        }
        if attempt < net.cfg.attempts {
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_go_where_their_incarnation_is_addressed() {
        // Nothing known yet: a stream addressing the frame's incarnation (or unknown).
        assert!(matches!(fit(0, None, 0), Fit::NewStream(0)));
        assert!(matches!(fit(7, None, 0), Fit::NewStream(7)));
        assert!(matches!(fit(7, Some(0), 0), Fit::NewStream(7)));
        // Known 7: frames for 7 (or for nothing in particular) fit a stream addressing 7.
        assert!(matches!(fit(7, Some(7), 7), Fit::Here));
        assert!(matches!(fit(0, Some(7), 7), Fit::Here));
        assert!(matches!(fit(0, Some(3), 7), Fit::Here));
        // Learned 9 since the stream opened for 7: a new stream; 7 is gone: stale.
        assert!(matches!(fit(9, Some(7), 9), Fit::NewStream(9)));
        assert!(matches!(fit(7, Some(9), 9), Fit::Stale));
        assert!(matches!(fit(7, None, 9), Fit::Stale));
    }
}
