//! Remote scheduling: a node asks another to deliver a message to one of its actors later, at
//! a fixed rate or on a cron schedule, on that node's scheduler (so the timer lives next to the target).

use crate::codec::RemoteMessage;
use crate::dispatch::{done, fail};
use crate::error::{ErrorCode, RemoteAskError};
use crate::node::{Finish, Inner, Node};
use crate::remote_ref::{RemoteAsk, RemoteRef};
use crate::target::Timing;
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
        self.remote_schedule(delay, None, "", msg)
    }

    /// Has the actor's node deliver `msg` to it after `initial`, then every `interval`.
    pub fn schedule<P: RemoteMessage>(
        &self,
        initial: Duration,
        interval: Duration,
        msg: &P,
    ) -> RemoteAsk<RemoteScheduled> {
        self.remote_schedule(initial, Some(interval), "", msg)
    }

    /// Has the actor's node deliver `msg` to it at each instant of the cron expression `expr`
    /// (6 or 7 fields, seconds first, evaluated in UTC there; GoAkt's
    /// `RemoteScheduleWithCron`). An expression that does not parse is refused here, at once.
    pub fn schedule_cron<P: RemoteMessage>(&self, expr: &str, msg: &P) -> RemoteAsk<RemoteScheduled> {
        if let Err(e) = corelane::Cron::parse(expr) {
            let (reply, pending) = corelane::integration::request::<Result<RemoteScheduled, RemoteAskError>>(
                &self.node().inner.rt,
            );
            reply.send(Err(RemoteAskError::Refused { code: ErrorCode::Malformed, detail: e.to_string() }));
            return RemoteAsk::new(pending);
        }
        self.remote_schedule(Duration::ZERO, None, expr, msg)
    }

    fn remote_schedule<P: RemoteMessage>(
        &self,
        delay: Duration,
        interval: Option<Duration>,
        cron: &str,
        msg: &P,
    ) -> RemoteAsk<RemoteScheduled> {
        let node = self.node().clone();
        let inner = &node.inner;
        let (reply, pending) =
            corelane::integration::request::<Result<RemoteScheduled, RemoteAskError>>(&inner.rt);
        let id = inner.correlation();
        let handle = RemoteScheduled { node: node.clone(), peer: self.node_addr(), id };
        let body = Body::Schedule(Schedule {
            id,
            manifest: P::manifest().to_string(),
            payload: msg.to_bytes(),
            delay_nanos: nanos(delay),
            interval_nanos: interval.map_or(0, |i| nanos(i).max(1)),
            cron: cron.to_string(),
        });
        let env = self.system(0, body);
        inner.request(
            self.node_addr(),
            self.incarnation(),
            |inner, peer, c| inner.send(peer, Envelope { correlation_id: c, ..env }),
            Box::new(Confirmed { handle, reply }),
        );
        RemoteAsk::new(pending)
    }
}

/// A duration in nanoseconds, saturated at `u64::MAX` (the receiving node bounds it anyway).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
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

/// Why a remote schedule is refused before it is armed: a limit of this node.
fn within_limits(
    node: &Inner,
    peer: SocketAddr,
    delay: Duration,
    interval: Option<Duration>,
) -> Result<(), String> {
    let l = &node.limits;
    if delay > l.max_schedule_delay || interval.is_some_and(|i| i > l.max_schedule_delay) {
        return Err(format!("delays and intervals are limited to {:?} here", l.max_schedule_delay));
    }
    if interval.is_some_and(|i| i < l.min_schedule_interval) {
        return Err(format!("intervals are at least {:?} here", l.min_schedule_interval));
    }
    let mut all = node.schedules.lock();
    // One-shots that have fired and schedules that ended no longer count.
    let now = Instant::now();
    all.retain(|_, (h, ends)| !h.is_cancelled() && ends.is_none_or(|e| e > now));
    if all.len() >= l.max_schedules {
        return Err(format!("this node keeps at most {} remote schedules", l.max_schedules));
    }
    if all.keys().filter(|(p, _)| *p == peer).count() >= l.max_schedules_per_peer {
        return Err(format!("this node keeps at most {} schedules per peer", l.max_schedules_per_peer));
    }
    Ok(())
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
            let timing = match (s.cron.is_empty(), interval) {
                (false, _) => {
                    if let Err(e) = corelane::Cron::parse(&s.cron) {
                        return fail(node, peer, corr, ErrorCode::Malformed, e.to_string());
                    }
                    Timing::Cron(s.cron)
                }
                (true, Some(interval)) => Timing::Every { initial: delay, interval },
                (true, None) => Timing::Once(delay),
            };
            // A cron schedule's first firing may be far off: only its count is limited.
            let (delay, interval) = match timing {
                Timing::Cron(_) => (Duration::ZERO, None),
                _ => (delay, interval),
            };
            if let Err(why) = within_limits(node, peer, delay, interval) {
                return fail(node, peer, corr, ErrorCode::Limit, why);
            }
            let repeats = !matches!(timing, Timing::Once(_));
            match t.schedule(&node.rt, &s.manifest, s.payload, &timing) {
                Ok(scheduled) => {
                    let ends = (!repeats).then(|| Instant::now() + delay);
                    if let Some((old, _)) = node.schedules.lock().insert((peer, s.id), (scheduled, ends)) {
                        old.cancel(); // the same id again replaces the schedule
                    }
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

/// `peer` is lost (or restarted): the schedules it made here end.
pub(crate) fn peer_lost(node: &Inner, peer: SocketAddr) {
    let ended: Vec<_> = {
        let mut all = node.schedules.lock();
        let keys: Vec<_> = all.keys().filter(|(p, _)| *p == peer).copied().collect();
        keys.iter().filter_map(|k| all.remove(k)).collect()
    };
    for (h, _) in ended {
        h.cancel();
    }
}
