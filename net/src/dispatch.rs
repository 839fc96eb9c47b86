//! What a node does with what arrives: messages for its actors, answers to its asks, system
//! requests, and the loss of peers. Runs on the net thread and never blocks it: waiting (for
//! an actor's answer, for a stop) happens in tasks of the net thread's runtime.

use crate::error::{ErrorCode, RemoteAskError};
use crate::node::{refused, Inner, Node};
use crate::protocol::{Answer, Refusal};
use crate::target::{Gather, Target};
use crate::transport::{BadInput, Inbound};
use bytes::Bytes;
use corelane::trace::TraceContext;
use corelane::{AskError, DeadLetterReason};
use corelane_proto::decode_system;
use corelane_proto::frame::Head;
use corelane_proto::stream::PeerHello;
use corelane_proto::tell::PlainTell;
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{Done, Envelope, Found, Kind};
use prost::{Message, Name};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

/// The node's side of the transport (weak: the transport must not keep the node alive).
pub(crate) struct Dispatch(pub(crate) Weak<Inner>);

/// What a batch (everything one read brought) keeps from envelope to envelope on the net
/// thread: the node, upgraded once, and the tells gathered per actor so far. A tell costs no
/// reference count, no map lookup and no lane push of its own.
struct Batch {
    node: Arc<Inner>,
    last: Gathering,
}

/// Tells gathered per actor (for a few actors at a time), each actor's sent as one packet when
/// the batch ends or an envelope of another kind comes (an ask or a system message goes after
/// the tells before it; order is per sender and receiver, so actors need no order between
/// them). Dropping it sends what it holds.
#[derive(Default)]
struct Gathering(Vec<(u64, Box<dyn Gather>)>);

impl Gathering {
    /// Actors gathered for at once; a tell for one more sends what the others hold first.
    const ACTORS: usize = 16;

    /// Sends everything gathered.
    fn flush(&mut self) {
        self.0.clear();
    }
}

thread_local! {
    /// The batch under way on this thread, taken out while an envelope is handled (so an
    /// envelope handled inside another finds none and takes the slow path).
    static BATCH: Cell<Option<Batch>> = const { Cell::new(None) };
}

impl Dispatch {
    /// Runs `f` with the batch under way for this node, if any.
    fn with_batch<R>(&self, f: impl FnOnce(Option<&mut Batch>) -> R) -> R {
        let mut batch = BATCH.take();
        let mine = batch.as_mut().filter(|b| std::ptr::eq(Arc::as_ptr(&b.node), self.0.as_ptr()));
        let r = f(mine);
        BATCH.set(batch);
        r
    }
}

impl Inbound for Dispatch {
    fn hello(&self, peer: PeerHello) {
        if let Some(node) = self.0.upgrade() {
            node.peer_hello(peer.node, peer.incarnation);
        }
    }

    fn envelope(&self, peer: SocketAddr, addressed: u64, env: Envelope) {
        self.with_batch(|batch| match batch {
            Some(Batch { node, last }) => envelope(node, last, peer, addressed, env),
            None => {
                if let Some(node) = self.0.upgrade() {
                    envelope(&node, &mut Gathering::default(), peer, addressed, env);
                }
            }
        })
    }

    fn tell(&self, peer: SocketAddr, addressed: u64, t: PlainTell<'_>) {
        self.with_batch(|batch| match batch {
            Some(Batch { node, last }) => plain_tell(node, last, peer, addressed, t),
            None => {
                if let Some(node) = self.0.upgrade() {
                    plain_tell(&node, &mut Gathering::default(), peer, addressed, t);
                }
            }
        })
    }

    fn peer_down(&self, peer: SocketAddr) {
        if let Some(node) = self.0.upgrade() {
            node.peer_lost(peer);
        }
    }

    fn bad_input(&self, peer: Option<SocketAddr>, what: BadInput) {
        let Some(node) = self.0.upgrade() else { return };
        tracing::debug!(?peer, ?what, "bad input");
        node.dead_letter(DeadLetterReason::Remote(corelane::RemoteReason::Malformed), "frame");
    }

    fn batch(&self, f: &mut dyn FnMut()) {
        match self.0.upgrade() {
            // The shards are woken once per read, not once per message.
            Some(node) => {
                let outer = BATCH.replace(Some(Batch { node: node.clone(), last: Gathering::default() }));
                node.rt.batch(|| {
                    f();
                    // Dropped here, the gathered tells are sent within the batch.
                    drop(BATCH.replace(outer));
                });
            }
            None => f(),
        }
    }

    fn stale(&self, _peer: SocketAddr, count: usize) {
        let Some(node) = self.0.upgrade() else { return };
        corelane::integration::record_dead_letters(
            &node.rt,
            DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget),
            "envelope for an earlier incarnation",
            count as u64,
        );
    }

    fn dropped(&self, _peer: SocketAddr, count: usize) {
        let Some(node) = self.0.upgrade() else { return };
        corelane::integration::record_dead_letters(
            &node.rt,
            DeadLetterReason::Remote(corelane::RemoteReason::Unreachable),
            "envelope",
            count as u64,
        );
    }
}

/// Handles one envelope; `last`: the tells gathered so far in this batch.
fn envelope(node: &Arc<Inner>, last: &mut Gathering, peer: SocketAddr, addressed: u64, env: Envelope) {
    if !env.more.is_empty() {
        // A batch that reads as a plain tell never comes this way.
        last.flush();
        return malformed_batch(node, peer, &env);
    }
    if env.kind() != Kind::Tell || env.grain.is_some() || !env.trace.is_empty() {
        // Whatever else this is, the tells before it go first.
        last.flush();
    }
    if !node.started() {
        // A peer that connected in the instant between bind and the end of `start`.
        return node.dead_letter(
            DeadLetterReason::Remote(corelane::RemoteReason::Unreachable),
            "envelope before start",
        );
    }
    // The envelope's own incarnation, or else the one its stream addressed.
    let meant = if env.incarnation != 0 { env.incarnation } else { addressed };
    if env.target != 0 && meant != 0 && meant != node.incarnation {
        return stale(node, peer, &env);
    }
    if env.grain.is_some() && matches!(env.kind(), Kind::Tell | Kind::Ask) {
        return crate::cluster::serve::envelope(node, peer, env);
    }
    match env.kind() {
        Kind::Tell if !env.trace.is_empty() => traced_tell(node, env),
        Kind::Tell => tell(node, last, env),
        Kind::Ask => ask(node, peer, env),
        Kind::Reply => answer(node, peer, env.correlation_id, Ok(env)),
        Kind::Error => {
            let corr = env.correlation_id;
            answer(node, peer, corr, Err(refused(env.payload)))
        }
        Kind::System => system(node, peer, env),
        Kind::Unspecified => {
            node.dead_letter(DeadLetterReason::Remote(corelane::RemoteReason::Malformed), "envelope")
        }
    }
}

/// Handles a plain tell as [`envelope`] handles its envelope.
fn plain_tell(node: &Arc<Inner>, last: &mut Gathering, peer: SocketAddr, addressed: u64, t: PlainTell<'_>) {
    let meant = if t.incarnation != 0 { t.incarnation } else { addressed };
    if !node.started() {
        // A peer that connected in the instant between bind and the end of `start`.
        let reason = DeadLetterReason::Remote(corelane::RemoteReason::Unreachable);
        return node.dead_letters(reason, "envelope before start", t.messages());
    }
    if t.target != 0 && meant != 0 && meant != node.incarnation {
        // For an actor of an earlier incarnation of this node: never delivered to whatever
        // actor has that id now.
        let reason = DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget);
        return node.dead_letters(reason, "envelope for an earlier incarnation", t.messages());
    }
    if t.grain.is_some() {
        // The tells gathered before it go first, as before any grain message.
        last.flush();
        return crate::cluster::serve::plain_tell(node, peer, t);
    }
    if t.more == 0 {
        return deliver(node, last, t.target, t.manifest, t.payload, None);
    }
    // A batch (`Envelope::more`): each message in order, as if each had come on its own, the
    // actor and the manifest's decoder found once.
    let Some(i) = gathering(node, last, t.target) else {
        let reason = DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget);
        return node.dead_letters(reason, "remote tell", t.messages());
    };
    let refused = &mut |r: Refusal| node.dead_letter(refusal(&r).0, "remote tell");
    last.0[i].1.tell_all(t.manifest, &mut t.payloads(), refused);
}

/// An envelope that carries further payloads (`Envelope::more`) but is not a plain tell to an
/// actor or a grain, the only kind that may: malformed, every message in it a dead letter; an
/// ask is answered with the error.
fn malformed_batch(node: &Arc<Inner>, peer: SocketAddr, env: &Envelope) {
    let reason = DeadLetterReason::Remote(corelane::RemoteReason::Malformed);
    node.dead_letters(reason, "envelope with further payloads", 1 + env.more.len());
    if env.kind() == Kind::Ask {
        let detail = "further payloads (`more`) are only for a tell to an actor or a grain".to_string();
        fail(node, peer, env.correlation_id, ErrorCode::Malformed, detail);
    }
}

/// An envelope for an actor of an earlier incarnation of this node (it restarted since the
/// sender learned the id): refused, never delivered to whatever actor has that id now.
fn stale(node: &Arc<Inner>, peer: SocketAddr, env: &Envelope) {
    node.dead_letter(
        DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget),
        "envelope for an earlier incarnation",
    );
    let detail = || format!("actor {:#x} belongs to an earlier incarnation of this node", env.target);
    match env.kind() {
        Kind::Ask => fail(node, peer, env.correlation_id, ErrorCode::NodeRestarted, detail()),
        Kind::System => match decode_system(env.payload.clone()) {
            // A watcher of the old actor learns it is gone.
            Ok(Body::Watch(w)) => {
                if let Some(watcher) = w.watcher {
                    crate::remote_watch::gone(node, peer, env.target, watcher);
                }
            }
            _ => fail(node, peer, env.correlation_id, ErrorCode::NodeRestarted, detail()),
        },
        _ => {}
    }
}

fn target(node: &Inner, id: u64) -> Option<Arc<dyn Target>> {
    node.exposed.read().get(&id).cloned()
}

/// The dead-letter reason and the error code of a refusal.
pub(crate) fn refusal(r: &Refusal) -> (DeadLetterReason, ErrorCode, String) {
    match r {
        Refusal::UnknownManifest(m) => (
            DeadLetterReason::Remote(corelane::RemoteReason::UnknownManifest),
            ErrorCode::UnknownManifest,
            format!("no codec for {m}"),
        ),
        Refusal::NotThisWay(m) => (
            DeadLetterReason::Remote(corelane::RemoteReason::UnknownManifest),
            ErrorCode::UnknownManifest,
            format!("{m} is not accepted this way (tell versus ask)"),
        ),
        Refusal::Malformed(e) => {
            (DeadLetterReason::Remote(corelane::RemoteReason::Malformed), ErrorCode::Malformed, e.to_string())
        }
    }
}

fn tell(node: &Arc<Inner>, last: &mut Gathering, env: Envelope) {
    let sender = sender_of(node, &env);
    deliver(node, last, env.target, &env.manifest, env.payload, sender);
}

/// The trace an envelope continues, if it carries one this node can read (one it cannot is
/// ignored, as W3C Trace Context asks: the message is handled untraced).
pub(crate) fn trace_of(env: &Envelope) -> Option<TraceContext> {
    if env.trace.is_empty() {
        return None;
    }
    let t = TraceContext::from_bytes(&env.trace);
    if t.is_none() {
        tracing::debug!(len = env.trace.len(), "unreadable trace context ignored");
    }
    t
}

/// The sender an envelope names (a forwarded message names its original one: a node address
/// and an id there).
fn sender_of(node: &Arc<Inner>, env: &Envelope) -> Option<crate::RemoteRef> {
    env.sender.as_ref().and_then(|a| Node { inner: node.clone() }.remote_ref_to(a))
}

/// A tell that continues a trace: delivered at once with its context (the tells gathered before
/// it were sent first).
fn traced_tell(node: &Arc<Inner>, env: Envelope) {
    let Some(trace) = trace_of(&env) else {
        return tell(node, &mut Gathering::default(), env);
    };
    let sender = sender_of(node, &env);
    let Some(t) = target(node, env.target) else {
        return node
            .dead_letter(DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget), "remote tell");
    };
    if let Err(r) = t.tell_traced(&env.manifest, env.payload, sender, trace) {
        node.dead_letter(refusal(&r).0, "remote tell");
    }
}

/// Gathers a tell for local actor `id` into `last`.
fn deliver(
    node: &Arc<Inner>,
    last: &mut Gathering,
    id: u64,
    manifest: &str,
    payload: Bytes,
    sender: Option<crate::RemoteRef>,
) {
    let Some(i) = gathering(node, last, id) else {
        return node
            .dead_letter(DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget), "remote tell");
    };
    if let Err(r) = last.0[i].1.tell(manifest, payload, sender) {
        node.dead_letter(refusal(&r).0, "remote tell");
    }
}

/// Where in `last` the tells for local actor `id` are gathered (a place made for it if there
/// is none yet); `None` when no such actor is exposed.
fn gathering(node: &Inner, last: &mut Gathering, id: u64) -> Option<usize> {
    if let Some(i) = last.0.iter().position(|(gathering, _)| *gathering == id) {
        return Some(i);
    }
    let t = target(node, id)?;
    if last.0.len() == Gathering::ACTORS {
        last.flush();
    }
    last.0.push((id, t.gather()));
    Some(last.0.len() - 1)
}

fn ask(node: &Arc<Inner>, peer: SocketAddr, env: Envelope) {
    let corr = env.correlation_id;
    let Some(t) = target(node, env.target).filter(|t| t.is_alive()) else {
        node.dead_letter(DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget), "remote ask");
        return fail(node, peer, corr, ErrorCode::UnknownTarget, format!("no actor {:#x} here", env.target));
    };
    let trace = trace_of(&env);
    match t.ask(&env.manifest, env.payload, &node.rt, trace) {
        Ok(answer) => reply_when_answered(node, peer, corr, answer),
        Err(r) => {
            let (reason, code, detail) = refusal(&r);
            node.dead_letter(reason, "remote ask");
            fail(node, peer, corr, code, detail);
        }
    }
}

/// Waits (in a task of the net thread) for a local actor's answer, and sends it back.
fn reply_when_answered(node: &Arc<Inner>, peer: SocketAddr, corr: u64, answer: Answer) {
    let weak = Arc::downgrade(node);
    let limit = node.serve_timeout;
    tokio::spawn(async move {
        let outcome = tokio::time::timeout(limit, answer).await.ok();
        let Some(node) = weak.upgrade() else { return };
        send_answer(&node, peer, corr, outcome, || {
            Envelope::error(corr, ErrorCode::Failed, "the actor stopped or dropped the request unanswered")
        });
    });
}

/// Sends the answer to ask `corr` back to `peer`: the reply (built in place), or the error
/// that says why there is none (`unanswered` when the request was dropped unanswered; `None`
/// for no answer within the serve timeout).
pub(crate) fn send_answer(
    node: &Inner,
    peer: SocketAddr,
    corr: u64,
    outcome: Option<Result<(&'static str, Bytes), AskError>>,
    unanswered: impl FnOnce() -> Envelope,
) {
    let env = match outcome {
        Some(Ok((manifest, bytes))) => {
            // The usual case, built in place.
            let head = Head { correlation_id: corr, kind: Kind::Reply, manifest, ..Head::default() };
            if node.send_parts(peer, &head, bytes.len(), |b| b.extend_from_slice(&bytes)).is_ok() {
                return;
            }
            Envelope::error(corr, ErrorCode::Failed, "the answer exceeds the maximum frame")
        }
        Some(Err(AskError::NoReply)) => unanswered(),
        Some(Err(e)) => Envelope::error(corr, ErrorCode::Failed, e.to_string()),
        None => Envelope::error(corr, ErrorCode::Failed, "no answer within the node's serve timeout"),
    };
    let _ = node.send(peer, env);
}

pub(crate) fn fail(node: &Inner, peer: SocketAddr, corr: u64, code: ErrorCode, detail: String) {
    if corr != 0 {
        let _ = node.send(peer, Envelope::error(corr, code, detail));
    }
}

/// An answer (or error) from `peer` for one of this node's asks. Only the node asked can
/// answer: an answer from another is counted and dropped, the ask still waits.
fn answer(node: &Inner, peer: SocketAddr, corr: u64, outcome: Result<Envelope, RemoteAskError>) {
    let waiting = {
        let mut pending = node.pending.lock();
        match pending.get(&corr) {
            Some(w) if w.peer != peer => {
                drop(pending);
                return node.dead_letter(
                    DeadLetterReason::Remote(corelane::RemoteReason::Malformed),
                    "answer from another node",
                );
            }
            _ => pending.remove(&corr),
        }
    };
    match waiting {
        Some(w) if !w.finish.abandoned() => w.finish.finish(outcome),
        // The asker gave up (timed out, or dropped its `RemoteAsk`).
        _ => node.dead_letter(DeadLetterReason::LateReply, "remote reply"),
    }
}

pub(crate) fn found(node: &Inner, peer: SocketAddr, corr: u64, t: Arc<dyn Target>) {
    let id = expose(node, t);
    let f = Found { actor: Some(node.address(id)) };
    let _ = node.send(peer, Envelope::reply(corr, Found::full_name(), f.encode_to_vec().into()));
}

/// Makes `t` reachable by its id from other nodes; its id.
pub(crate) fn expose(node: &Inner, t: Arc<dyn Target>) -> u64 {
    let id = t.untyped().id().as_u64();
    let mut exposed = node.exposed.write();
    // Actors that stopped without anyone stopping them remotely are swept now and then.
    if exposed.len() % 256 == 255 {
        exposed.retain(|_, t| t.is_alive());
    }
    exposed.insert(id, t);
    id
}

pub(crate) fn done(node: &Inner, peer: SocketAddr, corr: u64) {
    let _ = node.send(peer, Envelope::reply(corr, Done::full_name(), Done {}.encode_to_vec().into()));
}

fn system(node: &Arc<Inner>, peer: SocketAddr, env: Envelope) {
    let corr = env.correlation_id;
    let body = match decode_system(env.payload) {
        Ok(b) => b,
        Err(e) => {
            node.dead_letter(DeadLetterReason::Remote(corelane::RemoteReason::Malformed), "system message");
            return fail(node, peer, corr, ErrorCode::Malformed, e.to_string());
        }
    };
    match body {
        Body::Hello(_) => {}
        Body::Lookup(l) => {
            let hit = node.protocols.read().values().find_map(|p| p.lookup(&node.rt, &l.name));
            match hit {
                Some(t) => found(node, peer, corr, t),
                None => fail(
                    node,
                    peer,
                    corr,
                    ErrorCode::NotFound,
                    format!("no actor named {:?} is served here", l.name),
                ),
            }
        }
        Body::Spawn(s) if s.cluster => crate::cluster::named::spawn_requested(node, peer, corr, s),
        Body::Spawn(s) => match crate::spawn::spawn(node, Some(peer), &s.kind, &s.name, None) {
            Ok(t) => found(node, peer, corr, t),
            Err((code, detail)) => fail(node, peer, corr, code, detail),
        },
        Body::Respawn(r) => crate::spawn::respawn(node, peer, corr, r.name),
        Body::Stop(s) => {
            let Some(t) = target(node, s.id) else {
                return fail(
                    node,
                    peer,
                    corr,
                    ErrorCode::UnknownTarget,
                    format!("no actor {:#x} here", s.id),
                );
            };
            let stopping = t.stop();
            let weak = Arc::downgrade(node);
            tokio::spawn(async move {
                let _ = stopping.await;
                if let Some(node) = weak.upgrade() {
                    node.exposed.write().remove(&s.id);
                    done(&node, peer, corr);
                }
            });
        }
        Body::Schedule(_) | Body::CancelSchedule(_) => {
            crate::remote_schedule::handle(node, peer, env.target, corr, body)
        }
        Body::Watch(_) | Body::Unwatch(_) | Body::Terminated(_) => {
            crate::remote_watch::handle(node, peer, env.target, body)
        }
        Body::Applied(a) => match node.cluster() {
            Some(c) => crate::cluster::applied_from(&c, peer, a),
            None => node.dead_letter(
                DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget),
                "cluster message",
            ),
        },
        Body::Found(_) | Body::Done(_) => {
            node.dead_letter(DeadLetterReason::Remote(corelane::RemoteReason::Malformed), "system message")
        }
    }
}
