//! The Shen log API for applications: a blocking client of a running
//! node's admin API (the node forwards appends to the partition's head and
//! reads to its tail).
//!
//! ```no_run
//! use shen_node::client::ShenClient;
//!
//! let log = ShenClient::new("127.0.0.1:7600");
//! let a = log.append(b"user-42", b"signed up")?;
//! println!("{} at {}:{}", a.id, a.partition, a.offset);
//! assert_eq!(log.read(a.id)?.map(|r| r.data), Some(b"signed up".to_vec()));
//! for rec in log.subscribe(a.partition, 0).take(1) {
//!     println!("{:?}", rec?);
//! }
//! # Ok::<(), shen_node::client::ClientError>(())
//! ```
//!
//! Every error is a [`ClientError`] that says whether retrying is safe.

use std::time::Duration;

use serde_json::Value;
use shen_rings::scarab::ScarabId;

use crate::log_cluster::percent_encode;
use crate::status_cmd::http_request_typed;

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
        /// `not_head`, `not_tail`, `stale_epoch` or `not_enough_replicas`.
        kind: String,
        /// The node's explanation.
        message: String,
    },
    /// No answer in time. For an append the outcome is **unknown**: it may
    /// be in the log (the node retries with the same request id, so it is
    /// never there twice).
    #[error("timeout, outcome unknown: {0}")]
    Timeout(String),
    /// A transaction aborted: none of its records is or will be in the
    /// log. Retrying runs it again.
    #[error("transaction aborted: {0}")]
    Aborted(String),
    /// The request was refused as malformed (a bug in the caller).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The node answered something this client does not understand.
    #[error("unexpected answer: {0}")]
    Protocol(String),
}

impl ClientError {
    /// True when retrying cannot make a record appear twice and may work
    /// later: everything but a malformed request. (A timed-out append may
    /// already be in the log; retrying appends it again with a new request
    /// id — check with [`ShenClient::read`] by ID first if that matters.)
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ClientError::BadRequest(_) | ClientError::Protocol(_))
    }
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

/// What [`ShenClient::cluster_status`] reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterStatus {
    /// The node asked.
    pub node: String,
    /// `ok`, `degraded`, `alone` or `left`.
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
    pub raw: Value,
}

/// A blocking client of one node.
#[derive(Debug, Clone)]
pub struct ShenClient {
    admin: String,
    timeout: Duration,
}

/// Decode a hex string (an even number of hex digits).
pub(crate) fn hex_decode(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

fn record_of(partition: u32, r: &Value) -> Result<Record, ClientError> {
    let bad = || ClientError::Protocol(format!("bad record {r}"));
    let data = match (r.get("data"), r.get("data_hex")) {
        (Some(Value::String(s)), _) => s.as_bytes().to_vec(),
        (_, Some(Value::String(h))) => hex_decode(h).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Ok(Record {
        partition,
        offset: r["offset"].as_u64().ok_or_else(bad)?,
        id: r["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?,
        data,
    })
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

/// An acknowledged place as the node's JSON gives it
/// (`{"id","partition","offset"}`).
fn appended_of(v: &Value) -> Option<Appended> {
    Some(Appended {
        id: v["id"].as_str()?.parse().ok()?,
        partition: u32::try_from(v["partition"].as_u64()?).ok()?,
        offset: v["offset"].as_u64()?,
    })
}

impl ShenClient {
    /// A client of the node whose admin API listens at `admin`
    /// (HOST:PORT). Operations wait up to 15 s (the node's own deadline is
    /// 3 s by default).
    pub fn new(admin: impl Into<String>) -> ShenClient {
        ShenClient {
            admin: admin.into(),
            timeout: Duration::from_secs(15),
        }
    }

    /// The same client with another deadline per request.
    pub fn with_timeout(mut self, timeout: Duration) -> ShenClient {
        self.timeout = timeout;
        self
    }

    fn call(&self, method: &str, path: &str, body: &[u8]) -> Result<Value, ClientError> {
        self.call_typed(method, path, "application/octet-stream", body)
    }

    fn call_typed(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Value, ClientError> {
        let (code, status, text) =
            http_request_typed(&self.admin, method, path, content_type, body, self.timeout)
                .map_err(|e| {
                    if e.contains("timed out") || e.contains("WouldBlock") {
                        ClientError::Timeout(e)
                    } else {
                        ClientError::Unreachable(e)
                    }
                })?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| ClientError::Protocol(format!("{status}: {}", text.trim())))?;
        if code == 200 {
            return Ok(v);
        }
        let message = v["error"].as_str().unwrap_or(&status).to_string();
        let kind = v["kind"].as_str().unwrap_or("").to_string();
        Err(match kind.as_str() {
            "not_formed" => ClientError::NotFormed(message),
            "aborted" => ClientError::Aborted(message),
            "timeout_outcome_unknown" | "timeout" => ClientError::Timeout(message),
            "not_head" | "not_tail" | "stale_epoch" | "not_enough_replicas" | "unavailable" => {
                ClientError::Unavailable { kind, message }
            }
            _ if code == 400 || code == 411 || code == 413 || code == 415 => {
                ClientError::BadRequest(message)
            }
            _ => ClientError::Protocol(format!("{status}: {message}")),
        })
    }

    /// Append `data` under `key`: once every replica of the key's
    /// partition holds it, its Scarab ID and place.
    pub fn append(&self, key: &[u8], data: &[u8]) -> Result<Appended, ClientError> {
        let v = self.call(
            "POST",
            &format!("/log/append?key={}", percent_encode(key)),
            data,
        )?;
        appended_of(&v).ok_or_else(|| ClientError::Protocol(format!("bad append answer {v}")))
    }

    /// Append several records atomically across their partitions: they
    /// all become visible, or none does. `build` adds the records:
    ///
    /// ```no_run
    /// # use shen_node::client::ShenClient;
    /// let log = ShenClient::new("127.0.0.1:7600");
    /// let placed = log.transaction(|t| {
    ///     t.append(b"account-1", b"-10");
    ///     t.append(b"account-2", b"+10");
    /// })?;
    /// assert_eq!(placed.len(), 2);
    /// # Ok::<(), shen_node::client::ClientError>(())
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
        let body = serde_json::json!({
            "records": t.records.iter().map(|(k, d)| serde_json::json!({
                "key": String::from_utf8_lossy(k),
                "data_hex": d.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            })).collect::<Vec<_>>()
        });
        if t.records
            .iter()
            .any(|(k, _)| std::str::from_utf8(k).is_err())
        {
            return Err(ClientError::BadRequest(
                "transaction keys must be UTF-8".into(),
            ));
        }
        let v = self.call_typed(
            "POST",
            "/log/txn",
            "application/json",
            body.to_string().as_bytes(),
        )?;
        let bad = || ClientError::Protocol(format!("bad transaction answer {v}"));
        v["records"]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|r| appended_of(r).ok_or_else(bad))
            .collect()
    }

    /// The committed record with Scarab ID `id`, if there is one.
    pub fn read(&self, id: ScarabId) -> Result<Option<Record>, ClientError> {
        let v = self.call("GET", &format!("/log/read?id={id}"), &[])?;
        let p = v["partition"].as_u64().unwrap_or(0) as u32;
        match v["records"].as_array().and_then(|a| a.first()) {
            Some(r) => record_of(p, r).map(Some),
            None => Ok(None),
        }
    }

    /// Up to `max` committed records of `partition` from offset `from`.
    pub fn read_range(
        &self,
        partition: u32,
        from: u64,
        max: u32,
    ) -> Result<Vec<Record>, ClientError> {
        let v = self.call(
            "GET",
            &format!("/log/read?partition={partition}&from={from}&max={max}"),
            &[],
        )?;
        v["records"]
            .as_array()
            .ok_or_else(|| ClientError::Protocol(format!("bad read answer {v}")))?
            .iter()
            .map(|r| record_of(partition, r))
            .collect()
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
            buffered: Vec::new(),
        }
    }

    /// Members, health, partitions, chains and epochs, as the node sees them.
    pub fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        let v = self.call("GET", "/status", &[])?;
        let s = |x: &Value| x.as_str().unwrap_or("").to_string();
        let members = v["members"]
            .as_array()
            .map(|a| a.iter().map(|m| (s(&m["id"]), s(&m["status"]))).collect())
            .unwrap_or_default();
        let log = &v["log"];
        let list = |x: &Value| {
            x.as_array()
                .map(|a| a.iter().map(s).collect())
                .unwrap_or_default()
        };
        let chains = log["chains"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| ChainStatus {
                        partition: c["partition"].as_u64().unwrap_or(0) as u32,
                        epoch: s(&c["epoch"]),
                        members: list(&c["members"]),
                        learners: list(&c["learners"]),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(ClusterStatus {
            node: s(&v["peer_id"]),
            health: s(&v["health"]),
            members,
            log_formed: log["formed"].as_bool().unwrap_or(false),
            partitions: log["partitions"].as_u64().unwrap_or(0) as u32,
            chains,
            raw: v,
        })
    }
}

/// The iterator of [`ShenClient::subscribe`].
#[derive(Debug)]
pub struct Subscription {
    client: ShenClient,
    partition: u32,
    next: u64,
    buffered: Vec<Record>,
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
            if !self.buffered.is_empty() {
                let r = self.buffered.remove(0);
                self.next = r.offset + 1;
                return Some(Ok(r));
            }
            match self.client.read_range(self.partition, self.next, 1000) {
                Ok(recs) if recs.is_empty() => std::thread::sleep(Duration::from_millis(100)),
                Ok(recs) => self.buffered = recs,
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

    #[test]
    fn records_decode_text_and_hex() {
        let id = ScarabId::from_u64(12345).to_string();
        let r = record_of(3, &serde_json::json!({"offset": 7, "id": id, "data": "hi"})).unwrap();
        assert_eq!(
            (r.partition, r.offset, r.data.as_slice()),
            (3, 7, &b"hi"[..])
        );
        let r = record_of(
            3,
            &serde_json::json!({"offset": 8, "id": id, "data_hex": "ff00"}),
        )
        .unwrap();
        assert_eq!(r.data, vec![0xff, 0]);
        assert!(record_of(
            3,
            &serde_json::json!({"offset": 8, "id": id, "data_hex": "f"})
        )
        .is_err());
        assert!(record_of(
            3,
            &serde_json::json!({"offset": 8, "id": "nope", "data": ""})
        )
        .is_err());
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
