//! The shard's end of a lane: what a take hands over, in lane order, and the last drain.

use super::*;

impl LaneRx {
    /// Whether anything waits in the lane (a look; nothing is taken).
    #[inline]
    pub(crate) fn has_next(&self) -> bool {
        self.waits(|r| r.has_next())
    }

    /// Whether the shard's pass has anything to take from this lane: `has_next`, but an open
    /// run is asked whether it is due (`ReadRun::due`). Whether the shard may park asks
    /// `has_next` instead.
    #[inline]
    pub(crate) fn is_due(&self) -> bool {
        self.waits(|r| r.due())
    }

    /// Whether anything waits, asking an open run by `run`.
    #[inline(always)]
    fn waits(&self, run: impl FnOnce(&dyn ReadRun) -> bool) -> bool {
        !self.pending.is_empty()
            || self.held.is_some()
            || self.run.as_deref().is_some_and(run)
            || self.rx.has_next()
            || self.state.overflowing.load(Ordering::Relaxed)
    }

    /// Whether the lane is in its plain state: nothing held over or queued, no open run, no
    /// overflow (loads only). Its next message, if any, is then in the ring.
    #[inline]
    pub(super) fn is_plain(&self) -> bool {
        self.pending.is_empty()
            && self.held.is_none()
            && self.run.is_none()
            && !self.state.overflowing.load(Ordering::Relaxed)
    }

    /// Moves every waiting message stamped below `below` into `out`, oldest first; stops at the
    /// first one stamped later (kept for a later pass). An overflow queue that is all due goes
    /// whole, in its blocks, into `blocks` (younger than what this take put in `out`); emptied
    /// blocks come from and go to `blocks` too. Returns how many entries (a run's messages
    /// taken at once are one).
    pub(crate) fn take_below(&mut self, below: u64, out: &mut Vec<Stamped>, blocks: &mut Blocks) -> usize {
        let mut n = self.take_pending(below, out);
        if !self.pending.is_empty() {
            return n;
        }
        // Messages taken from the run and the ring, for `behind`.
        let mut msgs = 0;
        // The open run's new messages come before anything later in the lane; a held item
        // ended the run before it was held, so there is no run while one is held.
        if let Some(run) = &mut self.run {
            if run.stamp() >= below {
                return n;
            }
            if let Some(p) = run.take() {
                msgs += p.messages();
                out.push((run.stamp(), p));
                n += 1;
            }
        }
        if let Some(h) = self.held.take() {
            if h.0 >= below {
                self.held = Some(h);
                return n;
            }
            n += self.accept(h, out, &mut msgs);
        }
        // Read the flag before draining the ring: whatever the ring held when the queue began
        // is older than the queue and must come out first.
        let overflowing = self.state.overflowing.load(Ordering::Acquire);
        while let Some(it) = self.pop() {
            if it.0 >= below {
                // The run before it ended before it was sent; what is left of it is stamped
                // below `below` (or the take would have stopped at the run).
                n += self.end_run(out, &mut msgs);
                self.held = Some(it);
                self.rx.release();
                return n;
            }
            n += self.accept(it, out, &mut msgs);
        }
        self.rx.release();
        if overflowing {
            // The queue began after the run's last append.
            n += self.end_run(out, &mut msgs);
            // The queue's blocks are swapped out under the lock (no copy there), and spare
            // blocks go to the sender with it.
            let surplus = {
                let mut q = self.state.overflow.lock().unwrap();
                self.state.overflowing.store(false, Ordering::Relaxed);
                q.take(&mut self.taken, &mut blocks.spare)
            };
            drop(surplus);
            // A lane's stamps never decrease (`LaneRegistry::stamp`): the whole queue is below
            // the bound when its last one is, and goes whole.
            let len: usize = self.taken.iter().map(Vec::len).sum();
            if self.taken.last().and_then(|b| b.last()).is_none_or(|it| it.0 < below) {
                n += len;
                msgs += len;
                blocks.taken.append(&mut self.taken);
            } else {
                self.pending.reserve(len);
                for mut b in self.taken.drain(..) {
                    self.pending.extend(b.drain(..));
                    blocks.recycle(b);
                }
                n += self.take_pending(below, out);
            }
        }
        self.note_backlog(msgs);
        n
    }

    /// [`LaneRx::take_below`], with the blocks it took whole appended to `out`, for tests.
    #[cfg(test)]
    pub(crate) fn take_below_flat(&mut self, below: u64, out: &mut Vec<Stamped>) -> usize {
        let mut blocks = Blocks::default();
        let n = self.take_below(below, out, &mut blocks);
        blocks.copy_into(out);
        n
    }

    /// Takes `it`, popped from the ring (or held since): the run before it has ended, so what
    /// is left of that run goes first; a run's announcement makes its run the lane's open one
    /// and hands over what it holds so far. Returns how many entries went to `out`.
    fn accept(&mut self, it: Stamped, out: &mut Vec<Stamped>, msgs: &mut usize) -> usize {
        let mut n = self.end_run(out, msgs);
        if !it.1.opens_run() {
            *msgs += 1;
            out.push(it);
            return n + 1;
        }
        let (stamp, p) = it;
        let Ok(RunOpen(mut run)) = p.take::<RunOpen>() else { unreachable!("opens_run said so") };
        if let Some(p) = run.take() {
            *msgs += p.messages();
            out.push((stamp, p));
            n += 1;
        }
        self.run = Some(run);
        n
    }

    /// Takes what is left of the open run, which has ended, and lets go of it.
    fn end_run(&mut self, out: &mut Vec<Stamped>, msgs: &mut usize) -> usize {
        let Some(mut run) = self.run.take() else { return 0 };
        match run.take() {
            Some(p) => {
                *msgs += p.messages();
                out.push((run.stamp(), p));
                1
            }
            None => 0,
        }
    }

    /// Tells the sender whether this take found it ahead (`LaneState::behind`).
    #[inline]
    pub(super) fn note_backlog(&self, msgs: usize) {
        let behind = self.state.behind.load(Ordering::Relaxed);
        if !behind && msgs >= RUN_AFTER {
            self.state.behind.store(true, Ordering::Relaxed);
        } else if behind && msgs <= 1 {
            self.state.behind.store(false, Ordering::Relaxed);
        }
    }

    /// Takes the next message from the ring (see `take_stamped`).
    #[inline]
    pub(super) fn pop(&mut self) -> Option<Stamped> {
        // SAFETY: `pop_by` hands the reader a live item that is ours to move out, once; the
        // reader moves it out (`take_stamped`'s contract) and the slot is not read again.
        unsafe { self.rx.pop_by(|src| take_stamped(src)) }
    }

    fn take_pending(&mut self, below: u64, out: &mut Vec<Stamped>) -> usize {
        let mut n = 0;
        while self.pending.front().is_some_and(|it| it.0 < below) {
            out.extend(self.pending.pop_front());
            n += 1;
        }
        n
    }

    /// Whether the shard's pass has anything to do with this lane: a message is due
    /// (`is_due`), or the sending thread is gone (the lane is to be dropped once empty). Loads
    /// only.
    #[inline]
    pub(crate) fn needs_pass(&self) -> bool {
        self.is_due() || self.state.gone.load(Ordering::Relaxed)
    }

    /// The CPU the sending thread was last seen on when it sent, while it lives.
    pub(crate) fn sender_cpu(&self) -> Option<u32> {
        self.state.seat.cpu().filter(|_| !self.state.gone.load(Ordering::Relaxed))
    }

    /// The sending thread is gone and nothing is left: the shard may drop the lane.
    pub(crate) fn is_finished(&self) -> bool {
        self.state.gone.load(Ordering::Acquire) && !self.has_next()
    }

    /// The shard stops: refuses later pushes, hands everything still waiting to `dead` (in
    /// order), and marks the lane drained. Returns how many messages (a batch counts each).
    pub(crate) fn close(&mut self, mut dead: impl FnMut(Packet)) -> usize {
        let queued = {
            let mut q = self.state.overflow.lock().unwrap();
            self.state.closed.store(true, Ordering::Release);
            q.take_all()
        };
        let mut n = 0;
        let mut dead = |p: Packet| {
            n += p.messages();
            dead(p)
        };
        self.pending.drain(..).for_each(|(_, p)| dead(p));
        // Runs are taken apart as in a pass, so the sender can tell what it appended after
        // this (`LaneTx::take_undelivered`).
        let (mut rest, mut msgs) = (Vec::new(), 0);
        self.end_run(&mut rest, &mut msgs);
        if let Some(h) = self.held.take() {
            self.accept(h, &mut rest, &mut msgs);
        }
        while let Some(it) = self.pop() {
            self.accept(it, &mut rest, &mut msgs);
        }
        self.end_run(&mut rest, &mut msgs);
        self.rx.release();
        rest.into_iter().for_each(|(_, p)| dead(p));
        queued.into_iter().flatten().for_each(|(_, p)| dead(p));
        self.state.drained.store(true, Ordering::Release);
        n
    }
}
