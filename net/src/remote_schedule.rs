//! Remote scheduling: a node asks another to deliver a message to one of its actors later, or
//! at a fixed rate, on that node's scheduler (so the timer lives next to the target).

use crate::codec::RemoteMessage;
use crate::dispatch::{done, fail};
use crate::error::{ErrorCode, RemoteAskError};
use crate::node::{Finish, Inner, Node};
use crate::remote_ref::{RemoteAsk, RemoteRef};
use corelane::Reply;
use corelane_proto::v1::system_message::Body;
use corelane_proto::v1::{CancelSchedule, Envelope, Schedule};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A schedule made on another node; `cancel` it from anywhere.
#[derive(Clone, Debug)]
pub struct RemoteScheduled {
    node: Node,
    peer: SocketAddr,
    id: u64,
}

impl RemoteScheduled {
    /// Cancels it: the request is sent, and deliveries stop when it arrives. Fire and forget;
    /// a schedule unknown there (ended, or its node restarted) is ignored.
    pub fn cancel(&self) {
        let body = Body::CancelSchedule(CancelSchedule { id: self.id });
        let _ = self.node.inner.send(self.peer, Envelope::system(0, 0, body));
    }
}

impl RemoteRef {
    /// Has the actor's node deliver `msg` to it after `delay`. The answer says it was
    /// scheduled there (or why not: an unknown actor, a manifest it does not accept).
    pub fn schedule_once<P: RemoteMessage>(&self, delay: Duration, msg: &P) -> RemoteAsk<RemoteScheduled> {
        self.remote_schedule(delay, None, msg)
    }

    /// Has the actor's node deliver `msg` to it after `initial`, then every `interval`.
    pub fn schedule<P: RemoteMessage>(
        &self,
        initial: Duration,
        interval: Duration,
        msg: &P,
    ) -> RemoteAsk<RemoteScheduled> {
        self.remote_schedule(initial, Some(interval), msg)
    }

    fn remote_schedule<P: RemoteMessage>(
        &self,
        delay: Duration,
        interval: Option<Duration>,
        msg: &P,
    ) -> RemoteAsk<RemoteScheduled> {
        let node = self.node().clone();
        let inner = &node.inner;
        let (reply, pending) = inner.rt.request::<Result<RemoteScheduled, RemoteAskError>>();
        let id = inner.correlation();
        let handle = RemoteScheduled { node: node.clone(), peer: self.node_addr(), id };
        let body = Body::Schedule(Schedule {
            id,
            manifest: P::manifest().to_string(),
            payload: msg.to_bytes(),
            delay_nanos: delay.as_nanos() as u64,
            interval_nanos: interval.map_or(0, |i| i.as_nanos().max(1) as u64),
        });
        let target = self.id();
        inner.request(
            self.node_addr(),
            |inner, peer, c| inner.send(peer, Envelope::system(target, c, body)),
            Box::new(Confirmed { handle, reply }),
        );
        RemoteAsk::new(pending)
    }
}

/// Finishes a schedule request: `Done` means it is armed there.
struct Confirmed {
    handle: RemoteScheduled,
    reply: Reply<Result<RemoteScheduled, RemoteAskError>>,
}

impl Finish for Confirmed {
    fn finish(self: Box<Self>, outcome: Result<Envelope, RemoteAskError>) {
        let Confirmed { handle, reply } = *self;
        reply.send(outcome.map(|_| handle));
    }
    fn abandoned(&self) -> bool {
        self.reply.is_canceled()
    }
}

/// The receiving side: arm or cancel.
pub(crate) fn handle(node: &Arc<Inner>, peer: SocketAddr, target: u64, corr: u64, body: Body) {
    match body {
        Body::Schedule(s) => {
            let Some(t) = node.exposed.read().get(&target).cloned() else {
                return fail(
                    node,
                    peer,
                    corr,
                    ErrorCode::UnknownTarget,
                    format!("no actor {target:#x} here"),
                );
            };
            let delay = Duration::from_nanos(s.delay_nanos);
            let interval = (s.interval_nanos > 0).then(|| Duration::from_nanos(s.interval_nanos));
            match t.schedule(&node.rt, &s.manifest, s.payload, delay, interval) {
                Ok(scheduled) => {
                    let ends = interval.is_none().then(|| Instant::now() + delay);
                    let mut all = node.schedules.lock();
                    // One-shots that have fired, and schedules that ended, are swept now and
                    // then as new ones come.
                    if all.len() % 256 == 255 {
                        let now = Instant::now();
                        all.retain(|_, (h, ends)| !h.is_cancelled() && ends.is_none_or(|e| e > now));
                    }
                    all.insert((peer, s.id), (scheduled, ends));
                    drop(all);
                    done(node, peer, corr);
                }
                Err(r) => {
                    let (_, code, detail) = crate::dispatch::refusal(&r);
                    fail(node, peer, corr, code, detail);
                }
            }
        }
        Body::CancelSchedule(c) => {
            if let Some((h, _)) = node.schedules.lock().remove(&(peer, c.id)) {
                h.cancel();
            }
            if corr != 0 {
                done(node, peer, corr);
            }
        }
        _ => {}
    }
}
