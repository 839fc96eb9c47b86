//! [`BatchPending`]: the answers to a batch of requests, in request order, under one timeout.

use crate::ask::Pending;
use crate::error::AskError;
use crate::timers::deadline_after;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The answers to a batch of asks (see [`ActorRef::batch_ask`](crate::ActorRef::batch_ask)):
/// one result vector in request order, one timeout for the whole batch. Await it on a shard, or
/// `wait` for it on a plain thread. The first failed request fails the batch.
#[must_use = "a BatchPending does nothing unless awaited or waited on"]
pub struct BatchPending<T: Send + 'static> {
    items: Vec<Pending<T>>,
    next: usize,
    done: Vec<T>,
    timeout: Duration,
    deadline: Option<Instant>,
}

impl<T: Send + 'static> BatchPending<T> {
    pub(crate) fn new(items: Vec<Pending<T>>, timeout: Duration) -> Self {
        let n = items.len();
        Self { items, next: 0, done: Vec::with_capacity(n), timeout, deadline: None }
    }

    /// How long the whole batch may take, counted from when the wait starts (the runtime's
    /// `ask_timeout` unless set).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Blocks the calling thread until every answer has arrived, the timeout has passed, or a
    /// request failed. Fails with `WouldBlock` on a shard thread: await it there.
    pub fn wait(self) -> Result<Vec<T>, AskError> {
        let deadline = deadline_after(Instant::now(), self.timeout);
        let mut done = self.done;
        for p in self.items.into_iter().skip(self.next) {
            done.push(p.deadline(deadline).wait()?);
        }
        Ok(done)
    }
}

impl<T: Send + 'static> Future for BatchPending<T> {
    type Output = Result<Vec<T>, AskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let deadline = *this.deadline.get_or_insert_with(|| deadline_after(Instant::now(), this.timeout));
        while this.next < this.items.len() {
            let p = std::mem::replace(&mut this.items[this.next], Pending::ready(Err(AskError::Closed)));
            let mut p = p.deadline(deadline);
            match Pin::new(&mut p).poll(cx) {
                Poll::Ready(Ok(v)) => {
                    this.done.push(v);
                    this.next += 1;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    this.items[this.next] = p;
                    return Poll::Pending;
                }
            }
        }
        Poll::Ready(Ok(std::mem::take(&mut this.done)))
    }
}

/// Nothing in a `BatchPending` is pinned: finished answers are moved out, never polled.
impl<T: Send + 'static> Unpin for BatchPending<T> {}
