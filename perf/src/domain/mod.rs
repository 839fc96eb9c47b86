//! Domain workloads with a physical floor: the same logic as actors, and without actors, in
//! the same run.
//! - [`trading`]: market-data ticks → per-symbol books → strategy → risk → order gateway.
//! - [`telemetry`]: sensor actors → per-shard aggregators → a roll-up.

pub(crate) mod telemetry;
pub(crate) mod trading;
