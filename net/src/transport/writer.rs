//! Sending: one writer task per peer drains that peer's queue onto the outbound stream of its
//! connection (dialed here, or adopted from the peer), and forgets the peer once it has
//! neither a connection nor anything to send.

use super::{close, Live, Net, BATCH_BYTES};
use bytes::{Bytes, BytesMut};
use corelane_proto::frame::encode_message;
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{Envelope, Hello};
use corelane_proto::WIRE_VERSION;
use parking_lot::Mutex;
use quinn::SendStream;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// One peer's writer: batches its queue onto the connection's outbound stream.
pub(super) async fn writer(
    net: Arc<Net>,
    peer: SocketAddr,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    slot: Arc<Mutex<Option<Live>>>,
    queued: Arc<AtomicUsize>,
) {
    let mut out: Option<(Live, SendStream, bool)> = None; // (connection, stream, dialed by us)
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut seen = 0u64;
    loop {
        let first = match tokio::time::timeout(net.cfg.idle, rx.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => return,
            Err(_) => {
                // Idle: the dialer closes the connection unless messages came in meanwhile.
                if let Some((live, _, true)) = &out {
                    let now = live.received.load(Ordering::Relaxed);
                    if now == seen {
                        live.conn.close(close::IDLE, b"idle");
                        out = None;
                    }
                    seen = now;
                }
                // No connection and nothing to send: the peer is forgotten (a later message
                // makes a new entry), so abandoned peers do not accumulate.
                let open = out.as_ref().is_some_and(|(l, _, _)| l.is_open())
                    || slot.lock().as_ref().is_some_and(Live::is_open);
                if !open && queued.load(Ordering::Relaxed) == 0 && net.forget(peer, &queued) {
                    return;
                }
                continue;
            }
        };
        // Everything queued goes out in one write (what a shard sent in one turn included),
        // copied into one buffer: quinn packs one large chunk far faster than many small ones.
        buf.extend_from_slice(&first);
        let mut count = 1;
        while buf.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(f) => {
                    buf.extend_from_slice(&f);
                    count += 1;
                }
                Err(_) => break,
            }
        }
        let len = buf.len();
        if !out.as_ref().is_some_and(|(live, _, _)| live.is_open()) {
            out = open(&net, peer, &slot).await;
        }
        match out.as_mut() {
            None => {
                net.inbound.peer_down(peer);
                net.inbound.dropped(peer, count);
            }
            Some((_, stream, _)) => {
                if stream.write_all(&buf).await.is_err() {
                    // At most once: what was in this write is lost, not sent again.
                    net.inbound.dropped(peer, count);
                    out = None;
                }
            }
        }
        buf.clear();
        // Counted until written (or dropped), so an entry with nothing queued has nothing in
        // flight either, and forgetting it cannot reorder anything.
        queued.fetch_sub(len, Ordering::Relaxed);
    }
}

/// The outbound stream to `peer`: on its open connection (dialed or adopted), or on a new one.
async fn open(
    net: &Arc<Net>,
    peer: SocketAddr,
    slot: &Mutex<Option<Live>>,
) -> Option<(Live, SendStream, bool)> {
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
    let hello = Hello { node: net.me.to_string(), version: WIRE_VERSION, incarnation: net.incarnation };
    let mut buf = BytesMut::new();
    encode_message(&Envelope::system(0, 0, Body::Hello(hello)), &mut buf, net.cfg.max_frame).ok()?;
    stream.write_all(&buf).await.ok()?;
    Some((live, stream, dialed))
}

/// Dials `peer`, retrying with backoff; `None` after the last attempt.
async fn dial(net: &Arc<Net>, peer: SocketAddr) -> Option<Live> {
    let (mut delay, max) = net.cfg.backoff;
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
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(max);
        }
    }
    None
}
