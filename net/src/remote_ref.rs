//! References to actors on other nodes, and the answers to asks sent to them.

use crate::codec::RemoteMessage;
use crate::error::{RemoteAskError, RemoteSendError};
use crate::node::{self, Node};
use corelane::{AskError, Pending};
use corelane_proto::frame::Head;
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{ActorAddress, Done, Envelope, Kind, Stop};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// An actor on another node (or on this one, as other nodes see it).
///
/// The same operations as a local `ActorRef`, with wire messages: `tell`, `ask` with a
/// timeout, `batch_tell`, `batch_ask`, `forward`, `stop`. Delivery is at most once; the order
/// of the messages one thread (or actor) sends to one remote actor is kept.
#[derive(Clone)]
pub struct RemoteRef {
    node: Node,
    peer: SocketAddr,
    id: u64,
    /// The incarnation of the actor's node the id belongs to (0: unknown, not checked there).
    incarnation: u64,
}

impl std::fmt::Debug for RemoteRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteRef({}/{:#x}@{:x})", self.peer, self.id, self.incarnation)
    }
}

impl PartialEq for RemoteRef {
    fn eq(&self, other: &Self) -> bool {
        (self.peer, self.id, self.incarnation) == (other.peer, other.id, other.incarnation)
    }
}
impl Eq for RemoteRef {}

impl std::hash::Hash for RemoteRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.peer, self.id, self.incarnation).hash(state)
    }
}

impl RemoteRef {
    pub(crate) fn new(node: Node, peer: SocketAddr, id: u64, incarnation: u64) -> Self {
        Self { node, peer, id, incarnation }
    }

    /// The incarnation of the actor's node this reference belongs to: a message sent through
    /// it to a restarted node (same address, new incarnation) is refused there, never
    /// delivered to whatever actor now has the id. 0 when unknown (made from a bare id with
    /// [`Node::remote_ref`]); then it is not checked.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The local node this reference sends through.
    pub(crate) fn node(&self) -> &Node {
        &self.node
    }

    /// The node the actor lives on.
    pub fn node_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The actor's id on its node.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The actor's address as it travels in messages.
    pub fn address(&self) -> ActorAddress {
        ActorAddress { node: self.peer.to_string(), id: self.id, incarnation: self.incarnation }
    }

    /// Sends `msg`. `Ok` means it was queued for the network, not that it arrived: delivery
    /// is at most once, and what the remote node cannot deliver is a dead letter there.
    ///
    /// # Errors
    /// The message is larger than the maximum frame, or this node has shut down.
    pub fn tell<P: RemoteMessage>(&self, msg: &P) -> Result<(), RemoteSendError> {
        self.node.inner.send_tell(self.peer, self.id, self.incarnation, msg)
    }

    /// Sends a payload already encoded (of type `manifest`), as `tell`.
    pub(crate) fn tell_payload(&self, manifest: &str, payload: bytes::Bytes) -> Result<(), RemoteSendError> {
        let env = Envelope { incarnation: self.incarnation, ..Envelope::tell(self.id, manifest, payload) };
        self.node.inner.send(self.peer, env)
    }

    /// Sends `msg` on behalf of `sender` (the original sender of a message being passed on).
    ///
    /// # Errors
    /// As [`RemoteRef::tell`].
    pub fn forward<P: RemoteMessage>(&self, msg: &P, sender: &RemoteRef) -> Result<(), RemoteSendError> {
        let mut env = Envelope::tell(self.id, P::manifest(), msg.to_bytes());
        env.sender = Some(sender.address());
        env.incarnation = self.incarnation;
        self.node.inner.send(self.peer, env)
    }

    /// Sends every message, in order.
    ///
    /// # Errors
    /// The first message that could not be sent (those before it were).
    pub fn batch_tell<'a, P: RemoteMessage>(
        &self,
        msgs: impl IntoIterator<Item = &'a P>,
    ) -> Result<(), RemoteSendError> {
        for m in msgs {
            self.tell(m)?;
        }
        Ok(())
    }

    /// Asks with `msg`; the answer is an `R`. Wait for it ([`RemoteAsk::wait`]) or await it.
    pub fn ask<P: RemoteMessage, R: RemoteMessage>(&self, msg: &P) -> RemoteAsk<R> {
        let (target, incarnation) = (self.id, self.incarnation);
        node::ask(&self.node.inner, self.peer, incarnation, |inner, peer, correlation_id| {
            let head = Head {
                target,
                correlation_id,
                kind: Kind::Ask,
                manifest: P::manifest(),
                incarnation,
                ..Head::default()
            };
            inner.send_message(peer, &head, msg)
        })
    }

    /// Asks with every message, in order; the answers come back in the same order.
    pub fn batch_ask<'a, P: RemoteMessage, R: RemoteMessage>(
        &self,
        msgs: impl IntoIterator<Item = &'a P>,
    ) -> RemoteBatchAsk<R> {
        RemoteBatchAsk::new(msgs.into_iter().map(|m| self.ask(m)).collect())
    }

    /// Stops the actor gracefully; the answer comes when it has stopped (or fails if it was
    /// not known there).
    pub fn stop(&self) -> RemoteAsk<Done> {
        let env = self.system(0, Body::Stop(Stop { id: self.id }));
        node::ask(&self.node.inner, self.peer, self.incarnation, |inner, peer, c| {
            inner.send(peer, Envelope { correlation_id: c, ..env })
        })
    }

    /// A system envelope about this actor (its incarnation checked there).
    pub(crate) fn system(&self, correlation_id: u64, body: Body) -> Envelope {
        Envelope { incarnation: self.incarnation, ..Envelope::system(self.id, correlation_id, body) }
    }
}

/// The answer to a remote ask: `wait` for it on a plain thread, or await it.
#[must_use = "a RemoteAsk does nothing unless awaited or waited on"]
pub struct RemoteAsk<R: Send + 'static> {
    pending: Pending<Result<R, RemoteAskError>>,
}

impl<R: Send + 'static> RemoteAsk<R> {
    pub(crate) fn new(pending: Pending<Result<R, RemoteAskError>>) -> Self {
        Self { pending }
    }

    /// How long to wait (the runtime's `ask_timeout` unless set).
    pub fn timeout(self, d: Duration) -> Self {
        Self { pending: self.pending.timeout(d) }
    }

    /// Blocks until the answer, a failure or the timeout. On a shard thread it fails with
    /// `WouldBlock`: await it there. The thread parks at once (a network round trip is far
    /// longer than a wake-up; spinning would take the core from the net thread).
    ///
    /// # Errors
    /// See [`RemoteAskError`].
    pub fn wait(self) -> Result<R, RemoteAskError> {
        flatten(corelane::integration::wait_parked(self.pending))
    }
}

impl<R: Send + 'static> Future for RemoteAsk<R> {
    type Output = Result<R, RemoteAskError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.pending).poll(cx).map(flatten)
    }
}

fn flatten<R>(r: Result<Result<R, RemoteAskError>, AskError>) -> Result<R, RemoteAskError> {
    match r {
        Ok(r) => r,
        Err(AskError::Timeout) => Err(RemoteAskError::Timeout),
        Err(AskError::WouldBlock) => Err(RemoteAskError::WouldBlock),
        Err(AskError::Closed) => Err(RemoteAskError::Send(RemoteSendError::Closed)),
        // The node dropped the ask unanswered: only when it could not reach the peer.
        Err(_) => Err(RemoteAskError::NodeDown),
    }
}

/// The answers to a batch of asks, in order, under one timeout.
#[must_use = "a RemoteBatchAsk does nothing unless waited on"]
pub struct RemoteBatchAsk<R: Send + 'static> {
    asks: Vec<RemoteAsk<R>>,
    timeout: Option<Duration>,
}

impl<R: Send + 'static> RemoteBatchAsk<R> {
    pub(crate) fn new(asks: Vec<RemoteAsk<R>>) -> Self {
        Self { asks, timeout: None }
    }

    /// How long to wait for all of them.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// Blocks until every answer is in or the timeout passed; one result per ask, in order.
    pub fn wait(self) -> Vec<Result<R, RemoteAskError>> {
        let deadline = self.timeout.map(|d| std::time::Instant::now() + d);
        self.asks
            .into_iter()
            .map(|a| match deadline {
                Some(at) => a.timeout(at.saturating_duration_since(std::time::Instant::now())).wait(),
                None => a.wait(),
            })
            .collect()
    }
}
