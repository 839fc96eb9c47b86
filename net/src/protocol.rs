//! How wire messages become messages of local actors: a [`Protocol`] per actor message type.

use crate::codec::{CodecError, RemoteMessage};
use crate::typed::{Accepts, Answers};
use crate::RemoteRef;
use bytes::Bytes;
use corelane::{AskError, Handle, Reply};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

/// An ask's answer on its way back: the reply's manifest and encoding.
pub(crate) type Answer = Pin<Box<dyn Future<Output = Result<(&'static str, Bytes), AskError>> + Send>>;

type TellFn<M> = Box<dyn Fn(Bytes, Option<RemoteRef>) -> Result<M, CodecError> + Send + Sync>;
type AskFn<M> = Box<dyn Fn(Bytes, &Handle) -> Result<(M, Answer), CodecError> + Send + Sync>;

enum Entry<M> {
    Tell(TellFn<M>),
    Ask(AskFn<M>),
}

/// The wire messages actors of message type `M` accept from other nodes, and how each becomes
/// an `M`. Registered on a node with [`Node::serve`](crate::Node::serve).
///
/// ```
/// use corelane::Reply;
/// use corelane_net::Protocol;
/// # #[derive(Clone, PartialEq, prost::Message)] pub struct Deposit { #[prost(uint64, tag = "1")] pub amount: u64 }
/// # impl prost::Name for Deposit { const NAME: &'static str = "Deposit"; const PACKAGE: &'static str = "bank.v1"; }
/// # #[derive(Clone, PartialEq, prost::Message)] pub struct GetBalance {}
/// # impl prost::Name for GetBalance { const NAME: &'static str = "GetBalance"; const PACKAGE: &'static str = "bank.v1"; }
/// # #[derive(Clone, PartialEq, prost::Message)] pub struct Balance { #[prost(uint64, tag = "1")] pub amount: u64 }
/// # impl prost::Name for Balance { const NAME: &'static str = "Balance"; const PACKAGE: &'static str = "bank.v1"; }
///
/// enum AccountMsg {
///     Deposit(u64),
///     Balance(Reply<Balance>),
/// }
///
/// let protocol = Protocol::<AccountMsg>::new()
///     .tell(|d: Deposit| AccountMsg::Deposit(d.amount))
///     .ask(|_: GetBalance, reply| AccountMsg::Balance(reply));
/// assert_eq!(protocol.manifests().count(), 2);
/// ```
pub struct Protocol<M> {
    entries: HashMap<String, Entry<M>, foldhash::fast::RandomState>,
}

impl<M: Send + 'static> Default for Protocol<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Send + 'static> Protocol<M> {
    /// A protocol that accepts nothing yet.
    pub fn new() -> Self {
        Self { entries: HashMap::default() }
    }

    /// Accepts tells of `P`, made into an `M` by `f`. A later entry for the same manifest
    /// replaces an earlier one.
    pub fn tell<P: RemoteMessage>(mut self, f: impl Fn(P) -> M + Send + Sync + 'static) -> Self {
        let decode: TellFn<M> = Box::new(move |payload, _| P::decode(payload).map(&f));
        self.entries.insert(P::manifest().to_string(), Entry::Tell(decode));
        self
    }

    /// Accepts tells of `P` and hands `f` the sender too, when the message carries one (it
    /// was forwarded with [`RemoteRef::forward`]): the actor can answer or pass it on.
    pub fn tell_from<P: RemoteMessage>(
        mut self,
        f: impl Fn(P, Option<RemoteRef>) -> M + Send + Sync + 'static,
    ) -> Self {
        let decode: TellFn<M> = Box::new(move |payload, sender| P::decode(payload).map(|p| f(p, sender)));
        self.entries.insert(P::manifest().to_string(), Entry::Tell(decode));
        self
    }

    /// Accepts asks of `P` answered with an `R`: `f` makes the `M` that carries the request and
    /// the `Reply` the actor answers through.
    pub fn ask<P: RemoteMessage, R: RemoteMessage>(
        mut self,
        f: impl Fn(P, Reply<R>) -> M + Send + Sync + 'static,
    ) -> Self {
        let decode: AskFn<M> = Box::new(move |payload, rt| {
            let p = P::decode(payload)?;
            let (reply, pending) = corelane::integration::request::<R>(rt);
            let answer: Answer = Box::pin(async move {
                let r = pending.await?;
                Ok((R::manifest(), r.to_bytes()))
            });
            Ok((f(p, reply), answer))
        });
        self.entries.insert(P::manifest().to_string(), Entry::Ask(decode));
        self
    }

    /// Accepts tells of `P` as `M` says ([`Accepts`]): what a
    /// [`Typed`](crate::Typed) reference lets through.
    pub fn accepts<P: RemoteMessage>(self) -> Self
    where
        M: Accepts<P>,
    {
        self.tell(M::from_tell)
    }

    /// Accepts asks of `P` as `M` says ([`Answers`]), answered with `M`'s reply type.
    pub fn answers<P: RemoteMessage>(self) -> Self
    where
        M: Answers<P>,
    {
        self.ask(M::from_ask)
    }

    /// The manifests accepted.
    pub fn manifests(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// A tell of `manifest`: the message, or why there is none.
    pub(crate) fn decode_tell(
        &self,
        manifest: &str,
        payload: Bytes,
        sender: Option<RemoteRef>,
    ) -> Result<M, Refusal> {
        self.tell_decoder(manifest)?(payload, sender).map_err(Refusal::Malformed)
    }

    /// Tells of one manifest without a sender (a batch: `Envelope::more`), the manifest looked
    /// up once: each decoded message goes to `keep`, in order; `refused` hears of each that is
    /// not (all of them when the manifest is not accepted as a tell).
    pub(crate) fn decode_tells(
        &self,
        manifest: &str,
        payloads: &mut dyn Iterator<Item = Bytes>,
        refused: &mut dyn FnMut(Refusal),
        mut keep: impl FnMut(M),
    ) {
        match self.tell_decoder(manifest) {
            Ok(decode) => {
                for payload in payloads {
                    match decode(payload, None) {
                        Ok(m) => keep(m),
                        Err(e) => refused(Refusal::Malformed(e)),
                    }
                }
            }
            Err(r) => payloads.for_each(|_| refused(r.clone())),
        }
    }

    /// How tells of `manifest` are decoded, or why there are none.
    fn tell_decoder(&self, manifest: &str) -> Result<&TellFn<M>, Refusal> {
        match self.entries.get(manifest) {
            Some(Entry::Tell(f)) => Ok(f),
            Some(Entry::Ask(_)) => Err(Refusal::NotThisWay(manifest.into())),
            None => Err(Refusal::UnknownManifest(manifest.into())),
        }
    }

    /// An ask of `manifest`: the message and its answer to come, or why there is none.
    pub(crate) fn decode_ask(
        &self,
        manifest: &str,
        payload: Bytes,
        rt: &Handle,
    ) -> Result<(M, Answer), Refusal> {
        match self.entries.get(manifest) {
            Some(Entry::Ask(f)) => f(payload, rt).map_err(Refusal::Malformed),
            Some(Entry::Tell(_)) => Err(Refusal::NotThisWay(manifest.into())),
            None => Err(Refusal::UnknownManifest(manifest.into())),
        }
    }
}

/// Why a wire message did not become a local message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No entry for the manifest.
    UnknownManifest(String),
    /// The manifest is accepted, but as a tell where it came as an ask, or the reverse.
    NotThisWay(String),
    /// The payload did not decode.
    Malformed(CodecError),
}
