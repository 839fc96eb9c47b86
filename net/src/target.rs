//! A local actor as other nodes reach it: its ref and the protocol its messages come in by.

use crate::protocol::{Answer, Protocol, Refusal};
use crate::RemoteRef;
use bytes::Bytes;
use corelane::trace::TraceContext;
use corelane::{ActorRef, AnyRef, Handle, Pending, RegisterError, Scheduled};
use std::sync::Arc;
use std::time::Duration;

/// When a schedule's tells fire.
pub(crate) enum Timing {
    /// Once, after the delay.
    Once(Duration),
    /// After `initial`, then every `interval`.
    Every { initial: Duration, interval: Duration },
    /// At each instant of the cron expression.
    Cron(String),
}

/// Tells to one actor gathered while the net thread hands over what one read brought, sent
/// to the actor's shard as one packet (one lane push and one wake for all).
pub(crate) trait Gather {
    /// Decodes a tell (from `sender`, when it carried one) and keeps it for the next flush.
    fn tell(&mut self, manifest: &str, payload: Bytes, sender: Option<RemoteRef>) -> Result<(), Refusal>;
    /// Decodes tells of one manifest without a sender (a batch: `Envelope::more`) and keeps
    /// them, in order, for the next flush; `refused` hears of each that is not kept. The
    /// manifest is looked up once.
    fn tell_all(
        &mut self,
        manifest: &str,
        payloads: &mut dyn Iterator<Item = Bytes>,
        refused: &mut dyn FnMut(Refusal),
    );
    /// Sends the tells kept, in order.
    fn flush(&mut self);
}

/// A local actor reachable from other nodes, whatever its message type.
pub(crate) trait Target: Send + Sync {
    /// Starts gathering tells for the actor (see [`Gather`]).
    fn gather(&self) -> Box<dyn Gather>;
    /// Delivers an ask; the answer comes through the returned future.
    /// A tell that continues a trace (it is not gathered: delivered at once, after the tells
    /// gathered before it).
    fn tell_traced(
        &self,
        manifest: &str,
        payload: Bytes,
        sender: Option<RemoteRef>,
        trace: TraceContext,
    ) -> Result<(), Refusal>;
    fn ask(
        &self,
        manifest: &str,
        payload: Bytes,
        rt: &Handle,
        trace: Option<TraceContext>,
    ) -> Result<Answer, Refusal>;
    /// Schedules tells of one payload on this node's scheduler.
    fn schedule(
        &self,
        rt: &Handle,
        manifest: &str,
        payload: Bytes,
        timing: &Timing,
    ) -> Result<Scheduled, Refusal>;
    fn stop(&self) -> Pending<()>;
    /// Registers the actor under `name` in the runtime.
    fn register(&self, rt: &Handle, name: &str) -> Result<(), RegisterError>;
    fn is_alive(&self) -> bool;
    fn untyped(&self) -> AnyRef;
}

pub(crate) struct Exposed<M: Send + 'static> {
    actor: ActorRef<M>,
    protocol: Arc<Protocol<M>>,
}

impl<M: Send + 'static> Exposed<M> {
    pub(crate) fn new(actor: ActorRef<M>, protocol: Arc<Protocol<M>>) -> Self {
        Self { actor, protocol }
    }

    /// The messages of a repeating schedule: `first`, then the payload decoded again.
    fn again(&self, first: M, manifest: &str, payload: Bytes) -> impl FnMut() -> M + Send + 'static {
        let (protocol, manifest) = (self.protocol.clone(), manifest.to_string());
        let mut first = Some(first);
        move || match first.take() {
            Some(m) => m,
            None => protocol
                .decode_tell(&manifest, payload.clone(), None)
                .unwrap_or_else(|_| unreachable!("it decoded once")),
        }
    }
}

impl<M: Send + 'static> Target for Exposed<M> {
    fn gather(&self) -> Box<dyn Gather> {
        Box::new(Gathered { actor: self.actor.clone(), protocol: self.protocol.clone(), msgs: Vec::new() })
    }

    fn tell_traced(
        &self,
        manifest: &str,
        payload: Bytes,
        sender: Option<RemoteRef>,
        trace: TraceContext,
    ) -> Result<(), Refusal> {
        let m = self.protocol.decode_tell(manifest, payload, sender)?;
        let _ = corelane::integration::tell_traced(&self.actor, m, Some(trace));
        Ok(())
    }

    fn ask(
        &self,
        manifest: &str,
        payload: Bytes,
        rt: &Handle,
        trace: Option<TraceContext>,
    ) -> Result<Answer, Refusal> {
        let (m, answer) = self.protocol.decode_ask(manifest, payload, rt)?;
        let _ = corelane::integration::tell_traced(&self.actor, m, trace);
        Ok(answer)
    }

    fn schedule(
        &self,
        rt: &Handle,
        manifest: &str,
        payload: Bytes,
        timing: &Timing,
    ) -> Result<Scheduled, Refusal> {
        // Decoded once now, so a bad payload is refused at scheduling; again at each firing.
        let first = self.protocol.decode_tell(manifest, payload.clone(), None)?;
        match timing {
            Timing::Once(delay) => Ok(rt.schedule_once(*delay, &self.actor, first)),
            Timing::Every { initial, interval } => {
                Ok(rt.schedule(*initial, *interval, &self.actor, self.again(first, manifest, payload)))
            }
            Timing::Cron(expr) => {
                rt.schedule_cron(expr, &self.actor, self.again(first, manifest, payload)).map_err(|e| {
                    Refusal::Malformed(crate::CodecError { manifest: "cron".into(), detail: e.to_string() })
                })
            }
        }
    }

    fn stop(&self) -> Pending<()> {
        self.actor.stop()
    }

    fn register(&self, rt: &Handle, name: &str) -> Result<(), RegisterError> {
        rt.register(name, &self.actor)
    }

    fn is_alive(&self) -> bool {
        self.actor.is_alive()
    }

    fn untyped(&self) -> AnyRef {
        self.actor.untyped()
    }
}

/// Tells to one actor of message type `M`, decoded and kept until flushed.
struct Gathered<M: Send + 'static> {
    actor: ActorRef<M>,
    protocol: Arc<Protocol<M>>,
    msgs: Vec<M>,
}

impl<M: Send + 'static> Gather for Gathered<M> {
    fn tell(&mut self, manifest: &str, payload: Bytes, sender: Option<RemoteRef>) -> Result<(), Refusal> {
        self.msgs.push(self.protocol.decode_tell(manifest, payload, sender)?);
        Ok(())
    }

    fn tell_all(
        &mut self,
        manifest: &str,
        payloads: &mut dyn Iterator<Item = Bytes>,
        refused: &mut dyn FnMut(Refusal),
    ) {
        let msgs = &mut self.msgs;
        self.protocol.decode_tells(manifest, payloads, refused, |m| msgs.push(m));
    }

    fn flush(&mut self) {
        match self.msgs.len() {
            0 => {}
            // A stopped actor or a closed runtime makes them dead letters, counted by the engine.
            1 => {
                let _ = self.actor.tell(self.msgs.pop().expect("one"));
            }
            _ => {
                let _ = self.actor.batch_tell(std::mem::take(&mut self.msgs));
            }
        }
    }
}

impl<M: Send + 'static> Drop for Gathered<M> {
    fn drop(&mut self) {
        self.flush();
    }
}
