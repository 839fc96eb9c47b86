//! Operations on another node itself: look an actor up by name, spawn one of a kind it
//! registered, respawn a named one.

use crate::error::RemoteAskError;
use crate::node::{Finish, Node};
use crate::remote_ref::{RemoteAsk, RemoteRef};
use corelane::Reply;
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{Envelope, Found, Lookup, Respawn, Spawn};
use prost::Message;
use std::net::SocketAddr;

/// Another node, as the target of node-level operations.
#[derive(Clone, Debug)]
pub struct RemoteNode {
    node: Node,
    peer: SocketAddr,
}

impl RemoteNode {
    pub(crate) fn new(node: Node, peer: SocketAddr) -> Self {
        Self { node, peer }
    }

    /// The actor registered as `name` there (its message type must be one that node serves).
    /// Fails with `Refused(NotFound)` when there is none.
    pub fn lookup(&self, name: &str) -> RemoteAsk<RemoteRef> {
        self.resolve(Body::Lookup(Lookup { name: name.into() }))
    }

    /// Spawns an actor of `kind` there, registered as `name` unless it is empty. Only kinds
    /// that node registered can be spawned (`Refused(UnknownKind)` otherwise).
    pub fn spawn(&self, kind: &str, name: &str) -> RemoteAsk<RemoteRef> {
        self.resolve(Body::Spawn(Spawn { kind: kind.into(), name: name.into(), ..Default::default() }))
    }

    /// Spawns an actor of `kind` there under `name`, claimed in the cluster's registry by that
    /// member (`Refused(NameTaken)` when another holds it).
    pub(crate) fn spawn_claimed(&self, s: Spawn) -> RemoteAsk<RemoteRef> {
        self.resolve(Body::Spawn(s))
    }

    /// Stops the actor registered as `name` there (spawned by a node with `spawn`) and spawns
    /// its kind again under the same name; the answer is the new actor.
    pub fn respawn(&self, name: &str) -> RemoteAsk<RemoteRef> {
        self.resolve(Body::Respawn(Respawn { name: name.into() }))
    }

    fn resolve(&self, body: Body) -> RemoteAsk<RemoteRef> {
        let inner = &self.node.inner;
        let (reply, pending) = corelane::integration::request::<Result<RemoteRef, RemoteAskError>>(&inner.rt);
        let finish = Box::new(Resolved { node: self.node.clone(), peer: self.peer, reply });
        inner.request(self.peer, 0, |inner, peer, c| inner.send(peer, Envelope::system(0, c, body)), finish);
        RemoteAsk::new(pending)
    }
}

/// Finishes a lookup, spawn or respawn: the `Found` answer as a `RemoteRef`.
struct Resolved {
    node: Node,
    peer: SocketAddr,
    reply: Reply<Result<RemoteRef, RemoteAskError>>,
}

impl Finish for Resolved {
    fn finish(self: Box<Self>, outcome: Result<Envelope, RemoteAskError>) {
        let r = outcome.and_then(|env| {
            let found = Found::decode(env.payload).map_err(|e| crate::CodecError {
                manifest: "corelane.remote.v1.Found".into(),
                detail: e.to_string(),
            })?;
            let (id, incarnation) = found.actor.map_or((0, 0), |a| (a.id, a.incarnation));
            Ok(RemoteRef::new(self.node.clone(), self.peer, id, incarnation))
        });
        self.reply.send(r);
    }
    fn abandoned(&self) -> bool {
        self.reply.is_canceled()
    }
}
