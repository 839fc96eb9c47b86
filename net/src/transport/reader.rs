//! Receiving: connections other nodes open (admitted within the connection limits), every
//! stream on them read through the sans-IO `StreamReader`, with the bytes of unfinished frames
//! bounded per connection and per node, and each unfinished frame bounded in time.

use super::{close, BadInput, Live, Net};
use bytes::Bytes;
use corelane_proto::stream::{Inbound as Said, StreamError, StreamReader};
use parking_lot::Mutex;
use quinn::{ConnectionError, VarInt};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use tokio::time::Instant;

/// Hand over at most this much of a stream at once (what quinn holds beyond it waits for the
/// next round, so other streams and tasks get their turn).
const READ_BATCH: usize = 256 << 10;

/// Holds a place among the admitted connections until dropped.
struct Admitted {
    net: Arc<Net>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut per_ip = self.net.incoming.lock();
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

impl Net {
    /// A place for a connection from `ip`, unless that would pass a connection limit.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Admitted> {
        let l = &self.cfg.limits;
        let mut per_ip = self.incoming.lock();
        let total: usize = per_ip.values().sum();
        let from_ip = per_ip.get(&ip).copied().unwrap_or(0);
        if total >= l.max_connections || from_ip >= l.max_connections_per_ip {
            return None;
        }
        *per_ip.entry(ip).or_insert(0) += 1;
        Some(Admitted { net: self.clone(), ip })
    }
}

pub(super) async fn accept(net: Arc<Net>, incoming: quinn::Incoming) {
    let ip = incoming.remote_address().ip();
    let Some(place) = net.admit(ip) else {
        tracing::debug!(%ip, "connection refused: connection limit");
        net.inbound.bad_input(None, BadInput::Limit("connections"));
        incoming.refuse();
        return;
    };
    match incoming.await {
        Ok(conn) => read_connection(net, Live::new(conn), None).await,
        Err(e) => tracing::debug!("incoming connection failed: {e}"),
    }
    drop(place);
}

/// Reads every stream the peer opens on `live`. When the connection ends, the node it spoke
/// for is reported lost only if this was that node's connection and it failed (not an idle
/// or orderly close): a connection can affect only the peer it speaks for.
pub(super) async fn read_connection(net: Arc<Net>, live: Live, dialed: Option<SocketAddr>) {
    let known = Arc::new(Mutex::new(dialed));
    let err = loop {
        match live.conn.accept_uni().await {
            Ok(stream) => {
                tokio::spawn(read_stream(net.clone(), live.clone(), stream, known.clone()));
            }
            Err(e) => break e,
        }
    };
    let Some(peer) = *known.lock() else { return };
    let orderly = match &err {
        ConnectionError::ApplicationClosed(c) => c.error_code == close::IDLE,
        ConnectionError::LocallyClosed => true,
        _ => false,
    };
    let current = net.connection_ended(peer, &live);
    if !orderly && (current || dialed.is_some()) {
        net.inbound.peer_down(peer);
    }
}

/// How a stream ended.
enum End {
    /// The peer finished it or reset it, or the connection went.
    Closed,
    /// This node closes the connection.
    Refuse(VarInt, &'static [u8]),
}

async fn read_stream(
    net: Arc<Net>,
    live: Live,
    mut stream: quinn::RecvStream,
    known: Arc<Mutex<Option<SocketAddr>>>,
) {
    let limits = &net.cfg.limits;
    let mut reader = StreamReader::new(net.cfg.max_frame);
    // Bytes of this stream's unfinished frame counted in the connection's and the node's sums.
    let mut counted = 0usize;
    let mut frame_deadline: Option<Instant> = None;
    let mut chunks: Vec<Bytes> = Vec::new();
    let end = loop {
        let read = stream.read_chunk(usize::MAX, true);
        let chunk = match frame_deadline {
            Some(at) => match tokio::time::timeout_at(at, read).await {
                Ok(r) => r,
                Err(_) => {
                    net.inbound.bad_input(reader.peer().map(|p| p.node), BadInput::Limit("frame timeout"));
                    break End::Refuse(close::LIMIT, b"frame timeout");
                }
            },
            None => read.await,
        };
        let chunk = match chunk {
            Ok(Some(c)) => c.bytes,
            Ok(None) | Err(_) => break End::Closed,
        };
        // With it, whatever else quinn holds for the stream already (up to `READ_BATCH`
        // bytes): one hand-over, one wake-up per shard, for all of it.
        let mut bytes = chunk.len();
        chunks.push(chunk);
        let mut ended = false;
        while bytes < READ_BATCH {
            match ready_chunk(&mut stream).await {
                Some(Ok(Some(c))) => {
                    bytes += c.bytes.len();
                    chunks.push(c.bytes);
                }
                Some(Ok(None) | Err(_)) => {
                    ended = true;
                    break;
                }
                None => break,
            }
        }
        // Something arrived: the connection is not idle (one count per read, not per frame).
        live.received.fetch_add(1, Ordering::Relaxed);
        let mut taken = Ok(0);
        net.inbound.batch(&mut || {
            for chunk in chunks.drain(..) {
                reader.push(chunk);
                taken = match (said(&net, &live, &mut reader, &known), &taken) {
                    (Ok(n), Ok(m)) => Ok(n + m),
                    (Err(e), _) => Err(e),
                    (_, Err(_)) => unreachable!("a refusal ends the hand-over"),
                };
                if taken.is_err() {
                    break;
                }
            }
        });
        chunks.clear();
        let frames = match taken {
            Ok(n) => n,
            Err((code, why)) => break End::Refuse(code, why),
        };
        if ended {
            break End::Closed;
        }
        // What the unfinished frame holds, within the connection's and the node's bounds.
        let now = reader.buffered();
        let conn_total = account(&live, &net, &mut counted, now);
        if conn_total > limits.max_buffered_per_connection
            || net.buffered.load(Ordering::Relaxed) > limits.max_buffered
        {
            net.inbound.bad_input(reader.peer().map(|p| p.node), BadInput::Limit("buffered bytes"));
            break End::Refuse(close::LIMIT, b"too many buffered bytes");
        }
        // The clock starts when a read completes no frame while one is unfinished (a stream
        // that completes frames in every read never reads it), and stops when one completes.
        frame_deadline = match (reader.in_frame() && frames == 0, frame_deadline) {
            (false, _) => None,
            (true, Some(at)) => Some(at),
            (true, None) => Some(Instant::now() + limits.frame_timeout),
        };
    };
    account(&live, &net, &mut counted, 0);
    match end {
        End::Refuse(code, why) => live.conn.close(code, why),
        End::Closed => {
            if let Err(e) = reader.finish() {
                net.inbound.bad_input(reader.peer().map(|p| p.node), BadInput::Frame(e));
            }
        }
    }
}

/// The next chunk of `stream` if quinn holds one already (`None`: it would have to wait).
async fn ready_chunk(
    stream: &mut quinn::RecvStream,
) -> Option<Result<Option<quinn::Chunk>, quinn::ReadError>> {
    let mut read = std::pin::pin!(stream.read_chunk(usize::MAX, true));
    std::future::poll_fn(|cx| match read.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(Some(r)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Moves this stream's count of buffered bytes from `counted` to `now` in the connection's and
/// the node's sums; the connection's new sum.
fn account(live: &Live, net: &Net, counted: &mut usize, now: usize) -> usize {
    let total = if now >= *counted {
        let d = now - *counted;
        net.buffered.fetch_add(d, Ordering::Relaxed);
        live.buffered.fetch_add(d, Ordering::Relaxed) + d
    } else {
        let d = *counted - now;
        net.buffered.fetch_sub(d, Ordering::Relaxed);
        live.buffered.fetch_sub(d, Ordering::Relaxed) - d
    };
    *counted = now;
    total
}

/// Hands over what the reader holds: the number of envelopes taken, or the close code and
/// reason when the stream broke the protocol.
fn said(
    net: &Arc<Net>,
    live: &Live,
    reader: &mut StreamReader,
    known: &Mutex<Option<SocketAddr>>,
) -> Result<usize, (VarInt, &'static [u8])> {
    let mut peer = reader.peer().map(|p| p.node);
    let mut addressed = reader.peer().map_or(0, |p| p.addressed);
    let mut refused = false;
    let drained = reader.drain(|said| {
        match said {
            Said::Envelope(env) => {
                net.inbound.envelope(peer.expect("envelopes follow the hello"), addressed, env);
            }
            Said::Tell(t) => net.inbound.tell(peer.expect("envelopes follow the hello"), addressed, t),
            Said::Skipped(e) => net.inbound.bad_input(peer, BadInput::Envelope(e)),
            Said::Hello(h) => {
                // A connection speaks for one node, and (under mutual TLS) only for the node its
                // certificate was first seen for.
                let mut k = known.lock();
                let same = k.is_none_or(|p| p == h.node);
                let bound = if same { net.bind(&h, live) } else { None };
                let Some(current) = bound else {
                    drop(k);
                    net.inbound.bad_input(Some(h.node), BadInput::Identity);
                    refused = true;
                    return ControlFlow::Break(());
                };
                *k = Some(h.node);
                drop(k);
                peer = Some(h.node);
                addressed = h.addressed;
                if current {
                    net.inbound.hello(h);
                }
            }
        }
        ControlFlow::Continue(())
    });
    match drained {
        Ok(_) if refused => Err((close::PROTOCOL, b"identity")),
        Ok(n) => Ok(n),
        Err(StreamError::Frame(e)) => {
            net.inbound.bad_input(peer, BadInput::Frame(e));
            Err((close::OVERSIZED, b"oversized frame"))
        }
        Err(StreamError::NoHello) => {
            net.inbound.bad_input(None, BadInput::NoHello);
            Err((close::PROTOCOL, b"no hello"))
        }
    }
}
