//! Cron expressions: parsed once, asked for their next firing after a wall-clock time. The
//! scheduler fires them on a shard's timers (`Handle::schedule_cron`); integrations that keep
//! their own time (the cluster's schedules) ask [`Cron::after`] directly.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cron expression that did not parse, with the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression {expr:?}: bad {field} field{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct CronError {
    /// The expression.
    pub expr: String,
    /// The field at fault: seconds, minutes, hours, day of month, month, day of week, year,
    /// or "field count" when there are not 6 or 7 fields.
    pub field: &'static str,
    /// What the parser said, when it said something.
    pub detail: Option<String>,
}

const FIELDS: [&str; 7] = ["seconds", "minutes", "hours", "day of month", "month", "day of week", "year"];

/// A parsed cron expression: 6 or 7 fields (seconds first, optional year; `, - * ? /`, month
/// and day names), evaluated in UTC.
///
/// ```
/// use corelane::Cron;
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let every_five_seconds = Cron::parse("*/5 * * * * *")?;
/// let t = UNIX_EPOCH + Duration::from_secs(1_000_000_001);
/// assert_eq!(every_five_seconds.after(t), Some(UNIX_EPOCH + Duration::from_secs(1_000_000_005)));
/// assert_eq!(Cron::parse("0 75 * * * *").unwrap_err().field, "minutes");
/// # Ok::<(), corelane::CronError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Cron {
    schedule: cron::Schedule,
}

impl Cron {
    /// Parses `expr`.
    ///
    /// # Errors
    /// The expression does not parse; the error names the field at fault.
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        if !(6..=7).contains(&fields.len()) {
            return Err(CronError {
                expr: expr.into(),
                field: "field count",
                detail: Some(format!("{} fields, expected 6 or 7", fields.len())),
            });
        }
        match cron::Schedule::from_str(expr) {
            Ok(schedule) => Ok(Cron { schedule }),
            Err(e) => {
                // Try each field alone, every other field a wildcard: the first that fails is named.
                let field = (0..fields.len())
                    .find(|&i| {
                        let probe: Vec<&str> =
                            (0..fields.len()).map(|j| if j == i { fields[i] } else { "*" }).collect();
                        cron::Schedule::from_str(&probe.join(" ")).is_err()
                    })
                    .map_or("expression", |i| FIELDS[i]);
                Err(CronError { expr: expr.into(), field, detail: Some(e.to_string()) })
            }
        }
    }

    /// The first firing strictly after `t` (`None`: it never fires again, or `t` is outside
    /// the range of calendar times).
    pub fn after(&self, t: SystemTime) -> Option<SystemTime> {
        let since = t.duration_since(UNIX_EPOCH).ok()?;
        let at = chrono::DateTime::<chrono::Utc>::from_timestamp(
            i64::try_from(since.as_secs()).ok()?,
            since.subsec_nanos(),
        )?;
        let next = self.schedule.after(&at).next()?;
        let nanos = u64::try_from(next.timestamp_nanos_opt()?).ok()?;
        Some(UNIX_EPOCH + Duration::from_nanos(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_errors_name_the_field() {
        assert!(Cron::parse("*/2 * * * * *").is_ok());
        assert!(Cron::parse("0 30 9,12,15 1,15 May-Aug Mon,Wed,Fri 2030/2").is_ok());
        let field = |e: &str| Cron::parse(e).unwrap_err().field;
        assert_eq!(field("61 * * * * *"), "seconds");
        assert_eq!(field("0 75 * * * *"), "minutes");
        assert_eq!(field("0 0 25 * * *"), "hours");
        assert_eq!(field("0 0 0 32 * *"), "day of month");
        assert_eq!(field("0 0 0 * Foo *"), "month");
        assert_eq!(field("0 0 0 * * Funday"), "day of week");
        assert_eq!(field("0 0 0 * * * 20x5"), "year");
        assert_eq!(field("* * *"), "field count");
        let e = Cron::parse("0 75 * * * *").unwrap_err().to_string();
        assert!(e.contains("bad minutes field"), "{e}");
    }

    #[test]
    fn the_next_firing_is_strictly_after_and_in_utc() {
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        // 2001-09-09T01:46:40Z is 1_000_000_000.
        let daily = Cron::parse("0 0 17 * * *").unwrap();
        assert_eq!(daily.after(at(1_000_000_000)), Some(at(1_000_000_000 - 6400 + 17 * 3600)));
        let every_second = Cron::parse("* * * * * *").unwrap();
        assert_eq!(every_second.after(at(5)), Some(at(6)));
        assert_eq!(every_second.after(at(5) + Duration::from_millis(1)), Some(at(6)));
        let never = Cron::parse("0 0 0 1 1 * 1999").unwrap();
        assert_eq!(never.after(at(1_000_000_000)), None);
    }
}
