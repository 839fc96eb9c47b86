//! Request/response: [`Reply`] travels inside the request, [`Pending`] waits for the answer.
//!
//! The answer moves through a lock-free oneshot. Who waits decides how it is woken:
//! - a plain thread (`Pending::wait`) spins briefly, then parks; the replier unparks it;
//! - a task on a shard (`.await`) is woken on its own shard: when the replier runs on another
//!   shard, the wake-up travels through the ring to the waiter's shard, so an executor's task
//!   is only ever woken by its own thread, and a parked shard is woken by the ring protocol;
//! - a task of another executor is woken directly.
//!
//! Timeouts of tasks on a shard come from that shard's timers; a blocking wait uses the
//! thread's own timed park. A reply that arrives after its asker gave up is a dead letter.

use crate::error::AskError;
use crate::metrics::{count_unattributed_late_reply, DeadLetterReason};
use crate::oneshot::{Oneshot, Received};
use crate::packet::Deliver;
use crate::runtime::Shared;
use crate::shard::{with_current, Shard};
use crate::timers::{deadline_after, TimerAction, TimerId};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How long a blocking waiter spins before it parks.
const SPIN_BEFORE_PARK: Duration = Duration::from_micros(50);

pub(crate) enum Waiter {
    Thread(std::thread::Thread),
    // `shard` is a `u32` so that the waiter is 32 bytes (see `Oneshot`'s layout).
    Local { waker: Waker, shard: u32, rt: Weak<Shared> },
    Foreign(Waker),
}

type Chan<T> = Oneshot<T, Waiter>;

// An answer of up to a word, with the two counts of its `Arc`, fits one 64-byte line (see
// `Oneshot`'s layout): the answer moves one line between the threads.
#[cfg(not(corelane_loom))]
const _: () = assert!(std::mem::size_of::<Chan<u64>>() + 2 * std::mem::size_of::<usize>() <= 64);

/// The right to answer one request. Send it the value with [`Reply::send`]; dropping it
/// without sending tells the asker at once ([`AskError::NoReply`]).
pub struct Reply<T: Send + 'static> {
    chan: Option<Arc<Chan<T>>>,
}

/// The answer to a request, or the outcome of a stop: await it on a shard, or `wait` for it on
/// a plain thread.
///
/// Awaited, it registers the waker of its first poll and keeps it, so await it within one task
/// (the usual case); on a shard its deadline is a timer of that shard. Dropping it gives up: a
/// reply that arrives later is a dead letter.
#[must_use = "the request is already sent: dropping a Pending gives up only its answer (a stop or kill still happens; a reply to an ask becomes a dead letter)"]
pub struct Pending<T: Send + 'static> {
    chan: Option<Arc<Chan<T>>>,
    shared: Option<Arc<Shared>>,
    early: Option<Result<T, AskError>>,
    timeout: Duration,
    deadline: Option<Instant>,
    timer: Option<(usize, TimerId)>,
    registered: bool,
    /// The shard whose actor answers (for a blocking wait: spin only while it runs elsewhere).
    answerer: Option<usize>,
}

/// A linked reply/pending pair.
pub(crate) fn pair<T: Send + 'static>(shared: &Arc<Shared>, timeout: Duration) -> (Reply<T>, Pending<T>) {
    let (reply, pending) = unbound_pair(timeout);
    (reply, pending.bound_to(shared))
}

/// A linked reply/pending pair whose pending end is not bound to its runtime yet
/// ([`Pending::bound_to`]). An ask binds it once the request is sent: the runtime's reference
/// count is then not written on the way to the request's publication.
pub(crate) fn unbound_pair<T: Send + 'static>(timeout: Duration) -> (Reply<T>, Pending<T>) {
    let chan = Arc::new(Chan::new());
    (
        Reply { chan: Some(chan.clone()) },
        Pending {
            chan: Some(chan),
            shared: None,
            early: None,
            timeout,
            deadline: None,
            timer: None,
            registered: false,
            answerer: None,
        },
    )
}

impl<T: Send + 'static> Reply<T> {
    /// Answers the request. If the asker already gave up, the value is a dead letter.
    pub fn send(mut self, value: T) {
        let chan = self.chan.take().expect("reply used once");
        match chan.send(value) {
            Ok(true) => wake(&chan),
            Ok(false) => {}
            Err(late) => {
                drop(late);
                with_current(|cur| match cur {
                    Some(s) => {
                        s.dead_letters(DeadLetterReason::LateReply, 1, None, std::any::type_name::<T>())
                    }
                    None => count_unattributed_late_reply(),
                });
            }
        }
    }

    /// Answers a request the runtime itself made (a stop, kill, restart or metrics request):
    /// an asker that no longer waits simply did not want the outcome, so nothing is counted.
    pub(crate) fn complete(mut self, value: T) {
        let chan = self.chan.take().expect("reply used once");
        if let Ok(true) = chan.send(value) {
            wake(&chan);
        }
    }

    /// Whether the asker has given up (timed out or dropped its `Pending`).
    pub fn is_canceled(&self) -> bool {
        self.chan.as_ref().is_none_or(|c| c.is_receiver_closed())
    }
}

impl<T: Send + 'static> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(chan) = self.chan.take() {
            if chan.close_sender() {
                wake(&chan);
            }
        }
    }
}

/// A wake-up for a task on another shard.
struct WakeTask(Waker);
impl Deliver for WakeTask {
    fn deliver(self, shard: &Shard, _: u64) {
        self.0.wake();
        shard.local_woken.set(true);
    }
}

fn wake<T>(chan: &Chan<T>) {
    // SAFETY: called only right after `send` returned `Ok(true)` or `close_sender` returned
    // `true`, as `Oneshot::waiter` requires.
    unsafe {
        chan.waiter(|w| match w {
            Some(Waiter::Thread(t)) => t.unpark(),
            Some(Waiter::Foreign(w)) => w.wake_by_ref(),
            Some(Waiter::Local { waker, shard, rt }) => with_current(|cur| match cur {
                Some(s) if s.idx == *shard as usize && Weak::as_ptr(rt) == Arc::as_ptr(&s.shared) => {
                    waker.wake_by_ref();
                    s.local_woken.set(true);
                }
                _ => {
                    if let Some(rt) = rt.upgrade() {
                        let _ = rt.route(*shard as usize, 0, WakeTask(waker.clone()));
                    }
                }
            }),
            None => {}
        })
    }
}

impl<T: Send + 'static> Pending<T> {
    /// An already-finished outcome.
    pub(crate) fn ready(r: Result<T, AskError>) -> Self {
        Self {
            chan: None,
            shared: None,
            early: Some(r),
            timeout: Duration::ZERO,
            deadline: None,
            timer: None,
            registered: false,
            answerer: None,
        }
    }

    /// Binds the waiting end to its runtime (for its dead letters, and for a blocking wait's
    /// view of the shards).
    pub(crate) fn bound_to(mut self, shared: &Arc<Shared>) -> Self {
        self.shared = Some(shared.clone());
        self
    }

    /// Records that an actor on shard `shard` answers.
    pub(crate) fn answered_on(mut self, shard: usize) -> Self {
        self.answerer = Some(shard);
        self
    }

    /// Sets how long to wait, counted from when the wait starts (the runtime's `ask_timeout`
    /// unless set).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Sets an absolute deadline (a batch shares one).
    pub(crate) fn deadline(mut self, at: Instant) -> Self {
        self.timeout = at.saturating_duration_since(Instant::now());
        self.deadline = Some(at);
        self
    }

    /// Blocks the calling thread until the answer, the timeout, or the sender's departure.
    /// On a shard thread this would stall the shard, so it fails with
    /// [`AskError::WouldBlock`] there: await it instead.
    ///
    /// The timeout is the one [`Pending::timeout`] set, or else the runtime's
    /// (`Builder::ask_timeout`, 5 s unless configured): an ask never waits forever, and one
    /// without its own timeout fails with [`AskError::Timeout`] after the runtime's.
    ///
    /// The first time a thread sleeps here it asks the kernel (Linux 6.12+) for a 100 µs
    /// scheduler slice, keeping its policy and nice value, so that it runs as soon as the
    /// answer wakes it even where another process keeps its core busy.
    pub fn wait(self) -> Result<T, AskError> {
        self.wait_spinning(SPIN_BEFORE_PARK)
    }

    /// `wait` without the spin ([`integration::wait_parked`](crate::integration::wait_parked)).
    pub(crate) fn wait_parked(self) -> Result<T, AskError> {
        self.wait_spinning(Duration::ZERO)
    }

    fn wait_spinning(mut self, spin: Duration) -> Result<T, AskError> {
        if let Some(r) = self.early.take() {
            return r;
        }
        let on_shard = with_current(|c| c.is_some());
        if on_shard {
            return Err(AskError::WouldBlock);
        }
        // The channel is borrowed at each use, not cloned: a clone and its drop are two locked
        // instructions on the asker's path between one answer and its next request.
        let start = Instant::now();
        let deadline = self.deadline.unwrap_or(deadline_after(start, self.timeout));
        let spin_until = start + spin.min(self.timeout);
        let shards = self.shared.as_ref().map_or(&[][..], |sh| &sh.shards[..]);
        let answerer = self.answerer.and_then(|s| shards.get(s)).map(|s| &*s.seat);
        let pinned = self.shared.as_deref().map(|sh| &sh.pinned);
        let mut company = Company::beside(shards, answerer, pinned);
        let mut spins = 0u32;
        let mut waited = Duration::ZERO;
        loop {
            if let Some(r) = outcome(self.chan().try_recv()) {
                return self.finish(r);
            }
            spins += 1;
            // The clock every 16 spins (a pause is 20–140 cycles, a clock read ~25 ns), and at
            // every yield (a system call costs more than it).
            if spins.is_multiple_of(16) || waited >= crate::park::PURE_SPIN || company == Company::Answerer {
                let now = Instant::now();
                if now >= spin_until {
                    break;
                }
                waited = now - start;
                company = Company::beside(shards, answerer, pinned);
            }
            let spun = match company {
                // Spinning takes the CPU from the shard that is to answer: yield at once.
                Company::Answerer => {
                    if let Some(seat) = answerer {
                        seat.guest_waits();
                    }
                    crate::park::PURE_SPIN
                }
                Company::Ours => waited,
                // A yield would hand the CPU to another process for the rest of its slice
                // (milliseconds): hold it for the spin, then park.
                Company::Strangers => Duration::ZERO,
            };
            if crate::park::pause(spun) {
                // The core is contended: a parked thread is woken sooner than a yielding one
                // gets its turn back.
                break;
            }
        }
        crate::executor::short_slice_for_waiter();
        if self.chan().register(Waiter::Thread(std::thread::current())) {
            loop {
                if let Some(r) = outcome(self.chan().try_recv()) {
                    return self.finish(r);
                }
                let now = Instant::now();
                if now >= deadline {
                    return self.expire();
                }
                std::thread::park_timeout(deadline - now);
            }
        }
        // Registration found the value or the sender's departure already there.
        let r = outcome(self.chan().try_recv()).unwrap_or(Err(AskError::NoReply));
        self.finish(r)
    }

    /// The channel, while the answer is awaited.
    #[inline]
    fn chan(&self) -> &Chan<T> {
        self.chan.as_deref().expect("pending without channel")
    }

    fn finish(&mut self, r: Result<T, AskError>) -> Result<T, AskError> {
        self.chan = None;
        self.cancel_timer();
        r
    }

    /// Cancels the deadline timer, if one was armed and we are on its shard (elsewhere it
    /// fires harmlessly: waking a finished task does nothing).
    fn cancel_timer(&mut self) {
        if let Some((shard, id)) = self.timer.take() {
            with_current(|c| {
                if let Some(s) = c.filter(|s| s.idx == shard) {
                    s.cancel_timer(id)
                }
            });
        }
    }

    /// The deadline passed: give up, unless the value landed at the last moment.
    fn expire(&mut self) -> Result<T, AskError> {
        match self.chan().close_receiver() {
            Some(v) => self.finish(Ok(v)),
            None => {
                if let Some(sh) = &self.shared {
                    sh.dead_letter(DeadLetterReason::AskTimeout, std::any::type_name::<T>());
                }
                self.finish(Err(AskError::Timeout))
            }
        }
    }
}

impl<T: Send + 'static> Future for Pending<T> {
    type Output = Result<T, AskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(r) = this.early.take() {
            return Poll::Ready(r);
        }
        if this.chan.is_none() {
            return Poll::Ready(Err(AskError::Closed));
        }
        let now = Instant::now();
        let deadline = *this.deadline.get_or_insert(deadline_after(now, this.timeout));
        loop {
            if let Some(r) = outcome(this.chan().try_recv()) {
                return Poll::Ready(this.finish(r));
            }
            if now >= deadline {
                return Poll::Ready(this.expire());
            }
            if this.registered {
                return Poll::Pending;
            }
            let waiter = with_current(|cur| match cur {
                Some(s) => {
                    if this.timer.is_none() {
                        let id = s.add_timer(deadline, TimerAction::Wake(cx.waker().clone()));
                        this.timer = Some((s.idx, id));
                    }
                    Waiter::Local {
                        waker: cx.waker().clone(),
                        shard: s.idx as u32,
                        rt: Arc::downgrade(&s.shared),
                    }
                }
                None => Waiter::Foreign(cx.waker().clone()),
            });
            this.registered = true;
            if this.chan().register(waiter) {
                return Poll::Pending;
            }
            // Landed while registering: loop to take it.
        }
    }
}

impl<T: Send + 'static> Drop for Pending<T> {
    fn drop(&mut self) {
        if let Some(chan) = self.chan.take() {
            drop(chan.close_receiver());
            self.cancel_timer();
        }
    }
}

/// What a receive means for the asker: an answer, `NoReply`, or nothing yet (`None`).
fn outcome<T>(r: Received<T>) -> Option<Result<T, AskError>> {
    match r {
        Received::Value(v) => Some(Ok(v)),
        Received::SenderGone => Some(Err(AskError::NoReply)),
        Received::Empty => None,
    }
}

/// `Pending` never pins its fields (the early result is moved out, not polled).
impl<T: Send + 'static> Unpin for Pending<T> {}

/// Who shares a blocking waiter's CPU, as far as the runtime can tell.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Company {
    /// The shard that is to answer.
    Answerer,
    /// Another shard of the runtime, one asleep (woken, it may run here), or nobody the
    /// runtime can tell (the CPU is unknown here): spin briefly, then yield to it.
    Ours,
    /// No thread of the runtime.
    Strangers,
}

impl Company {
    /// Who shares the waiter's CPU; beside a shard, a waiter on a pinned shard's core first
    /// moves off it where its affinity allows (`cpu::Pinned::step_off`).
    fn beside(
        shards: &[crate::shard::ShardShared],
        answerer: Option<&crate::cpu::Seat>,
        pinned: Option<&crate::cpu::Pinned>,
    ) -> Company {
        let company = Company::of(shards, answerer);
        if company != Company::Strangers && pinned.is_some_and(|p| p.step_off()) {
            Company::of(shards, answerer)
        } else {
            company
        }
    }

    fn of(shards: &[crate::shard::ShardShared], answerer: Option<&crate::cpu::Seat>) -> Company {
        let Some(cpu) = crate::cpu::current() else { return Company::Ours };
        if answerer.is_some_and(|s| s.cpu() == Some(cpu)) {
            Company::Answerer
        } else if shards.iter().any(|s| s.seat.cpu().is_none_or(|c| c == cpu)) {
            Company::Ours
        } else {
            Company::Strangers
        }
    }
}

#[cfg(test)]
const _: fn() = || {
    fn assert_send<T: Send>() {}
    assert_send::<Pending<u64>>();
    assert_send::<Reply<u64>>();
};
