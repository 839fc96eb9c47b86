//! Figures by actor kind ([`Handle::kind_metrics`]): each shard counts its live actors by type
//! on its own thread (nothing is kept per kind on the message paths), and the answers are
//! summed.

use super::Handle;
use crate::ask::{Pending, Reply};
use crate::error::AskError;
use crate::metrics::KindMetrics;
use crate::packet::Deliver;
use crate::shard::Shard;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Asks a shard for its actors by kind.
struct Gather(Reply<Vec<KindMetrics>>);

impl Deliver for Gather {
    fn deliver(self, shard: &Shard, _: u64) {
        self.0.send(shard.kind_metrics());
    }
}

impl Handle {
    /// The live actors by kind (actor type) across every shard: how many, the messages they
    /// handled, the messages waiting for them. Each shard counts its own on its thread, so
    /// this costs one pass over the actors when asked and nothing otherwise. Await it on a
    /// shard or `wait` for it on a thread, like an ask (same timeout rules).
    pub fn kind_metrics(&self) -> KindsPending {
        let parts = (0..self.shard_count())
            .map(|i| {
                let (reply, pending) = crate::ask::pair(&self.shared, self.shared.cfg.ask_timeout);
                // A runtime that has shut down drops the request: its pending says `NoReply`.
                let _ = self.run_on(i, Gather(reply));
                pending
            })
            .collect();
        KindsPending { parts, merged: HashMap::new() }
    }
}

/// The answer of [`Handle::kind_metrics`]: every shard's count, summed by kind, sorted by kind.
#[must_use = "the figures arrive through it"]
pub struct KindsPending {
    parts: Vec<Pending<Vec<KindMetrics>>>,
    merged: HashMap<&'static str, KindMetrics>,
}

impl KindsPending {
    /// Gives up after `d` (instead of the runtime's `ask_timeout`).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.parts = self.parts.into_iter().map(|p| p.timeout(d)).collect();
        self
    }

    /// Blocks this thread (not a shard's) until every shard has answered.
    ///
    /// # Errors
    /// What an ask's wait returns: `Timeout`, `Closed`, `WouldBlock` on a shard.
    pub fn wait(mut self) -> Result<Vec<KindMetrics>, AskError> {
        for p in std::mem::take(&mut self.parts) {
            let part = p.wait()?;
            self.add(part);
        }
        Ok(self.finish())
    }

    fn add(&mut self, part: Vec<KindMetrics>) {
        for k in part {
            let m = self
                .merged
                .entry(k.kind)
                .or_insert_with(|| KindMetrics { kind: k.kind, ..Default::default() });
            m.actors += k.actors;
            m.processed += k.processed;
            m.queued += k.queued;
        }
    }

    fn finish(&mut self) -> Vec<KindMetrics> {
        let mut all: Vec<_> = std::mem::take(&mut self.merged).into_values().collect();
        all.sort_by_key(|k| k.kind);
        all
    }
}

impl Future for KindsPending {
    type Output = Result<Vec<KindMetrics>, AskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut i = 0;
        while i < this.parts.len() {
            match Pin::new(&mut this.parts[i]).poll(cx) {
                Poll::Ready(Ok(part)) => {
                    drop(this.parts.swap_remove(i));
                    this.add(part);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => i += 1,
            }
        }
        if this.parts.is_empty() {
            Poll::Ready(Ok(this.finish()))
        } else {
            Poll::Pending
        }
    }
}
