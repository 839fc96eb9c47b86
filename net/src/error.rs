//! What can go wrong with remote operations, as callers see it.

use crate::codec::CodecError;
pub use corelane_proto::v1::ErrorCode;

/// Why a remote ask (or a remote operation that waits for an answer) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteAskError {
    /// No answer within the timeout. An answer that comes later is counted as a late reply.
    #[error("no answer within the timeout")]
    Timeout,
    /// The node could not be reached, or was lost before it answered.
    #[error("the remote node is down or unreachable")]
    NodeDown,
    /// The remote node refused or failed the request.
    #[error("refused by the remote node ({code:?}): {detail}")]
    Refused {
        /// What went wrong there.
        code: ErrorCode,
        /// Its words.
        detail: String,
    },
    /// The answer did not decode as the expected type.
    #[error(transparent)]
    Decode(#[from] CodecError),
    /// The request could not be sent (too large, or this node is shut down).
    #[error(transparent)]
    Send(#[from] RemoteSendError),
    /// A blocking wait was attempted on a shard thread; await it instead.
    #[error("blocking wait on a shard thread; await it instead")]
    WouldBlock,
}

/// Why a message was not sent to a remote node. Once sent, delivery is at most once: a message
/// lost with its connection is not reported to the sender (asks time out or fail `NodeDown`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteSendError {
    /// Its encoding exceeds the node's maximum frame.
    #[error("message of {len} bytes exceeds the maximum frame of {max}")]
    TooLarge {
        /// The encoded envelope's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// This node has shut down.
    #[error("the node has shut down")]
    Closed,
    /// There is nowhere to send it now (a grain message while this member is fenced, or while
    /// no member hosts the grain's kind).
    #[error("cannot send now: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// Why a node could not start.
pub use crate::transport::StartError;
