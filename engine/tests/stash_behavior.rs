//! Stash (order, capacity, unstash one or all) and behaviors (become, unbecome, stacked),
//! taking effect from the next message.

use corelane::testkit::TestKit;
use corelane::{Actor, ActorError, ActorRef, Ctx, SpawnOptions, StashFull};

#[derive(Debug)]
enum Door {
    Item(u32),
    Open,
    Close,
    UnstashOne,
}

/// Stashes items while closed; opening puts them back ahead of what is queued.
struct Gate {
    open: bool,
    out: ActorRef<String>,
}

impl Actor for Gate {
    type Msg = Door;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: Door) -> Result<(), ActorError> {
        match m {
            Door::Item(i) if !self.open => {
                if let Err(StashFull(Door::Item(back))) = ctx.stash(Door::Item(i)) {
                    let _ = self.out.tell(format!("full {back}"));
                }
            }
            Door::Item(i) => {
                let _ = self.out.tell(format!("item {i}"));
            }
            Door::Open => {
                self.open = true;
                let n = ctx.unstash_all();
                let _ = self.out.tell(format!("opened, {n} back"));
            }
            Door::Close => self.open = false,
            Door::UnstashOne => {
                self.open = true;
                let had = ctx.unstash();
                self.open = false;
                let _ = self.out.tell(format!("one back: {had}, {} left", ctx.stash_len()));
                // The item put back is handled while closed again: stashed again, at the end.
            }
        }
        Ok(())
    }
}

#[test]
fn unstash_all_keeps_the_stash_order_ahead_of_queued_messages() {
    let kit = TestKit::new();
    let p = kit.probe();
    let out = p.actor_ref::<String>();
    let g = kit.spawn(move || Gate { open: false, out: out.clone() }).unwrap();
    g.batch_tell([Door::Item(1), Door::Item(2), Door::Item(3), Door::Open, Door::Item(4), Door::Item(5)])
        .unwrap();
    p.expect_message("opened, 3 back".to_string());
    for i in 1..=5 {
        p.expect_message(format!("item {i}"));
    }
}

#[test]
fn the_stash_has_a_capacity_and_gives_the_message_back() {
    let kit = TestKit::new();
    let p = kit.probe();
    let out = p.actor_ref::<String>();
    let g = kit
        .spawn_with(SpawnOptions::new().stash_capacity(2), move || Gate { open: false, out: out.clone() })
        .unwrap();
    g.batch_tell([Door::Item(1), Door::Item(2), Door::Item(3), Door::Open]).unwrap();
    p.expect_message("full 3".to_string());
    p.expect_message("opened, 2 back".to_string());
    p.expect_message("item 1".to_string());
    p.expect_message("item 2".to_string());
    let m = g.metrics().wait().unwrap();
    assert_eq!(m.stash_len, 0);
}

#[test]
fn unstash_puts_back_only_the_oldest() {
    let kit = TestKit::new();
    let p = kit.probe();
    let out = p.actor_ref::<String>();
    let g = kit.spawn(move || Gate { open: false, out: out.clone() }).unwrap();
    g.batch_tell([Door::Item(1), Door::Item(2), Door::UnstashOne]).unwrap();
    p.expect_message("one back: true, 1 left".to_string());
    // Item 1 is handled next, while closed: stashed again, behind item 2.
    g.batch_tell([Door::Close, Door::Open]).unwrap();
    p.expect_message("opened, 2 back".to_string());
    p.expect_message("item 2".to_string());
    p.expect_message("item 1".to_string());
    assert_eq!(g.metrics().wait().unwrap().stash_len, 0);
}

/// Answers "base"; its behaviors answer "angry" or "happy".
struct Moody {
    out: ActorRef<String>,
}

#[derive(Debug)]
enum Mood {
    Say(u32),
    Angry,
    Happy,
    Unbecome,
    Pop,
}

impl Moody {
    fn angry(&mut self, ctx: &mut Ctx<Self>, m: Mood) -> Result<(), ActorError> {
        self.common(ctx, m, "angry")
    }
    fn common(&mut self, ctx: &mut Ctx<Self>, m: Mood, name: &str) -> Result<(), ActorError> {
        match m {
            Mood::Say(i) => {
                let _ = self.out.tell(format!("{name} {i}"));
            }
            Mood::Angry => {
                ctx.become_behavior(Moody::angry);
                // This message is still handled here; the next one by the new behavior.
                let _ = self.out.tell(format!("{name} -> angry"));
            }
            Mood::Happy => {
                ctx.become_stacked(|a: &mut Moody, ctx: &mut Ctx<Moody>, m| a.common(ctx, m, "happy"))
            }
            Mood::Unbecome => ctx.unbecome(),
            Mood::Pop => ctx.unbecome_stacked(),
        }
        Ok(())
    }
}

impl Actor for Moody {
    type Msg = Mood;
    fn receive(&mut self, ctx: &mut Ctx<Self>, m: Mood) -> Result<(), ActorError> {
        self.common(ctx, m, "base")
    }
}

#[test]
fn behaviors_switch_from_the_next_message() {
    let kit = TestKit::new();
    let p = kit.probe();
    let out = p.actor_ref::<String>();
    let a = kit.spawn(move || Moody { out: out.clone() }).unwrap();
    use Mood::*;
    a.batch_tell([Say(1), Angry, Say(2), Happy, Say(3), Happy, Say(4), Pop, Say(5), Pop, Say(6)]).unwrap();
    for s in ["base 1", "base -> angry", "angry 2", "happy 3", "happy 4", "happy 5", "angry 6"] {
        p.expect_message(s.to_string());
    }
    // `become` replaces the top; `unbecome` clears the stack back to `receive`.
    a.batch_tell([Happy, Angry, Say(7), Pop, Say(8), Angry, Happy, Unbecome, Say(9)]).unwrap();
    for s in ["happy -> angry", "angry 7", "angry 8", "angry -> angry", "base 9"] {
        p.expect_message(s.to_string());
    }
}
