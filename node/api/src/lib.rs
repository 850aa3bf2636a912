//! The admin API's wire format: one typed document per route of `shen run`'s admin HTTP API.
//!
//! The server (`shen-node`'s `admin`), the application client
//! (`shen-client`), the CLI and the browser's live mode (`shen-wasm-viz`)
//! all encode and decode these types; nothing else defines the JSON. The
//! schema test (`tests/schema.rs`) pins every document's exact JSON.
//!
//! | route | request | answer |
//! |---|---|---|
//! | `GET /status` | — | [`StatusDoc`] (schema [`STATUS_SCHEMA`]) |
//! | `GET /healthz` | — | [`Liveness`] (200 while the process runs) |
//! | `GET /readyz` | — | [`Ready`] (200 when serving, 503 otherwise) |
//! | `GET /metrics` | — | Prometheus text |
//! | `GET /events` | — | Server-Sent Events, each `data:` an [`EventLine`] |
//! | `POST /log/append?key=K` | the record (`application/octet-stream`) | [`AppendReply`] |
//! | `GET /log/read?…` | [`ReadQuery`] | [`ReadReply`] |
//! | `POST /log/txn` | [`TxnRequest`] (`application/json`) | [`TxnReply`] (200), [`ErrorBody`] (409: aborted) |
//! | `POST /token/acquire` | — | [`TokenReply`] |
//!
//! Every failure answers an [`ErrorBody`] with a machine-readable
//! [`ErrorKind`]. `node.json` in a node's data directory is a [`NodeInfo`].

#![warn(missing_docs)]

mod error;
mod log;
mod query;
mod status;

pub use error::{ErrorBody, ErrorKind};
pub use log::{
    hex_decode, hex_encode, AppendReply, EventLine, KeyedRecord, MemberOp, MemberReply,
    MemberRequest, NodeInfo, ReadReply, RecordDoc, TokenReply, TxnRecord, TxnReply, TxnRequest,
    MAX_RECORD_BYTES, MAX_TXN_BYTES, MAX_TXN_RECORDS, NODE_INFO_FILE,
};
pub use query::{encode_component, parse_query, AppendQuery, QueryError, ReadQuery};
pub use status::{
    AnkhDoc, ChainDoc, ClusterHealth, Liveness, LogDoc, LogStatsDoc, MemberDoc, MemberStatus,
    NetDoc, PeerConnDoc, Ready, RebalanceDoc, ShareDoc, StatusDoc, SundialStatsDoc, STATUS_SCHEMA,
};

/// The admin API's paths.
pub mod routes {
    /// The node's state.
    pub const STATUS: &str = "/status";
    /// Liveness: the process answers.
    pub const HEALTHZ: &str = "/healthz";
    /// Readiness: the log formed, storage healthy, this node serving.
    pub const READYZ: &str = "/readyz";
    /// Prometheus metrics.
    pub const METRICS: &str = "/metrics";
    /// Server-Sent Events of ring events.
    pub const EVENTS: &str = "/events";
    /// Append one record.
    pub const APPEND: &str = "/log/append";
    /// Read committed records.
    pub const READ: &str = "/log/read";
    /// Append records atomically.
    pub const TXN: &str = "/log/txn";
    /// Acquire and release the Cartouche token.
    pub const TOKEN_ACQUIRE: &str = "/token/acquire";
    /// Ask for a change of the log's member set.
    pub const MEMBERS: &str = "/log/members";
}
