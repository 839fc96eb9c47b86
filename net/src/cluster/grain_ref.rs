//! The sender's side of grains: [`GrainRef`] routes each message to the owner of the grain's
//! partition in the current topology (no lookup), and retries refused asks.

use super::partitions::partition_of;
use super::serve::Refusal;
use super::{Cluster, ClusterInner, HostRef};
use crate::codec::RemoteMessage;
use crate::error::{ErrorCode, RemoteAskError, RemoteSendError};
use crate::node::Finish;
use crate::transport::TellTo;
use crate::{RemoteAsk, RemoteBatchAsk};
use corelane::{AskError, DeadLetterReason, Reply};
use corelane_proto::frame::{GrainName, Head};
use corelane_proto::v1::{Envelope, Kind};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A grain anywhere in the cluster: kind and identity. Its messages go to the owner of its
/// partition in this member's current topology; the grain is activated there on first use.
///
/// `tell` is at most once. An `ask` refused because of a topology change (the receiver is not
/// the owner, not yet handed the partition, or fenced: the message was not handled) is sent
/// again to the new owner within the ask's timeout; an ask lost with its owner (`NodeDown`) is
/// sent again only when allowed ([`GrainAsk::retry_on_node_down`]), since the grain may have
/// handled it.
#[derive(Clone)]
pub struct GrainRef {
    cluster: Cluster,
    kind: Arc<str>,
    identity: Arc<str>,
    partition: u16,
}

impl std::fmt::Debug for GrainRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GrainRef({}/{})", self.kind, self.identity)
    }
}

/// Where a grain's messages go now.
enum Route {
    Local,
    Remote { addr: SocketAddr, incarnation: u64, kind_number: u32 },
}

impl GrainRef {
    pub(crate) fn new(cluster: Cluster, kind: &str, identity: String) -> Self {
        let partition = partition_of(kind, &identity);
        Self { cluster, kind: kind.into(), identity: identity.into(), partition }
    }

    /// The grain's kind.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The grain's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The owner in the current topology, and the topology's epoch. Fails fast when this
    /// member cannot route (it is fenced or left, or no member hosts the kind).
    fn route(&self) -> Result<(Route, u64), RemoteAskError> {
        let c = &self.cluster.inner;
        if c.gone.load(Ordering::Acquire) {
            return Err(unavailable(ErrorCode::ShuttingDown, "this member left the cluster".into()));
        }
        if !c.not_fenced() {
            return Err(unavailable(
                ErrorCode::Fenced,
                "this member is fenced: it could not renew its membership lease (is the membership store reachable?)"
                    .into(),
            ));
        }
        c.with_topology(|topo| match topo.owner_route(&self.kind, self.partition) {
            None => {
                Err(unavailable(ErrorCode::NotOwner, format!("no member hosts grain kind {:?}", self.kind)))
            }
            Some((i, _)) if topo.me == Some(i) => Ok((Route::Local, topo.epoch)),
            Some((i, kind_number)) => {
                let m = &topo.members[i];
                Ok((Route::Remote { addr: m.addr, incarnation: m.incarnation, kind_number }, topo.epoch))
            }
        })
    }

    /// Sends `msg` to the grain. `Ok` means it was queued for its owner (or delivered, when
    /// this member owns it): delivery is at most once.
    ///
    /// # Errors
    /// This member cannot route now (fenced, left, no member hosts the kind), the message is
    /// too large, or the node is shut down.
    pub fn tell<P: RemoteMessage>(&self, msg: &P) -> Result<(), RemoteSendError> {
        let c = &self.cluster.inner;
        let (route, epoch) = self.route().map_err(|e| {
            c.node
                .inner
                .dead_letter(DeadLetterReason::Remote(corelane::RemoteReason::Unreachable), "grain tell");
            RemoteSendError::Unavailable { reason: e.to_string() }
        })?;
        match route {
            Route::Remote { addr, incarnation, kind_number } => {
                let grain = GrainName { kind: &self.kind, kind_number, identity: &self.identity };
                let head = Head {
                    kind: Kind::Tell,
                    manifest: P::manifest(),
                    epoch,
                    grain: Some(grain),
                    incarnation,
                    ..Head::default()
                };
                let to = TellTo::grain(P::manifest(), &self.kind, kind_number, &self.identity, epoch);
                c.node.inner.send_joining(addr, &head, &to, msg)
            }
            Route::Local => {
                let (manifest, payload, identity) = (P::manifest(), msg.to_bytes(), self.identity.clone());
                let trace = corelane::trace::current().map(|t| t.child());
                c.serve_or_hold(
                    &self.kind,
                    self.partition,
                    0,
                    move |c: &Arc<ClusterInner>, r: Result<Arc<dyn HostRef>, Refusal>| match r {
                        Ok(t) => {
                            if let Err(r) = t.tell(identity.as_bytes(), manifest, payload, trace) {
                                c.node.inner.dead_letter(crate::dispatch::refusal(&r).0, "grain tell");
                            }
                        }
                        Err(_) => c.node.inner.dead_letter(
                            DeadLetterReason::Remote(corelane::RemoteReason::Unreachable),
                            "grain tell",
                        ),
                    },
                );
                Ok(())
            }
        }
    }

    /// Sends every message, in order.
    ///
    /// # Errors
    /// The first message that could not be sent (those before it were).
    pub fn batch_tell<'a, P: RemoteMessage>(
        &self,
        msgs: impl IntoIterator<Item = &'a P>,
    ) -> Result<(), RemoteSendError> {
        msgs.into_iter().try_for_each(|m| self.tell(m))
    }

    /// Asks the grain with `msg`; the answer is an `R`. Await it, or [`GrainAsk::wait`].
    pub fn ask<P: RemoteMessage, R: RemoteMessage>(&self, msg: &P) -> GrainAsk<R> {
        let (reply, pending) =
            corelane::integration::request::<Result<R, RemoteAskError>>(self.cluster.inner.node.runtime());
        let retry_on_node_down = Arc::new(AtomicBool::new(false));
        let attempt = Box::new(Attempt {
            grain: self.clone(),
            manifest: P::manifest(),
            payload: msg.to_bytes(),
            reply,
            tries: 0,
            epoch: 0,
            retry_on_node_down: retry_on_node_down.clone(),
            trace: corelane::trace::current().map(|t| t.child()),
        });
        attempt.go();
        GrainAsk { ask: RemoteAsk::new(pending), retry_on_node_down }
    }

    /// Asks with every message, in order; the answers come back in the same order, under
    /// one timeout.
    pub fn batch_ask<'a, P: RemoteMessage, R: RemoteMessage>(
        &self,
        msgs: impl IntoIterator<Item = &'a P>,
    ) -> RemoteBatchAsk<R> {
        RemoteBatchAsk::new(msgs.into_iter().map(|m| self.ask(m).ask).collect())
    }
}

fn unavailable(code: ErrorCode, detail: String) -> RemoteAskError {
    RemoteAskError::Refused { code, detail }
}

/// One grain ask on its way: sent, and sent again after a refusal.
struct Attempt<R: RemoteMessage> {
    grain: GrainRef,
    manifest: &'static str,
    payload: bytes::Bytes,
    reply: Reply<Result<R, RemoteAskError>>,
    tries: u32,
    /// The epoch of the topology it was last routed by.
    epoch: u64,
    retry_on_node_down: Arc<AtomicBool>,
    /// The trace the ask continues, taken from the asking thread (attempts run elsewhere).
    trace: Option<corelane::trace::TraceContext>,
}

/// Why an ask is sent again.
enum Again {
    /// The topology must move on first (the receiver is not the owner, or the owner went).
    NewTopology,
    /// Shortly (a handover in progress, a fenced or lagging receiver).
    Later,
}

/// More attempts than this and the ask fails with the last refusal (the caller's timeout
/// usually ends it long before).
const MAX_TRIES: u32 = 1000;

impl<R: RemoteMessage> Attempt<R> {
    fn go(mut self: Box<Self>) {
        if self.reply.is_canceled() {
            return;
        }
        let (route, epoch) = match self.grain.route() {
            Ok(r) => r,
            Err(e) => return self.reply.send(Err(e)),
        };
        self.epoch = epoch;
        let c = self.grain.cluster.inner.clone();
        match route {
            Route::Local => {
                let (kind, p) = (self.grain.kind.clone(), self.grain.partition);
                c.serve_or_hold(&kind, p, 0, move |c: &Arc<ClusterInner>, r| self.local(c, r));
            }
            Route::Remote { addr, incarnation, kind_number } => {
                let (kind, identity, manifest, payload) = (
                    self.grain.kind.clone(),
                    self.grain.identity.clone(),
                    self.manifest,
                    self.payload.clone(),
                );
                let trace = self.trace.map(|t| t.to_bytes());
                c.node.inner.request(
                    addr,
                    incarnation,
                    |inner, peer, correlation_id| {
                        let head = Head {
                            correlation_id,
                            kind: Kind::Ask,
                            manifest,
                            epoch,
                            grain: Some(GrainName { kind: &kind, kind_number, identity: &identity }),
                            incarnation,
                            trace: trace.as_ref().map_or(&[], |t| &t[..]),
                            ..Head::default()
                        };
                        inner.send_parts(peer, &head, payload.len(), |b| b.extend_from_slice(&payload))
                    },
                    self,
                );
            }
        }
    }

    /// The ask, served by this member (the owner): handled by the activation, or sent again
    /// after a refusal.
    fn local(self: Box<Self>, c: &Arc<ClusterInner>, r: Result<Arc<dyn HostRef>, Refusal>) {
        match r {
            Ok(t) => {
                match t.ask(
                    self.grain.identity.as_bytes(),
                    self.manifest,
                    self.payload.clone(),
                    c.node.runtime(),
                    self.trace,
                ) {
                    Ok(answer) => {
                        let c2 = c.clone();
                        c.rt.spawn(async move {
                            match answer.await {
                                Ok((_, bytes)) => {
                                    self.reply.send(R::decode(bytes).map_err(RemoteAskError::Decode))
                                }
                                // Not taken: this member stopped serving, or the partition's host
                                // had stopped when the request reached it.
                                Err(AskError::NoReply) if !c2.may_serve() || !t.is_alive() => {
                                    self.again(Again::Later)
                                }
                                Err(e) => self.reply.send(Err(unavailable(ErrorCode::Failed, e.to_string()))),
                            }
                        });
                    }
                    Err(r) => {
                        let (_, code, detail) = crate::dispatch::refusal(&r);
                        self.reply.send(Err(unavailable(code, detail)));
                    }
                }
            }
            Err(r) => match r.code {
                ErrorCode::NotOwner => self.again(Again::NewTopology),
                ErrorCode::NotReady | ErrorCode::Fenced => self.again(Again::Later),
                code => self.reply.send(Err(unavailable(code, r.detail))),
            },
        }
    }

    /// Sends again after a refusal: when the topology has moved past the one used, or after a
    /// short backoff (a quarter second at most when a new topology is what it waits for).
    fn again(mut self: Box<Self>, why: Again) {
        self.tries += 1;
        let c = self.grain.cluster.inner.clone();
        c.stats.retries.fetch_add(1, Ordering::Relaxed);
        if self.tries > MAX_TRIES {
            let detail = format!("refused {MAX_TRIES} times while the topology changed");
            return self.reply.send(Err(unavailable(ErrorCode::NotReady, detail)));
        }
        // Half a millisecond, doubling to 16 ms; a new topology cuts the wait short.
        let backoff = Duration::from_micros(500 << self.tries.min(5));
        let mut epochs = c.epoch.subscribe();
        let used = self.epoch;
        c.rt.spawn(async move {
            let wait = match why {
                Again::NewTopology => Duration::from_millis(250),
                Again::Later => backoff,
            };
            let _ = tokio::time::timeout(wait, epochs.wait_for(|e| *e > used)).await;
            self.go();
        });
    }
}

impl<R: RemoteMessage> Finish for Attempt<R> {
    fn finish(self: Box<Self>, outcome: Result<Envelope, RemoteAskError>) {
        match outcome {
            Ok(env) => self.reply.send(R::decode(env.payload).map_err(RemoteAskError::Decode)),
            Err(RemoteAskError::Refused { code, detail }) => match code {
                ErrorCode::NotOwner | ErrorCode::NodeRestarted => self.again(Again::NewTopology),
                ErrorCode::NotReady | ErrorCode::Fenced => self.again(Again::Later),
                code => self.reply.send(Err(RemoteAskError::Refused { code, detail })),
            },
            Err(RemoteAskError::NodeDown) if self.retry_on_node_down.load(Ordering::Relaxed) => {
                self.again(Again::NewTopology)
            }
            Err(e) => self.reply.send(Err(e)),
        }
    }

    fn abandoned(&self) -> bool {
        self.reply.is_canceled()
    }
}

/// The answer to a grain ask: `wait` for it on a plain thread, or await it. A [`RemoteAsk`]
/// that may also be sent again after its owner was lost ([`GrainAsk::retry_on_node_down`]).
#[must_use = "a GrainAsk does nothing unless awaited or waited on"]
pub struct GrainAsk<R: Send + 'static> {
    ask: RemoteAsk<R>,
    retry_on_node_down: Arc<AtomicBool>,
}

impl<R: Send + 'static> GrainAsk<R> {
    /// How long to wait in all, retries included (the runtime's `ask_timeout` unless set).
    pub fn timeout(self, d: Duration) -> Self {
        Self { ask: self.ask.timeout(d), ..self }
    }

    /// Sends the ask again to the new owner when its owner is lost before answering (the
    /// grain may then handle it twice: for idempotent requests). Off by default: the ask
    /// fails with `NodeDown`.
    pub fn retry_on_node_down(self, yes: bool) -> Self {
        self.retry_on_node_down.store(yes, Ordering::Relaxed);
        self
    }

    /// Blocks until the answer, a failure or the timeout. On a shard thread it fails with
    /// `WouldBlock`: await it there.
    ///
    /// # Errors
    /// See [`RemoteAskError`].
    pub fn wait(self) -> Result<R, RemoteAskError> {
        self.ask.wait()
    }
}

impl<R: Send + 'static> Future for GrainAsk<R> {
    type Output = Result<R, RemoteAskError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.ask).poll(cx)
    }
}
