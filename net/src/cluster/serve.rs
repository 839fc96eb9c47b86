//! The owner's side of grain messages: whether this member may serve a grain now, its
//! activation (made on first use), and what becomes of messages it refuses.

use super::partitions::partition_of;
use super::{ClusterInner, Host, HostRef};
use crate::dispatch::{fail, refusal, send_answer};
use crate::error::ErrorCode;
use crate::node::Inner;
use corelane::DeadLetterReason;
use corelane_proto::frame::{GrainName, Head};
use corelane_proto::tell::{GrainTo, PlainTell};
use corelane_proto::v1::{Envelope, Kind};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Why this member does not serve a grain message now.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) code: ErrorCode,
    pub(crate) detail: String,
    /// This member's epoch.
    pub(crate) epoch: u64,
}

impl ClusterInner {
    /// The host of `partition` of `kind`, started now if there is none, for a message from a
    /// sender at `sender_epoch` (0: from this member). Refused when this member is fenced,
    /// behind the sender, not the owner, or not yet handed the partition.
    pub(crate) fn target(
        self: &Arc<Self>,
        kind: &str,
        partition: u16,
        sender_epoch: u64,
    ) -> Result<Arc<dyn HostRef>, Refusal> {
        let Some(k) = self.kinds.get(kind) else {
            let detail = format!("grain kind {kind:?} is not hosted here");
            return Err(self.refuse(ErrorCode::NotOwner, detail, self.current().epoch));
        };
        // Checked under the kind's host lock: a new topology or a fence stops the hosts it
        // finds under that lock after it is published, so a host started here is either
        // allowed by the newest topology or stopped by it.
        let mut hosts = k.hosts.lock();
        let topo = self.topology.read();
        let epoch = topo.epoch;
        if !self.not_fenced() {
            let detail = "this member is fenced: it could not renew its membership lease in time, or left";
            return Err(self.refuse(ErrorCode::Fenced, detail.into(), epoch));
        }
        if sender_epoch > epoch {
            // Behind the sender: not served until this member has caught up (held meanwhile);
            // then served only if it owns the partition at the newer epoch.
            let detail =
                format!("this member's topology (epoch {epoch}) is older than the sender's ({sender_epoch})");
            return Err(self.refuse(ErrorCode::NotReady, detail, epoch));
        }
        let p = partition;
        if !topo.owns(kind, p) {
            let owner = topo.owner(kind, p).map_or("nobody", |m| m.id.as_str());
            let detail = format!("partition {p} of {kind:?} belongs to {owner} at epoch {epoch}");
            return Err(self.refuse(ErrorCode::NotOwner, detail, epoch));
        }
        drop(topo);
        if !self.open.load(Ordering::Relaxed) {
            let detail =
                format!("the cluster has fewer than its minimum of {} members", self.cfg.min_members);
            return Err(self.refuse(ErrorCode::NotReady, detail, epoch));
        }
        if self.gate.pending.load(Ordering::Acquire) != 0
            && self.handover.lock().pending.contains(&(Arc::from(kind), p))
        {
            let detail = format!("partition {p} of {kind:?} is being handed over (epoch {epoch})");
            return Err(self.refuse(ErrorCode::NotReady, detail, epoch));
        }
        match hosts.get(&p) {
            Some(h) if h.stopping => {
                // The previous host drains what it had queued: the next waits for it.
                let detail = format!("partition {p} of {kind:?}: its previous host is still stopping");
                return Err(self.refuse(ErrorCode::NotReady, detail, epoch));
            }
            Some(h) if h.target.is_alive() => return Ok(h.target.clone()),
            // Stopped by itself (or failed to start): replaced.
            _ => {}
        }
        let t = k
            .make
            .host(self.node.runtime(), p, epoch, self, k.live.clone())
            .map_err(|e| self.refuse(ErrorCode::Failed, format!("activation failed: {e}"), epoch))?;
        hosts.insert(p, Host { target: t.clone(), id: t.id(), stopping: false });
        Ok(t)
    }

    /// Why a message cannot be served now. Not counted here: a message refused as not ready
    /// is held and served later (`serve_or_hold`), and its partition is looked at again at
    /// every release of the held messages; `stats.refused` counts what the sender is refused.
    fn refuse(&self, code: ErrorCode, detail: String, epoch: u64) -> Refusal {
        Refusal { code, detail, epoch }
    }
}

/// A grain as an envelope names it.
#[derive(Clone)]
struct GrainId {
    kind: Vec<u8>,
    /// 1 + the kind's position in this member's record (0: by name).
    kind_number: u32,
    identity: Vec<u8>,
}

impl GrainId {
    /// The grain `env` names, moved out of it.
    fn take_from(env: &mut Envelope) -> Self {
        Self {
            identity: env.grain.take().unwrap_or_default(),
            kind: std::mem::take(&mut env.grain_kind),
            kind_number: env.grain_kind_number,
        }
    }
}

thread_local! {
    /// The partition this thread served last: a net thread receiving a stream of messages for
    /// one partition skips the lookup while nothing changed (same topology generation, not
    /// fenced, no handover in progress, the host alive).
    static LAST: std::cell::RefCell<Option<Last>> = const { std::cell::RefCell::new(None) };
}

struct Last {
    /// The member (its state's address, as the node's weak reference gives it).
    cluster: usize,
    gate: Arc<super::Gate>,
    generation: u64,
    kind: Vec<u8>,
    /// The kind's number here (see `ClusterInner::kind_names`).
    kind_number: u32,
    /// The last grain served (a stream of messages for one grain skips the UTF-8 check and
    /// the partition's hash).
    identity: Vec<u8>,
    partition: u16,
    target: Arc<dyn HostRef>,
}

/// Runs `f` with the cached host for grain `identity` of `kind` on `node`'s member, when
/// nothing has changed since it was cached and the grain is the last one served or in the same
/// partition. Touches no lock and no reference count. `f` must not serve another grain message
/// on this thread (delivering to an actor does not).
fn with_cached<R>(
    node: &Inner,
    grain: GrainTo<'_>,
    sender_epoch: u64,
    f: impl FnOnce(&Arc<dyn HostRef>) -> R,
) -> Option<R> {
    let cluster = node.cluster_key()?;
    LAST.with(|l| {
        let l = l.borrow();
        let l = l.as_ref()?;
        let hit = l.cluster == cluster
            && l.gate.quiet(sender_epoch)
            && l.generation == l.gate.generation.load(Ordering::Acquire)
            && (if grain.kind_number == 0 {
                l.kind == grain.kind
            } else {
                l.kind_number == grain.kind_number
            })
            && (l.identity == grain.identity || same_partition(&l.kind, grain.identity, l.partition))
            && l.target.is_alive();
        hit.then(|| f(&l.target))
    })
}

/// Whether grain `identity` (when UTF-8) of `kind` is in `partition`.
fn same_partition(kind: &[u8], identity: &[u8], partition: u16) -> bool {
    let (Ok(kind), Ok(identity)) = (std::str::from_utf8(kind), std::str::from_utf8(identity)) else {
        return false;
    };
    partition_of(kind, identity) == partition
}

/// Caches the host of `grain` (its kind given by name).
fn remember(
    c: &Arc<ClusterInner>,
    generation: u64,
    grain: &GrainId,
    partition: u16,
    target: &Arc<dyn HostRef>,
) {
    let kind_number =
        c.kind_names.iter().position(|k| k.as_bytes() == grain.kind).map_or(0, |i| i as u32 + 1);
    LAST.with(|l| {
        *l.borrow_mut() = Some(Last {
            cluster: Arc::as_ptr(c) as usize,
            gate: c.gate.clone(),
            generation,
            kind: grain.kind.clone(),
            kind_number,
            identity: grain.identity.clone(),
            partition,
            target: target.clone(),
        })
    });
}

/// Serves a grain tell read where it lies in its frame: to the cached host as [`envelope`]
/// delivers it (no envelope built, nothing allocated), or else as the envelope it is.
pub(crate) fn plain_tell(node: &Arc<Inner>, peer: SocketAddr, t: PlainTell<'_>) {
    let Some(grain) = t.grain else {
        return envelope(node, peer, t.to_envelope());
    };
    let epoch = t.epoch;
    let mut t = Some(t);
    let cached = with_cached(node, grain, epoch, |host| {
        let t = t.take().expect("once");
        if t.more == 0 {
            if let Err(r) = host.tell(grain.identity, t.manifest, t.payload, None) {
                node.dead_letter(refusal(&r).0, "grain tell");
            }
            return;
        }
        // A batch (`Envelope::more`): each message in order, as if each had come on its own.
        let refused = &mut |r: crate::protocol::Refusal| node.dead_letter(refusal(&r).0, "grain tell");
        host.tell_all(grain.identity, t.manifest, &mut t.payloads(), refused);
    });
    if let (None, Some(t)) = (cached, t) {
        let mut env = t.to_envelope();
        let grain = GrainId::take_from(&mut env);
        uncached(node, peer, env, grain);
    }
}

/// A grain envelope from `peer`: served now, or held while its partition is being handed
/// over, or refused.
pub(crate) fn envelope(node: &Arc<Inner>, peer: SocketAddr, mut env: Envelope) {
    let grain = GrainId::take_from(&mut env);
    let epoch = env.epoch;
    // The cached host's kind was checked as UTF-8 when it was cached, and so was its last
    // identity; another identity is checked on the way.
    let mut env = Some(env);
    let named = GrainTo { kind: &grain.kind, kind_number: grain.kind_number, identity: &grain.identity };
    let cached = with_cached(node, named, epoch, |t| {
        deliver(node, peer, env.take().expect("once"), &grain.identity, t)
    });
    if cached.is_none() {
        uncached(node, peer, env.expect("not delivered"), grain);
    }
}

/// A grain envelope (its grain taken out into `grain`) whose host is not cached: served from
/// the member's table, held during a handover, or refused.
fn uncached(node: &Arc<Inner>, peer: SocketAddr, env: Envelope, mut grain: GrainId) {
    let epoch = env.epoch;
    // A tell may carry further payloads (`Envelope::more`): each counts.
    let messages = 1 + env.more.len();
    let lost = |reason| node.dead_letters(DeadLetterReason::Remote(reason), "grain message", messages);
    let Some(c) = node.cluster() else {
        lost(corelane::RemoteReason::UnknownTarget);
        let detail = "this node is not a cluster member".to_string();
        return fail(node, peer, env.correlation_id, ErrorCode::NotOwner, detail);
    };
    if grain.kind_number != 0 {
        // Named by its number in this member's record.
        let Some(name) = c.kind_names.get(grain.kind_number as usize - 1) else {
            lost(corelane::RemoteReason::UnknownTarget);
            let detail = format!("grain kind number {} is not hosted here", grain.kind_number);
            return fail(node, peer, env.correlation_id, ErrorCode::NotOwner, detail);
        };
        grain.kind = name.as_bytes().to_vec();
        grain.kind_number = 0;
    }
    let (Ok(kind), Ok(identity)) = (std::str::from_utf8(&grain.kind), std::str::from_utf8(&grain.identity))
    else {
        lost(corelane::RemoteReason::Malformed);
        let detail = "grain kind and identity must be UTF-8".to_string();
        return fail(node, peer, env.correlation_id, ErrorCode::Malformed, detail);
    };
    let p = partition_of(kind, identity);
    let generation = c.gate.generation.load(Ordering::Acquire);
    let g = grain.clone();
    match env.kind() {
        Kind::Tell | Kind::Ask => c.serve_or_hold(
            kind,
            p,
            epoch,
            move |c: &Arc<ClusterInner>, r: Result<Arc<dyn HostRef>, Refusal>| match r {
                Ok(t) => {
                    remember(c, generation, &g, p, &t);
                    deliver(&c.node.inner, peer, env, &g.identity, &t);
                }
                Err(r) if env.kind() == Kind::Tell => tell_refused(c, &g, env, r),
                Err(r) => {
                    let e = Envelope::error_at(env.correlation_id, r.code, r.detail, r.epoch);
                    let _ = c.node.inner.send(peer, e);
                }
            },
        ),
        _ => node.dead_letter(
            DeadLetterReason::Remote(corelane::RemoteReason::Malformed),
            "grain message of another kind than tell or ask",
        ),
    }
}

/// Hands a grain message to its partition's host (an ask's answer goes back when it comes).
fn deliver(node: &Inner, peer: SocketAddr, env: Envelope, identity: &[u8], t: &Arc<dyn HostRef>) {
    let trace = crate::dispatch::trace_of(&env);
    if env.kind() == Kind::Tell {
        if env.more.is_empty() {
            if let Err(r) = t.tell(identity, &env.manifest, env.payload, trace) {
                node.dead_letter(refusal(&r).0, "grain tell");
            }
        } else {
            // A batch (`Envelope::more`, never traced): each message in order, as when cached.
            let refused = &mut |r: crate::protocol::Refusal| node.dead_letter(refusal(&r).0, "grain tell");
            let mut payloads = std::iter::once(env.payload).chain(env.more);
            t.tell_all(identity, &env.manifest, &mut payloads, refused);
        }
        return;
    }
    let corr = env.correlation_id;
    match t.ask(identity, &env.manifest, env.payload, &node.rt, trace) {
        Ok(answer) => match node.cluster() {
            Some(c) => answer_when_ready(&c, peer, corr, answer, t.clone()),
            None => fail(node, peer, corr, ErrorCode::ShuttingDown, "this member is gone".into()),
        },
        Err(r) => {
            let (reason, code, detail) = refusal(&r);
            node.dead_letter(reason, "grain ask");
            fail(node, peer, corr, code, detail);
        }
    }
}

/// Waits for the grain's answer and sends it back (on the net thread's runtime when called
/// there, else on the cluster's). An ask dropped unanswered because this member stopped
/// serving meanwhile is refused as `Fenced` (it was not handled, the sender may retry);
/// otherwise as `Failed`.
fn answer_when_ready(
    c: &Arc<ClusterInner>,
    peer: SocketAddr,
    corr: u64,
    answer: crate::protocol::Answer,
    target: Arc<dyn HostRef>,
) {
    let weak = Arc::downgrade(c);
    let limit = c.node.inner.serve_timeout;
    let rt = tokio::runtime::Handle::try_current().unwrap_or_else(|_| c.rt.clone());
    c.answering.fetch_add(1, Ordering::AcqRel);
    rt.spawn(async move {
        let outcome = tokio::time::timeout(limit, answer).await.ok();
        let Some(c) = weak.upgrade() else { return };
        /// Counts the answer as sent when it has been (or failed to be).
        struct Sent<'a>(&'a AtomicUsize);
        impl Drop for Sent<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let _sent = Sent(&c.answering);
        let unanswered = || {
            if !c.may_serve() {
                let detail = "this member stopped serving before the grain answered";
                Envelope::error_at(corr, ErrorCode::Fenced, detail, c.current().epoch)
            } else if !target.is_alive() {
                // The host had stopped when the request reached it: not taken.
                let detail = "the grain's host stopped before it took the request";
                Envelope::error_at(corr, ErrorCode::NotReady, detail, c.current().epoch)
            } else {
                Envelope::error(corr, ErrorCode::Failed, "the grain dropped the request unanswered")
            }
        };
        send_answer(&c.node.inner, peer, corr, outcome, unanswered);
    });
}

/// A tell this member does not serve: passed to the owner when the sender's topology was
/// older than this member's, otherwise a dead letter (tells are at most once).
fn tell_refused(c: &Arc<ClusterInner>, grain: &GrainId, env: Envelope, r: Refusal) {
    let node = &c.node.inner;
    let kind = std::str::from_utf8(&grain.kind).unwrap_or_default();
    let identity = std::str::from_utf8(&grain.identity).unwrap_or_default();
    if r.code == ErrorCode::NotOwner && env.epoch < r.epoch {
        let topo = c.current();
        let p = partition_of(kind, identity);
        if let Some(owner) =
            topo.owner(kind, p).filter(|o| topo.me.is_none_or(|i| topo.members[i].id != o.id))
        {
            let kind_number = super::topology::kind_number(owner, kind);
            let head = Head {
                kind: Kind::Tell,
                manifest: &env.manifest,
                epoch: topo.epoch,
                grain: Some(GrainName { kind, kind_number, identity }),
                incarnation: owner.incarnation,
                ..Head::default()
            };
            // Each message of a batch (`Envelope::more`) on its own, in order.
            for payload in std::iter::once(env.payload).chain(env.more) {
                if node
                    .send_parts(owner.addr, &head, payload.len(), |b| b.extend_from_slice(&payload))
                    .is_err()
                {
                    node.dead_letter(
                        DeadLetterReason::Remote(corelane::RemoteReason::Unreachable),
                        "grain tell",
                    );
                }
            }
            return;
        }
    }
    let reason = DeadLetterReason::Remote(corelane::RemoteReason::UnknownTarget);
    node.dead_letters(reason, "grain tell", 1 + env.more.len());
}
