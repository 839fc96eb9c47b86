//! Trace context: the W3C Trace Context identifiers (trace id, parent span id, sampled flag)
//! that tie the handling of one request together across nodes.
//!
//! With the `tracing-spans` feature, a message that arrives from another node with a context
//! (see `corelane-net`) is handled with that context *current*: [`current`] returns it inside
//! the handler, the handler's `receive` span records its `trace_id` and `parent_span`, and
//! remote messages the handler sends carry a child of it. Code outside actors starts a trace
//! (or continues one from its own tracing system, such as OpenTelemetry) with [`scope`].
//! Without the feature [`current`] is always `None`, [`scope`] just runs its closure, and
//! nothing is stored or sent.
//!
//! ```
//! use corelane::trace::{self, TraceContext};
//!
//! let root = TraceContext::parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
//! assert_eq!(root.trace_id(), 0x4bf92f3577b34da6a3ce929d0e0e4736);
//! let child = root.child();
//! assert_eq!(child.trace_id(), root.trace_id());
//! assert_ne!(child.span_id(), root.span_id());
//! trace::scope(root, || {
//!     // Remote messages sent here carry a child of `root` (with the feature on).
//! });
//! ```

use std::fmt;

/// The identifiers of a trace at one span: a W3C `traceparent` without its version.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
    flags: u8,
}

/// The W3C flag bit for a sampled trace.
const SAMPLED: u8 = 1;

impl TraceContext {
    /// The length of [`TraceContext::to_bytes`]: trace id (16, big-endian), span id (8,
    /// big-endian), flags (1).
    pub const BYTES: usize = 25;

    /// A context from its identifiers; `None` when either is zero (invalid in W3C Trace
    /// Context).
    pub fn new(trace_id: u128, span_id: u64, sampled: bool) -> Option<Self> {
        (trace_id != 0 && span_id != 0).then_some(Self { trace_id, span_id, flags: sampled as u8 * SAMPLED })
    }

    /// A new trace, sampled, with random identifiers.
    pub fn root() -> Self {
        Self { trace_id: fastrand::u128(1..), span_id: fastrand::u64(1..), flags: SAMPLED }
    }

    /// A child span in the same trace: same trace id and flags, a new random span id.
    pub fn child(&self) -> Self {
        Self { span_id: fastrand::u64(1..), ..*self }
    }

    /// The trace's id.
    pub fn trace_id(&self) -> u128 {
        self.trace_id
    }

    /// The span's id (the parent of spans made from this context).
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// Whether the trace is sampled.
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// The W3C `traceparent` header value (version `00`).
    pub fn to_traceparent(&self) -> String {
        format!("00-{:032x}-{:016x}-{:02x}", self.trace_id, self.span_id, self.flags)
    }

    /// Reads a W3C `traceparent` header value. Version `00` must be exactly
    /// `00-<32 hex>-<16 hex>-<2 hex>`; a later version may append fields after a `-` (they are
    /// ignored, as the specification asks); version `ff`, upper-case hex, and zero ids are
    /// refused.
    pub fn parse_traceparent(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = hex(&b[0..2])? as u8;
        if version == 0xff || (version == 0 && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
            return None;
        }
        let trace_id = hex(&b[3..35])?;
        let span_id = hex(&b[36..52])? as u64;
        let flags = hex(&b[53..55])? as u8;
        Self::new(trace_id, span_id, false).map(|c| Self { flags, ..c })
    }

    /// The context in 25 bytes, as envelopes carry it.
    pub fn to_bytes(&self) -> [u8; Self::BYTES] {
        let mut out = [0u8; Self::BYTES];
        out[..16].copy_from_slice(&self.trace_id.to_be_bytes());
        out[16..24].copy_from_slice(&self.span_id.to_be_bytes());
        out[24] = self.flags;
        out
    }

    /// Reads [`TraceContext::to_bytes`]; `None` for another length or zero ids.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b: &[u8; Self::BYTES] = b.try_into().ok()?;
        let trace_id = u128::from_be_bytes(b[..16].try_into().ok()?);
        let span_id = u64::from_be_bytes(b[16..24].try_into().ok()?);
        Self::new(trace_id, span_id, false).map(|c| Self { flags: b[24], ..c })
    }
}

/// Lower-case hex digits as a number (at most 32 of them).
fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | v as u128)
    })
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({})", self.to_traceparent())
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_traceparent())
    }
}

/// What a queued message carries of its trace: its context with the feature, nothing without.
#[cfg(feature = "tracing-spans")]
pub(crate) type MsgTrace = Option<TraceContext>;
/// What a queued message carries of its trace: its context with the feature, nothing without.
#[cfg(not(feature = "tracing-spans"))]
pub(crate) type MsgTrace = ();

#[cfg(feature = "tracing-spans")]
thread_local! {
    static CURRENT: std::cell::Cell<Option<TraceContext>> = const { std::cell::Cell::new(None) };
}

/// The trace context of the code running on this thread: the message being handled (when it
/// came with one), or the innermost [`scope`]. Always `None` without the `tracing-spans`
/// feature.
#[inline]
pub fn current() -> Option<TraceContext> {
    #[cfg(feature = "tracing-spans")]
    return CURRENT.with(|c| c.get());
    #[cfg(not(feature = "tracing-spans"))]
    None
}

/// Runs `f` with `ctx` as the [`current`] trace context (restored afterwards, also when `f`
/// panics). Without the `tracing-spans` feature it only runs `f`.
pub fn scope<R>(ctx: TraceContext, f: impl FnOnce() -> R) -> R {
    #[cfg(feature = "tracing-spans")]
    {
        struct Restore(Option<TraceContext>);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(ctx))));
        f()
    }
    #[cfg(not(feature = "tracing-spans"))]
    {
        let _ = ctx;
        f()
    }
}

/// Sets the current context for the message about to be handled, and records it on the
/// `receive` span (entered by the caller).
#[cfg(feature = "tracing-spans")]
pub(crate) fn enter_message(ctx: Option<TraceContext>) {
    CURRENT.with(|c| c.set(ctx));
    if let Some(t) = ctx {
        let span = tracing::Span::current();
        span.record("trace_id", tracing::field::display(format_args!("{:032x}", t.trace_id)));
        span.record("parent_span", tracing::field::display(format_args!("{:016x}", t.span_id)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_bad_values_are_refused() {
        let s = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::parse_traceparent(s).unwrap();
        assert_eq!(t.to_traceparent(), s);
        assert!(t.sampled());
        assert_eq!(TraceContext::from_bytes(&t.to_bytes()), Some(t));
        // A later version may carry more fields.
        assert_eq!(
            TraceContext::parse_traceparent(&format!("01{}-what-comes-next", &s[2..])).unwrap().trace_id(),
            t.trace_id
        );
        for bad in [
            "",
            &s[..54],
            &format!("{s}-"), // version 00 is exactly 55
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse_traceparent(bad), None, "{bad:?}");
        }
        assert_eq!(TraceContext::from_bytes(&[1; 24]), None);
        assert_eq!(TraceContext::from_bytes(&[0; 25]), None);
        let root = TraceContext::root();
        assert_eq!(TraceContext::parse_traceparent(&root.to_traceparent()), Some(root));
    }

    #[cfg(feature = "tracing-spans")]
    #[test]
    fn scope_sets_and_restores_the_current_context_even_through_a_panic() {
        let (a, b) = (TraceContext::root(), TraceContext::root());
        assert_eq!(current(), None);
        scope(a, || {
            assert_eq!(current(), Some(a));
            let r = std::panic::catch_unwind(|| scope(b, || panic!("inner")));
            assert!(r.is_err());
            assert_eq!(current(), Some(a));
        });
        assert_eq!(current(), None);
    }
}
