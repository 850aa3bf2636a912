//! The error document every failing admin route answers, and its kinds.

use serde::{Deserialize, Serialize};

/// What went wrong, as a machine reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// This node is not the partition's head right now (chain changing).
    NotHead,
    /// This node is not the partition's tail right now (chain changing).
    NotTail,
    /// The request met a newer chain epoch.
    StaleEpoch,
    /// The chain has fewer replicas than needed to acknowledge.
    NotEnoughReplicas,
    /// No answer in time: an append's outcome is unknown (it may be in the
    /// log).
    TimeoutOutcomeUnknown,
    /// No such partition.
    BadPartition,
    /// The request is malformed.
    BadRequest,
    /// The body is larger than the route accepts.
    TooLarge,
    /// The body's `Content-Type` is not the one the route takes (this also
    /// keeps browsers from posting across origins without a preflight).
    UnsupportedMediaType,
    /// The log has not formed (`--bootstrap-expect N`), or this node runs
    /// none.
    NotFormed,
    /// The node's event loop did not answer.
    Unavailable,
    /// A wait other than an append's timed out (nothing was written).
    Timeout,
    /// A transaction aborted: none of its records is or will be visible.
    Aborted,
    /// An idempotent append's sequence is older than every sequence the
    /// partition remembers of its producer: nothing was written now, and
    /// whether the first attempt was written can no longer be told. Not
    /// retryable.
    StaleSequence,
    /// No such route.
    NotFound,
    /// The route does not take this method.
    MethodNotAllowed,
    /// A bug in the node.
    Internal,
    /// A read below the partition's low watermark: retention deleted those
    /// records (the message names the offsets still held).
    OffsetOutOfRange,
    /// A kind this version does not know (a newer node).
    #[serde(other)]
    Unknown,
}

impl ErrorKind {
    /// The HTTP status the server answers this kind with.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotHead
            | ErrorKind::NotTail
            | ErrorKind::StaleEpoch
            | ErrorKind::NotEnoughReplicas
            | ErrorKind::NotFormed
            | ErrorKind::Unavailable => 503,
            ErrorKind::TimeoutOutcomeUnknown | ErrorKind::Timeout => 504,
            ErrorKind::BadPartition | ErrorKind::BadRequest => 400,
            ErrorKind::TooLarge => 413,
            ErrorKind::OffsetOutOfRange => 416,
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::Aborted | ErrorKind::StaleSequence => 409,
            ErrorKind::NotFound => 404,
            ErrorKind::MethodNotAllowed => 405,
            ErrorKind::Internal | ErrorKind::Unknown => 500,
        }
    }

    /// Whether the same request may succeed if sent again later. Nothing
    /// was written for every retryable kind except
    /// [`ErrorKind::TimeoutOutcomeUnknown`]: there the first attempt may
    /// have landed. Retrying that append is safe only with the same
    /// producer id and sequence (`?producer=ID&seq=N`: written at most
    /// once); without them a retried append may be a second record.
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::NotHead
                | ErrorKind::NotTail
                | ErrorKind::StaleEpoch
                | ErrorKind::NotEnoughReplicas
                | ErrorKind::NotFormed
                | ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::TimeoutOutcomeUnknown
                | ErrorKind::Aborted
        )
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What happened, in words (JSON `error`).
    #[serde(rename = "error")]
    pub message: String,
    /// What happened, for machines.
    pub kind: ErrorKind,
    /// [`ErrorKind::retryable`], for clients that do not know the kind.
    #[serde(default)]
    pub retryable: bool,
    /// For `POST /log/txn` answers: `false` when the transaction aborted,
    /// absent when its outcome is unknown or it never started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub committed: Option<bool>,
}

impl ErrorBody {
    /// An error of `kind` explained by `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            message: message.into(),
            kind,
            retryable: kind.retryable(),
            committed: None,
        }
    }

    /// A malformed request.
    pub fn bad_request(message: impl Into<String>) -> ErrorBody {
        ErrorBody::new(ErrorKind::BadRequest, message)
    }

    /// The HTTP status of this answer.
    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }
}

impl core::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.message)
    }
}
