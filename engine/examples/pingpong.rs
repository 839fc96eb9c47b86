//! Two actors on two shards bounce a ball; the thread that started the rally waits until both
//! players have stopped (`Handle::stopped`).
//!
//! Order is kept per sender and receiver, not across senders: the ball that ping sends to pong
//! may reach pong before a message `main` sent pong earlier. So `main` waits until each player
//! knows its partner (an ask) before it serves.
//!
//! ```text
//! cargo run -p corelane --example pingpong
//! ```

use corelane::{Actor, ActorError, ActorRef, Ctx, Placement, Reply, Runtime, Shards};
use std::time::{Duration, Instant};

enum Msg {
    /// Who to hit the ball to; answered once known.
    Partner(ActorRef<Msg>, Reply<()>),
    /// The ball, with the hits left in the rally.
    Ball(u32),
}

struct Player {
    name: &'static str,
    partner: Option<ActorRef<Msg>>,
    hits: u32,
}

impl Actor for Player {
    type Msg = Msg;
    fn receive(&mut self, ctx: &mut Ctx<Self>, msg: Msg) -> Result<(), ActorError> {
        match msg {
            Msg::Partner(p, known) => {
                self.partner = Some(p);
                known.send(());
            }
            Msg::Ball(left) => {
                self.hits += 1;
                let partner = self.partner.as_ref().ok_or_else(|| ActorError::msg("no partner"))?;
                if left > 0 {
                    partner.tell(Msg::Ball(left - 1)).map_err(|_| ActorError::msg("runtime closed"))?;
                } else {
                    println!("{} ends the rally after {} hits", self.name, self.hits);
                    drop(partner.stop()); // the stop happens; nobody waits for it here
                    ctx.stop();
                }
            }
        }
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = Runtime::builder().shards(Shards::Count(2)).build()?;
    let player = |name| move || Player { name, partner: None, hits: 0 };
    let ping = rt.spawn_with(Placement::Shard(0), player("ping"))?;
    let pong = rt.spawn_with(Placement::Shard(1), player("pong"))?;
    let wait = Duration::from_secs(5);
    ping.ask(|r| Msg::Partner(pong.clone(), r)).timeout(wait).wait()?;
    pong.ask(|r| Msg::Partner(ping.clone(), r)).timeout(wait).wait()?;
    let start = Instant::now();
    ping.tell(Msg::Ball(100_000))?;
    rt.stopped(&[ping, pong]).timeout(Duration::from_secs(30)).wait()?;
    println!("100 000 hits across two shards in {:?}", start.elapsed());
    rt.shutdown()?;
    Ok(())
}
