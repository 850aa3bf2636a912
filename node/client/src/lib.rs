//! The Shen log for applications: a blocking, pooled client of a running node's admin API.
//!
//! The node forwards appends to the partition's head and reads to its
//! tail, so any node serves any request.
//!
//! ```no_run
//! use shen_client::ShenClient;
//!
//! let log = ShenClient::new("127.0.0.1:7600");
//! let a = log.append(b"user-42", b"signed up")?;
//! println!("{} at {}:{}", a.id, a.partition, a.offset);
//! assert_eq!(log.read(a.id)?.map(|r| r.data), Some(b"signed up".to_vec()));
//! for rec in log.subscribe(a.partition, 0).take(1) {
//!     println!("{:?}", rec?);
//! }
//! # Ok::<(), shen_client::ClientError>(())
//! ```
//!
//! One [`ShenClient`] keeps its HTTP/1.1 connections open and reuses them
//! (ureq's agent pool); clones share the pool. Every error is a
//! [`ClientError`] that says whether retrying is safe. The JSON documents
//! are `shen-api`'s types; nothing here parses JSON by hand.

#![warn(missing_docs)]

mod http;

use std::time::Duration;

use shen_api::{
    AppendQuery, AppendReply, ErrorBody, ErrorKind, ReadQuery, ReadReply, RecordDoc, StatusDoc,
    TxnRecord, TxnReply, TxnRequest,
};
use shen_rings::scarab::ScarabId;

pub use http::{node_info, Answer, Http};
pub use shen_api as api;

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The node could not be reached (nothing happened).
    #[error("cannot reach the node: {0}")]
    Unreachable(String),
    /// The cluster has not formed its log yet (`--bootstrap-expect`).
    #[error("the log has not formed yet: {0}")]
    NotFormed(String),
    /// The partition's chain is being reconfigured or has too few replicas
    /// right now; nothing was appended. Retry later.
    #[error("the chain cannot serve right now ({kind}): {message}")]
    Unavailable {
        /// `not_head`, `not_tail`, `stale_epoch`, `not_enough_replicas` or
        /// `unavailable`.
        kind: String,
        /// The node's explanation.
        message: String,
    },
    /// No answer in time. For an append the outcome is **unknown**: it may
    /// be in the log (the node retries with the same request id, so it is
    /// never there twice from that one request; a new request from you is a
    /// new record).
    #[error("timeout, outcome unknown: {0}")]
    Timeout(String),
    /// A transaction aborted: none of its records is or will be in the
    /// log. Retrying runs it again.
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// The request was refused as malformed (a bug in the caller).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The read starts below the partition's low watermark: retention
    /// deleted those records (the message names the earliest and latest
    /// offsets). Retrying the same read cannot succeed.
    #[error("{0}")]
    OffsetOutOfRange(String),
    /// The node answered something this client does not understand.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl ClientError {
    /// True when sending the request again may work later: everything but
    /// a malformed request or answer. Nothing was written except after a
    /// [`ClientError::Timeout`] of an append: that one may already be in
    /// the log, and retrying appends it again as a new record (check with
    /// [`ShenClient::read`] by ID first if that matters).
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            ClientError::BadRequest(_)
                | ClientError::Protocol(_)
                | ClientError::OffsetOutOfRange(_)
        )
    }

    /// The error a node's [`ErrorBody`] stands for.
    pub fn from_body(status: u16, body: ErrorBody) -> ClientError {
        let message = body.message;
        match body.kind {
            ErrorKind::NotFormed => ClientError::NotFormed(message),
            ErrorKind::OffsetOutOfRange => ClientError::OffsetOutOfRange(message),
            ErrorKind::Aborted => ClientError::Aborted(message),
            ErrorKind::TimeoutOutcomeUnknown | ErrorKind::Timeout => ClientError::Timeout(message),
            k @ (ErrorKind::NotHead
            | ErrorKind::NotTail
            | ErrorKind::StaleEpoch
            | ErrorKind::NotEnoughReplicas
            | ErrorKind::Unavailable) => ClientError::Unavailable {
                kind: kind_name(k),
                message,
            },
            ErrorKind::BadRequest
            | ErrorKind::BadPartition
            | ErrorKind::TooLarge
            | ErrorKind::UnsupportedMediaType
            | ErrorKind::NotFound
            | ErrorKind::MethodNotAllowed => ClientError::BadRequest(message),
            ErrorKind::Internal | ErrorKind::Unknown => {
                ClientError::Protocol(format!("HTTP {status}: {message}"))
            }
        }
    }
}

fn kind_name(k: ErrorKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// An acknowledged append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The record's Scarab ID (time-sortable; its node field is the
    /// partition).
    pub id: ScarabId,
    /// The partition.
    pub partition: u32,
    /// The offset in the partition.
    pub offset: u64,
}

impl TryFrom<&AppendReply> for Appended {
    type Error = ClientError;
    fn try_from(a: &AppendReply) -> Result<Appended, ClientError> {
        Ok(Appended {
            id: a
                .id
                .parse()
                .map_err(|e| ClientError::Protocol(format!("bad Scarab ID '{}': {e}", a.id)))?,
            partition: a.partition,
            offset: a.offset,
        })
    }
}

/// A committed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The partition.
    pub partition: u32,
    /// The offset.
    pub offset: u64,
    /// The Scarab ID.
    pub id: ScarabId,
    /// The payload.
    pub data: Vec<u8>,
}

impl Record {
    /// The record a read answer's document describes.
    pub fn from_doc(partition: u32, r: &RecordDoc) -> Result<Record, ClientError> {
        let bad = |why: String| {
            ClientError::Protocol(format!("bad record at {partition}:{}: {why}", r.offset))
        };
        Ok(Record {
            partition,
            offset: r.offset,
            id: r.id.parse().map_err(|e| bad(format!("id: {e}")))?,
            data: r.payload().map_err(bad)?,
        })
    }
}

/// One chain of the cluster status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    /// Partition.
    pub partition: u32,
    /// Epoch (`generation.sequence` of its Cartouche fencing number).
    pub epoch: String,
    /// Head first, tail last.
    pub members: Vec<String>,
    /// Replacements still catching up.
    pub learners: Vec<String>,
}

/// What [`ShenClient::cluster_status`] reports: a summary of the node's
/// [`StatusDoc`].
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterStatus {
    /// The node asked.
    pub node: String,
    /// `ok`, `degraded`, `alone` or `left` (empty without membership).
    pub health: String,
    /// Members and their status (`alive`, `suspect`, `dead`, `left`).
    pub members: Vec<(String, String)>,
    /// Whether the log has formed.
    pub log_formed: bool,
    /// Number of partitions (0 before the log forms).
    pub partitions: u32,
    /// Every partition's chain.
    pub chains: Vec<ChainStatus>,
    /// The whole `/status` document.
    pub doc: StatusDoc,
}

fn word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

impl From<StatusDoc> for ClusterStatus {
    fn from(doc: StatusDoc) -> ClusterStatus {
        ClusterStatus {
            node: doc.peer_id.clone(),
            health: doc.health.as_ref().map(word).unwrap_or_default(),
            members: doc
                .members()
                .iter()
                .map(|m| (m.id.clone(), word(&m.status)))
                .collect(),
            log_formed: doc.log.formed,
            partitions: doc.log.partitions.unwrap_or(0),
            chains: doc
                .log
                .chains
                .iter()
                .map(|c| ChainStatus {
                    partition: c.partition,
                    epoch: c.epoch.clone(),
                    members: c.members.clone(),
                    learners: c.learners.clone(),
                })
                .collect(),
            doc,
        }
    }
}

/// The records of a transaction being built ([`ShenClient::transaction`]).
#[derive(Debug, Default)]
pub struct Txn {
    records: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Txn {
    /// Add a record (`key` must be UTF-8).
    pub fn append(&mut self, key: &[u8], data: &[u8]) -> &mut Txn {
        self.records.push((key.to_vec(), data.to_vec()));
        self
    }
}

/// A blocking client of one node. Cheap to clone (clones share the
/// connection pool).
#[derive(Debug, Clone)]
pub struct ShenClient {
    http: Http,
}

impl ShenClient {
    /// A client of the node whose admin API listens at `admin`
    /// (HOST:PORT). Operations wait up to 15 s (the node's own deadline is
    /// 3 s by default).
    pub fn new(admin: impl Into<String>) -> ShenClient {
        ShenClient {
            http: Http::new(admin, Duration::from_secs(15)),
        }
    }

    /// The same client with another deadline per request.
    pub fn with_timeout(self, timeout: Duration) -> ShenClient {
        ShenClient {
            http: self.http.with_timeout(timeout),
        }
    }

    /// The HTTP connection pool underneath (for tools that need raw routes).
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Send a request and decode a 200 answer as `T`; any other status
    /// decodes as an [`ErrorBody`].
    fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<T, ClientError> {
        let a = self.http.request(method, path, content_type, body)?;
        if a.status == 200 {
            return serde_json::from_slice(&a.body).map_err(|e| {
                ClientError::Protocol(format!(
                    "{path}: {e}: {}",
                    String::from_utf8_lossy(&a.body).trim()
                ))
            });
        }
        Err(a.error())
    }

    /// Append `data` under `key`: once every replica of the key's
    /// partition holds it, its Scarab ID and place.
    pub fn append(&self, key: &[u8], data: &[u8]) -> Result<Appended, ClientError> {
        let path = AppendQuery { key: key.to_vec() }.to_path();
        let a: AppendReply = self.call("POST", &path, "application/octet-stream", data)?;
        Appended::try_from(&a)
    }

    /// Append several records atomically across their partitions: they
    /// all become visible, or none does. `build` adds the records:
    ///
    /// ```no_run
    /// # use shen_client::ShenClient;
    /// let log = ShenClient::new("127.0.0.1:7600");
    /// let placed = log.transaction(|t| {
    ///     t.append(b"account-1", b"-10");
    ///     t.append(b"account-2", b"+10");
    /// })?;
    /// assert_eq!(placed.len(), 2);
    /// # Ok::<(), shen_client::ClientError>(())
    /// ```
    ///
    /// It runs under the cluster's Cartouche token (one transaction at a
    /// time). `Ok` carries each record's place, in the order added;
    /// [`ClientError::Aborted`]: none was written; [`ClientError::Timeout`]:
    /// the outcome is unknown, but all-or-nothing either way.
    pub fn transaction(&self, build: impl FnOnce(&mut Txn)) -> Result<Vec<Appended>, ClientError> {
        let mut t = Txn::default();
        build(&mut t);
        if t.records.is_empty() {
            return Err(ClientError::BadRequest(
                "a transaction needs a record".into(),
            ));
        }
        let records = t
            .records
            .iter()
            .map(|(k, d)| {
                let key = std::str::from_utf8(k).map_err(|_| {
                    ClientError::BadRequest("transaction keys must be UTF-8".into())
                })?;
                Ok(TxnRecord::bytes(key, d))
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        let body = serde_json::to_vec(&TxnRequest { records })
            .map_err(|e| ClientError::BadRequest(e.to_string()))?;
        let r: TxnReply = self.call("POST", shen_api::routes::TXN, "application/json", &body)?;
        r.records.iter().map(Appended::try_from).collect()
    }

    /// The committed record with Scarab ID `id`, if there is one.
    pub fn read(&self, id: ScarabId) -> Result<Option<Record>, ClientError> {
        let r: ReadReply = self.call("GET", &ReadQuery::id(id.to_string()).to_path(), "", &[])?;
        r.records
            .first()
            .map(|d| Record::from_doc(r.partition, d))
            .transpose()
    }

    /// Up to `max` committed records of `partition` from offset `from`.
    pub fn read_range(
        &self,
        partition: u32,
        from: u64,
        max: u32,
    ) -> Result<Vec<Record>, ClientError> {
        self.read_query(&ReadQuery::partition(partition, from, max))
            .and_then(|r| {
                r.records
                    .iter()
                    .map(|d| Record::from_doc(r.partition, d))
                    .collect()
            })
    }

    /// Any read, answered as the node's document.
    pub fn read_query(&self, q: &ReadQuery) -> Result<ReadReply, ClientError> {
        self.call("GET", &q.to_path(), "", &[])
    }

    /// Follow `partition` from offset `from` (like `tail -f`): an endless
    /// iterator of committed records, in order, polling every 100 ms when
    /// caught up. Errors are yielded (the iterator goes on after them; a
    /// chain being reconfigured shows up as `Unavailable` for a moment).
    pub fn subscribe(&self, partition: u32, from: u64) -> Subscription {
        Subscription {
            client: self.clone(),
            partition,
            next: from,
            buffered: std::collections::VecDeque::new(),
        }
    }

    /// The node's whole `/status` document.
    pub fn status(&self) -> Result<StatusDoc, ClientError> {
        self.call("GET", shen_api::routes::STATUS, "", &[])
    }

    /// Members, health, partitions, chains and epochs, as the node sees them.
    pub fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        self.status().map(ClusterStatus::from)
    }
}

/// The iterator of [`ShenClient::subscribe`].
#[derive(Debug)]
pub struct Subscription {
    client: ShenClient,
    partition: u32,
    next: u64,
    buffered: std::collections::VecDeque<Record>,
}

impl Subscription {
    /// The offset of the next record it will yield.
    pub fn position(&self) -> u64 {
        self.next
    }
}

impl Iterator for Subscription {
    type Item = Result<Record, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(r) = self.buffered.pop_front() {
                self.next = r.offset + 1;
                return Some(Ok(r));
            }
            match self.client.read_range(self.partition, self.next, 1000) {
                Ok(recs) if recs.is_empty() => std::thread::sleep(Duration::from_millis(100)),
                Ok(recs) => self.buffered = recs.into(),
                Err(e) => {
                    std::thread::sleep(Duration::from_millis(500));
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(data: Option<&str>, hex: Option<&str>, id: &str) -> RecordDoc {
        RecordDoc {
            offset: 7,
            id: id.into(),
            origin: "p".into(),
            req: 1,
            data: data.map(String::from),
            data_hex: hex.map(String::from),
        }
    }

    #[test]
    fn records_decode_text_and_hex() {
        let id = ScarabId::from_u64(12345).to_string();
        let r = Record::from_doc(3, &doc(Some("hi"), None, &id)).unwrap();
        assert_eq!(
            (r.partition, r.offset, r.data.as_slice()),
            (3, 7, &b"hi"[..])
        );
        let r = Record::from_doc(3, &doc(None, Some("ff00"), &id)).unwrap();
        assert_eq!(r.data, vec![0xff, 0]);
        assert!(Record::from_doc(3, &doc(None, Some("f"), &id)).is_err());
        assert!(Record::from_doc(3, &doc(None, Some("+f+f"), &id)).is_err());
        assert!(Record::from_doc(3, &doc(Some(""), None, "nope")).is_err());
    }

    #[test]
    fn error_bodies_map_to_typed_errors() {
        let cases = [
            (ErrorKind::NotFormed, "NotFormed"),
            (ErrorKind::Aborted, "Aborted"),
            (ErrorKind::TimeoutOutcomeUnknown, "Timeout"),
            (ErrorKind::NotHead, "Unavailable"),
            (ErrorKind::TooLarge, "BadRequest"),
            (ErrorKind::OffsetOutOfRange, "OffsetOutOfRange"),
            (ErrorKind::Internal, "Protocol"),
        ];
        for (kind, want) in cases {
            let e = ClientError::from_body(kind.http_status(), ErrorBody::new(kind, "m"));
            assert!(format!("{e:?}").starts_with(want), "{kind:?} -> {e:?}");
        }
        let e = ClientError::from_body(503, ErrorBody::new(ErrorKind::StaleEpoch, "m"));
        assert_eq!(
            e,
            ClientError::Unavailable {
                kind: "stale_epoch".into(),
                message: "m".into()
            }
        );
    }

    #[test]
    fn an_unreachable_node_is_a_typed_error() {
        // Port 1 on loopback: nothing listens there.
        let c = ShenClient::new("127.0.0.1:1").with_timeout(Duration::from_secs(2));
        let e = c.append(b"k", b"v").unwrap_err();
        assert!(matches!(e, ClientError::Unreachable(_)), "{e}");
        assert!(e.is_retryable());
        assert!(!ClientError::BadRequest("x".into()).is_retryable());
    }
}
