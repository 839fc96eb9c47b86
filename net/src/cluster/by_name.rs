//! Named actors and singletons reached by name, wherever they run now: [`ByName`] (and its
//! typed form from [`Cluster::named`]) looks the name up in this member's copy of the registry
//! at every send (a map read, no store request), so it follows the actor when it is relocated.
//! [`Cluster::send`] and [`Cluster::request`] are the one-off forms.

use super::{Cluster, ClusterInner};
use crate::codec::RemoteMessage;
use crate::error::{ErrorCode, RemoteAskError, RemoteSendError};
use crate::node::Finish;
use crate::remote_ref::{RemoteAsk, RemoteBatchAsk, RemoteRef};
use crate::typed::{Destination, Typed};
use bytes::Bytes;
use corelane::{DeadLetterReason, Reply};
use corelane_proto::v1::Envelope;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A named actor or singleton, by its name: each message goes to wherever the registry says
/// it runs at that moment.
///
/// A tell while no actor holds the name (it is being relocated, or it never ran) fails with
/// `Unavailable` and counts an `Unreachable` dead letter. An ask waits for the name to be held
/// again, within the ask's timeout, and is then sent (a name missing means the ask was not
/// sent anywhere, so waiting cannot make it handled twice); an ask lost with the actor's
/// member fails `NodeDown`, as any remote ask.
#[derive(Clone)]
pub struct ByName {
    cluster: Cluster,
    name: Arc<str>,
}

impl std::fmt::Debug for ByName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ByName({})", self.name)
    }
}

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.cluster.inner, &other.cluster.inner)
    }
}

impl ByName {
    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the actor runs now, if the name is held.
    pub fn resolve(&self) -> Option<RemoteRef> {
        self.cluster.actor_of(&self.name)
    }

    /// Sends `msg` to the actor holding the name now.
    ///
    /// # Errors
    /// `Unavailable` when no actor holds the name; otherwise as [`RemoteRef::tell`].
    pub fn tell<P: RemoteMessage>(&self, msg: &P) -> Result<(), RemoteSendError> {
        self.now()?.tell(msg)
    }

    /// Sends `msg` on behalf of `sender`.
    ///
    /// # Errors
    /// As [`ByName::tell`].
    pub fn forward<P: RemoteMessage>(&self, msg: &P, sender: &RemoteRef) -> Result<(), RemoteSendError> {
        self.now()?.forward(msg, sender)
    }

    /// Asks the actor holding the name. If none holds it now (it is being relocated), the ask
    /// waits for one within its timeout; if the actor it went to was no longer there (stopped,
    /// or its node restarted or is shutting down: it was not handled), it is sent again to the
    /// actor that holds the name next.
    pub fn ask<P: RemoteMessage, R: RemoteMessage>(&self, msg: &P) -> RemoteAsk<R> {
        let (reply, pending) =
            corelane::integration::request::<Result<R, RemoteAskError>>(self.cluster.inner.node.runtime());
        let attempt = Box::new(Attempt {
            to: self.clone(),
            manifest: P::manifest(),
            payload: msg.to_bytes(),
            reply,
            sent_to: None,
        });
        attempt.go();
        RemoteAsk::new(pending)
    }

    /// Sends every message, in order.
    ///
    /// # Errors
    /// The first message that could not be sent (those before it were).
    pub fn batch_tell<'a, P: RemoteMessage>(
        &self,
        msgs: impl IntoIterator<Item = &'a P>,
    ) -> Result<(), RemoteSendError> {
        let to = self.now()?;
        msgs.into_iter().try_for_each(|m| to.tell(m))
    }

    /// The actor holding the name now, or the error a send fails with.
    fn now(&self) -> Result<RemoteRef, RemoteSendError> {
        self.resolve().ok_or_else(|| {
            self.cluster.inner.node.inner.dead_letter(
                DeadLetterReason::Remote(corelane::RemoteReason::Unreachable),
                "named actor tell",
            );
            RemoteSendError::Unavailable {
                reason: format!("no actor holds the name {:?} in the cluster now", self.name),
            }
        })
    }
}

impl Destination for ByName {
    type Ask<R: RemoteMessage> = RemoteAsk<R>;
    fn tell<P: RemoteMessage>(&self, msg: &P) -> Result<(), RemoteSendError> {
        ByName::tell(self, msg)
    }
    fn ask<P: RemoteMessage, R: RemoteMessage>(&self, msg: &P) -> RemoteAsk<R> {
        ByName::ask(self, msg)
    }
    fn batch_ask<'a, P: RemoteMessage, R: RemoteMessage>(
        &self,
        msgs: impl IntoIterator<Item = &'a P>,
    ) -> RemoteBatchAsk<R> {
        RemoteBatchAsk::new(msgs.into_iter().map(|m| self.ask(m)).collect())
    }
}

impl<M> Typed<ByName, M> {
    /// Sends `msg` on behalf of `sender` (the original sender of a message being passed on).
    ///
    /// # Errors
    /// As [`ByName::tell`].
    pub fn forward<P: RemoteMessage>(&self, msg: &P, sender: &RemoteRef) -> Result<(), RemoteSendError>
    where
        M: crate::Accepts<P>,
    {
        self.untyped().forward(msg, sender)
    }
}

impl Cluster {
    /// Named actor or singleton `name`, wherever it runs at each send, typed by its message
    /// type `M`.
    pub fn named<M>(&self, name: impl Into<String>) -> Typed<ByName, M> {
        Typed::new(self.by_name(name))
    }

    /// Named actor or singleton `name`, wherever it runs at each send (untyped).
    pub fn by_name(&self, name: impl Into<String>) -> ByName {
        ByName { cluster: self.clone(), name: name.into().into() }
    }

    /// Sends `msg` to named actor or singleton `name`, wherever it runs.
    ///
    /// # Errors
    /// As [`ByName::tell`].
    pub fn send<P: RemoteMessage>(&self, name: &str, msg: &P) -> Result<(), RemoteSendError> {
        match self.actor_of(name) {
            Some(r) => r.tell(msg),
            None => self.by_name(name).tell(msg),
        }
    }

    /// Asks named actor or singleton `name`, wherever it runs, waiting at most `timeout` (for
    /// the name to be held, if it is being relocated, and for the answer). An ask that reaches
    /// an actor already gone (this member's copy of the registry had not yet seen it go: a
    /// respawn, a relocation) is sent again to the name's next holder.
    pub fn request<P: RemoteMessage, R: RemoteMessage>(
        &self,
        name: &str,
        msg: &P,
        timeout: Duration,
    ) -> RemoteAsk<R> {
        self.by_name(name).ask(msg).timeout(timeout)
    }
}

/// One ask by name on its way: sent to the actor holding the name, and sent again if that
/// actor was gone before it could handle it.
struct Attempt<R: RemoteMessage> {
    to: ByName,
    manifest: &'static str,
    payload: Bytes,
    reply: Reply<Result<R, RemoteAskError>>,
    /// The actor it was last sent to (when sent again, it was gone: not asked again).
    sent_to: Option<RemoteRef>,
}

impl<R: RemoteMessage> Attempt<R> {
    fn go(self: Box<Self>) {
        if self.reply.is_canceled() {
            return;
        }
        match self.to.resolve() {
            Some(r) if self.sent_to.as_ref() != Some(&r) => self.send(r),
            // Not held now, or held by the actor that was gone: wait for the registry to change.
            _ => {
                let c = self.to.cluster.inner.clone();
                c.rt.spawn(async move {
                    // Until the asker gives up (its timeout, or it dropped the ask).
                    let far = Instant::now() + Duration::from_secs(24 * 3600);
                    let (cluster, name) = (self.to.cluster.clone(), self.to.name.clone());
                    let skip = self.sent_to.clone();
                    let found =
                        find(&cluster.inner, &name, far, || self.reply.is_canceled(), skip.as_ref()).await;
                    if let Some(r) = found {
                        self.send(r);
                    }
                });
            }
        }
    }

    fn send(mut self: Box<Self>, r: RemoteRef) {
        let (target, incarnation, manifest, payload) =
            (r.id(), r.incarnation(), self.manifest, self.payload.clone());
        let node = r.node().inner.clone();
        self.sent_to = Some(r.clone());
        node.request(
            r.node_addr(),
            incarnation,
            |inner, peer, c| {
                inner.send(peer, Envelope { incarnation, ..Envelope::ask(target, c, manifest, payload) })
            },
            self,
        );
    }
}

impl<R: RemoteMessage> Finish for Attempt<R> {
    fn finish(self: Box<Self>, outcome: Result<Envelope, RemoteAskError>) {
        match outcome {
            Ok(env) => self.reply.send(R::decode(env.payload).map_err(RemoteAskError::Decode)),
            // The actor was not there to handle it: whoever holds the name next gets it.
            Err(RemoteAskError::Refused {
                code: ErrorCode::UnknownTarget | ErrorCode::NodeRestarted | ErrorCode::ShuttingDown,
                ..
            }) => {
                self.to.cluster.inner.stats.retries.fetch_add(1, Ordering::Relaxed);
                self.go()
            }
            Err(e) => self.reply.send(Err(e)),
        }
    }

    fn abandoned(&self) -> bool {
        self.reply.is_canceled()
    }
}

/// Named actor `name`, once this member's copy of the registry shows it (other than `not`), or
/// `None` at `deadline` or once `give_up` says so.
pub(super) async fn find(
    cluster: &ClusterInner,
    name: &str,
    deadline: Instant,
    give_up: impl Fn() -> bool,
    not: Option<&RemoteRef>,
) -> Option<RemoteRef> {
    // How often `give_up` is asked while nothing changes.
    const CHECK: Duration = Duration::from_millis(50);
    loop {
        let claimed = cluster.names.claimed.notified();
        tokio::pin!(claimed);
        // Registered before the look, so a claim between the two is not missed.
        claimed.as_mut().enable();
        if let Some(r) = cluster.actor_of(name).filter(|r| Some(r) != not) {
            return Some(r);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || give_up() {
            return None;
        }
        let _ = tokio::time::timeout(left.min(CHECK), claimed).await;
    }
}
