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
//!
//! # Idempotent appends
//! A client is an idempotent *producer* (Kafka's model): it has a random
//! producer id and numbers its appends. [`ShenClient::append`] sends each
//! append with the next number and, when the answer is a timeout, an
//! unreachable node or a chain being reconfigured (a head change), sends it
//! again with the *same* number until [`ShenClient::with_retry_for`] runs
//! out (an unreachable node is reported at once); the cluster writes an append with a known (producer, number) at
//! most once, across head changes and restarts. Clones share the producer
//! (and number appends from one counter); keep at most
//! `shen_rings::ouroboros::PRODUCER_WINDOW` (8) appends of one producer in
//! flight to one partition, or a late retry may be refused as
//! [`ClientError::StaleSequence`].

#![warn(missing_docs)]

mod http;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
    /// be in the log. [`ShenClient::append`] already retried it with its
    /// producer id and sequence number until its retry time ran out;
    /// retrying again with the same pair ([`ShenClient::append_with`]) is
    /// safe (written at most once), while a plain new append may write it
    /// a second time.
    #[error("{0}")]
    Timeout(String),
    /// A transaction aborted: none of its records is or will be in the
    /// log. Retrying runs it again.
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// An idempotent append was refused: its producer has since written
    /// newer sequence numbers to the partition, so whether this one was
    /// written earlier can no longer be told. Nothing was written now; do
    /// not retry it with the same number (refused again) and resend it as a
    /// new append only if a duplicate is acceptable.
    #[error("sequence too old, outcome unknown: {0}")]
    StaleSequence(String),
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
    /// a malformed request or answer and a stale sequence. Nothing was
    /// written except after a [`ClientError::Timeout`] (or an
    /// `Unreachable` node that failed mid-request) of an append: that one
    /// may already be in the log; retry it with the same producer id and
    /// sequence ([`ShenClient::append_with`]) and it is written at most
    /// once.
    pub fn is_retryable(&self) -> bool {
        !matches!(
            self,
            ClientError::BadRequest(_)
                | ClientError::Protocol(_)
                | ClientError::StaleSequence(_)
                | ClientError::OffsetOutOfRange(_)
        )
    }

    /// Whether [`ShenClient::append`] sends an append again with the same
    /// sequence: the outcome is unknown, or nothing was written because the
    /// chain could not serve yet (a head change). An unreachable node is
    /// not retried (a wrong address should fail at once); retrying it with
    /// [`ShenClient::append_with`] is safe.
    fn worth_resending(&self) -> bool {
        matches!(
            self,
            ClientError::Timeout(_) | ClientError::Unavailable { .. }
        )
    }

    /// The error a node's [`ErrorBody`] stands for.
    pub fn from_body(status: u16, body: ErrorBody) -> ClientError {
        let message = body.message;
        match body.kind {
            ErrorKind::NotFormed => ClientError::NotFormed(message),
            ErrorKind::OffsetOutOfRange => ClientError::OffsetOutOfRange(message),
            ErrorKind::Aborted => ClientError::Aborted(message),
            ErrorKind::StaleSequence => ClientError::StaleSequence(message),
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
    /// The key it was appended under (empty if the node is too old to
    /// return keys).
    pub key: Vec<u8>,
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
            key: r.key_bytes().map_err(bad)?.unwrap_or_default(),
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

/// An idempotent producer: its id and the next sequence number.
#[derive(Debug)]
struct ProducerState {
    id: u64,
    next: AtomicU64,
}

/// A random non-zero producer id (OS-seeded hashing of the time, the
/// process and a counter).
pub fn random_producer_id() -> u64 {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let id = RandomState::new().hash_one((nanos, std::process::id(), n));
    id.max(1)
}

/// A blocking client of one node. Cheap to clone (clones share the
/// connection pool and the idempotent producer).
#[derive(Debug, Clone)]
pub struct ShenClient {
    http: Http,
    producer: Arc<ProducerState>,
    retry_for: Duration,
}

impl ShenClient {
    /// A client of the node whose admin API listens at `admin`
    /// (HOST:PORT). Operations wait up to 15 s (the node's own deadline is
    /// 3 s by default); an append is retried for up to 30 s.
    pub fn new(admin: impl Into<String>) -> ShenClient {
        ShenClient {
            http: Http::new(admin, Duration::from_secs(15)),
            producer: Arc::new(ProducerState {
                id: random_producer_id(),
                next: AtomicU64::new(1),
            }),
            retry_for: Duration::from_secs(30),
        }
    }

    /// The same client with another deadline per request.
    pub fn with_timeout(self, timeout: Duration) -> ShenClient {
        ShenClient {
            http: self.http.with_timeout(timeout),
            ..self
        }
    }

    /// The same client as producer `id` (non-zero; e.g. to resume a
    /// producer after a restart of the application), numbering from
    /// `next_seq`. Numbers must increase: start above every number this
    /// producer used before.
    pub fn with_producer(self, id: u64, next_seq: u64) -> ShenClient {
        ShenClient {
            producer: Arc::new(ProducerState {
                id: id.max(1),
                next: AtomicU64::new(next_seq),
            }),
            ..self
        }
    }

    /// The same client retrying an append for at most `d` (zero: one
    /// attempt).
    pub fn with_retry_for(self, d: Duration) -> ShenClient {
        ShenClient {
            retry_for: d,
            ..self
        }
    }

    /// This client's idempotent producer id.
    pub fn producer_id(&self) -> u64 {
        self.producer.id
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
    /// partition holds it, its Scarab ID and place. It is sent with this
    /// client's producer id and the next sequence number and retried (same
    /// number) on timeouts, unreachable nodes and chains being
    /// reconfigured, so it is written at most once; the errors say what is
    /// known.
    pub fn append(&self, key: &[u8], data: &[u8]) -> Result<Appended, ClientError> {
        let seq = self.producer.next.fetch_add(1, Ordering::Relaxed);
        self.append_with(key, data, seq)
    }

    /// [`ShenClient::append`] with sequence number `seq` of this client's
    /// producer: to retry an append whose outcome is unknown (the same
    /// `seq` as before), or to number appends yourself.
    pub fn append_with(&self, key: &[u8], data: &[u8], seq: u64) -> Result<Appended, ClientError> {
        let path = AppendQuery {
            key: key.to_vec(),
            producer: Some(self.producer.id),
            seq: Some(seq),
        }
        .to_path();
        let start = std::time::Instant::now();
        let mut pause = Duration::from_millis(50);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let r: Result<AppendReply, ClientError> =
                self.call("POST", &path, "application/octet-stream", data);
            let e = match r {
                Ok(a) => return Appended::try_from(&a),
                Err(e) => e,
            };
            if !e.worth_resending() || start.elapsed() + pause > self.retry_for {
                return Err(match e {
                    ClientError::Timeout(m) => ClientError::Timeout(format!(
                        "{m} (after {attempts} attempts over {:.1?} as producer {} sequence {seq}; retrying with the same producer and sequence is safe)",
                        start.elapsed(),
                        self.producer.id
                    )),
                    other => other,
                });
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
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

    /// Ask the node for a change of the log's member set: add or remove
    /// `node` (a PeerId), or make the node itself leave (`node: None`).
    /// The cluster makes the change in its next configuration rounds;
    /// follow it with [`ShenClient::status`].
    /// `force`: even if fewer members than the replication factor would
    /// stay.
    pub fn member_change(
        &self,
        op: shen_api::MemberOp,
        node: Option<&str>,
        force: bool,
    ) -> Result<shen_api::MemberReply, ClientError> {
        let body = serde_json::to_vec(&shen_api::MemberRequest {
            op,
            node: node.map(str::to_string),
            force,
        })
        .map_err(|e| ClientError::BadRequest(e.to_string()))?;
        self.call("POST", shen_api::routes::MEMBERS, "application/json", &body)
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

    /// Up to `max` committed records appended under `key`, from offset
    /// `from` of its partition (the partition is read page by page and
    /// filtered; other keys' records are skipped).
    pub fn read_key(&self, key: &[u8], from: u64, max: u32) -> Result<Vec<Record>, ClientError> {
        let mut out = Vec::new();
        let mut next = from;
        while out.len() < max as usize {
            let (recs, end) = self.read_key_page(key, next)?;
            let Some(end) = end else { break };
            next = end;
            out.extend(recs);
        }
        out.truncate(max as usize);
        Ok(out)
    }

    /// One page of `key`'s partition from `from`: its records under `key`
    /// and the offset after the page (`None` at the end).
    fn read_key_page(
        &self,
        key: &[u8],
        from: u64,
    ) -> Result<(Vec<Record>, Option<u64>), ClientError> {
        let q = ReadQuery {
            key: Some(key.to_vec()),
            from,
            max: 1000,
            ..ReadQuery::default()
        };
        let r = self.read_query(&q)?;
        let end = r.records.last().map(|d| d.offset + 1);
        let recs = r
            .records
            .iter()
            .map(|d| Record::from_doc(r.partition, d))
            .filter(|x| x.as_ref().map_or(true, |x| x.key == key))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((recs, end))
    }

    /// Follow `partition` from offset `from` (like `tail -f`): an endless
    /// iterator of committed records, in order, polling every 100 ms when
    /// caught up. Errors are yielded (the iterator goes on after them; a
    /// chain being reconfigured shows up as `Unavailable` for a moment).
    pub fn subscribe(&self, partition: u32, from: u64) -> Subscription {
        Subscription {
            client: self.clone(),
            partition,
            key: None,
            next: from,
            buffered: std::collections::VecDeque::new(),
        }
    }

    /// Follow the records appended under `key` from offset `from` of its
    /// partition (like [`ShenClient::subscribe`], other keys skipped).
    pub fn subscribe_key(&self, key: &[u8], from: u64) -> Subscription {
        Subscription {
            client: self.clone(),
            partition: 0,
            key: Some(key.to_vec()),
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

/// The iterator of [`ShenClient::subscribe`] and [`ShenClient::subscribe_key`].
#[derive(Debug)]
pub struct Subscription {
    client: ShenClient,
    partition: u32,
    key: Option<Vec<u8>>,
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
            let page = match &self.key {
                None => self
                    .client
                    .read_range(self.partition, self.next, 1000)
                    .map(|r| {
                        let end = r.last().map(|x| x.offset + 1);
                        (r, end)
                    }),
                Some(k) => self.client.read_key_page(k, self.next),
            };
            match page {
                Ok((_, None)) => std::thread::sleep(Duration::from_millis(100)),
                Ok((recs, Some(end))) if recs.is_empty() => self.next = end,
                Ok((recs, _)) => self.buffered = recs.into(),
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
            key: Some("k".into()),
            key_hex: None,
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
