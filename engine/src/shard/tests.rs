//! The dispatcher's rules, checked from an actor's turn on the shard's own thread.

use crate::{Actor, ActorError, Ctx, Idle, Reply, Runtime, Shards};
use std::time::Duration;

/// Arms a timer in its turn and reports what the dispatcher makes of the timers right after:
/// whether one is due, and whether the pass would end after this round.
struct Probe;
enum ProbeMsg {
    Arm(Duration, Reply<(bool, bool)>),
    Fired,
}
impl Actor for Probe {
    type Msg = ProbeMsg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: ProbeMsg) -> Result<(), ActorError> {
        if let ProbeMsg::Arm(delay, r) = m {
            ctx.schedule_once(delay, &ctx.myself(), ProbeMsg::Fired);
            r.send(super::with_current(|s| {
                let s = s.expect("a turn runs on its shard");
                (s.timer_due(), s.outside_waiting())
            }));
        }
        Ok(())
    }
}

/// A timer that is pending but not due lets the ready actors go on to their next round (a
/// service nearly always has one pending: an ask's timeout, a passivation check); one that is
/// due ends the pass, so it fires after at most one turn of each ready actor, as before.
#[test]
fn a_pending_timer_ends_the_pass_only_once_it_is_due() {
    let rt = Runtime::builder().shards(Shards::Count(1)).idle(Idle::Spin).build().unwrap();
    let p = rt.spawn(|| Probe).unwrap();
    let arm = |delay| p.ask(|r| ProbeMsg::Arm(delay, r)).timeout(Duration::from_secs(10)).wait().unwrap();
    assert_eq!(arm(Duration::from_secs(3600)), (false, false), "a timer an hour away ended the pass");
    assert_eq!(arm(Duration::ZERO), (true, true), "a timer due now did not end the pass");
    rt.shutdown().unwrap();
}
