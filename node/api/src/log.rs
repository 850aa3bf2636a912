//! The replicated log's documents: appends, reads, transactions, the token, events, `node.json`.

use serde::{Deserialize, Serialize};

/// Largest record `POST /log/append` takes (1 MiB).
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Largest `POST /log/txn` body (2 MiB of JSON).
pub const MAX_TXN_BYTES: usize = 2 << 20;
/// Most records in one transaction.
pub const MAX_TXN_RECORDS: usize = 256;

/// Where an acknowledged record is (`POST /log/append`, and each record of
/// a committed transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendReply {
    /// Partition.
    pub partition: u32,
    /// Offset in the partition.
    pub offset: u64,
    /// Scarab ID (decimal text).
    pub id: String,
}

/// One committed record of a [`ReadReply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordDoc {
    /// Offset in the partition.
    pub offset: u64,
    /// Scarab ID (decimal text).
    pub id: String,
    /// The node whose client appended it.
    pub origin: String,
    /// That node's request number.
    pub req: u64,
    /// The record's key when it is UTF-8 ... (absent from older nodes'
    /// answers)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// ... otherwise the key in lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_hex: Option<String>,
    /// The payload when it is UTF-8 ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// ... otherwise the payload in lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_hex: Option<String>,
}

impl RecordDoc {
    /// `data` for UTF-8 payloads, `data_hex` for others.
    pub fn set_payload(&mut self, bytes: &[u8]) {
        match core::str::from_utf8(bytes) {
            Ok(t) => {
                self.data = Some(t.to_string());
                self.data_hex = None;
            }
            Err(_) => {
                self.data = None;
                self.data_hex = Some(hex_encode(bytes));
            }
        }
    }

    /// `key` for UTF-8 keys, `key_hex` for others.
    pub fn set_key(&mut self, bytes: &[u8]) {
        match core::str::from_utf8(bytes) {
            Ok(t) => {
                self.key = Some(t.to_string());
                self.key_hex = None;
            }
            Err(_) => {
                self.key = None;
                self.key_hex = Some(hex_encode(bytes));
            }
        }
    }

    /// The key's bytes (`None` when the answer carries no key: an older
    /// node), or why the document is malformed.
    pub fn key_bytes(&self) -> Result<Option<Vec<u8>>, String> {
        match (&self.key, &self.key_hex) {
            (Some(t), None) => Ok(Some(t.as_bytes().to_vec())),
            (None, Some(h)) => hex_decode(h).map(Some),
            (None, None) => Ok(None),
            _ => Err(format!("record {} has both key and key_hex", self.offset)),
        }
    }

    /// The payload's bytes, or why the document holds none.
    pub fn payload(&self) -> Result<Vec<u8>, String> {
        match (&self.data, &self.data_hex) {
            (Some(t), None) => Ok(t.as_bytes().to_vec()),
            (None, Some(h)) => hex_decode(h),
            _ => Err(format!(
                "record {} needs exactly one of data and data_hex",
                self.offset
            )),
        }
    }
}

/// `GET /log/read`: committed records from the partition's tail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReply {
    /// Partition.
    pub partition: u32,
    /// The first offset asked for.
    pub from: u64,
    /// The partition's committed length at the tail.
    pub committed: u64,
    /// The records, in offset order.
    pub records: Vec<RecordDoc>,
}

/// One record of a [`TxnRequest`]: `data` (text) or `data_hex` (bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxnRecord {
    /// The key (UTF-8).
    pub key: String,
    /// The payload as text ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// ... or as hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_hex: Option<String>,
}

impl TxnRecord {
    /// A record carrying `data` as hex (any bytes).
    pub fn bytes(key: impl Into<String>, data: &[u8]) -> TxnRecord {
        TxnRecord {
            key: key.into(),
            data: None,
            data_hex: Some(hex_encode(data)),
        }
    }

    /// The payload's bytes.
    pub fn payload(&self) -> Result<Vec<u8>, String> {
        match (&self.data, &self.data_hex) {
            (Some(t), None) => Ok(t.as_bytes().to_vec()),
            (None, Some(h)) => hex_decode(h).map_err(|e| format!("data_hex: {e}")),
            _ => Err("needs data or data_hex (one of them)".to_string()),
        }
    }
}

/// A record as (key, payload).
pub type KeyedRecord = (Vec<u8>, Vec<u8>);

/// `POST /log/txn` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxnRequest {
    /// 1 to [`MAX_TXN_RECORDS`] records.
    pub records: Vec<TxnRecord>,
}

impl TxnRequest {
    /// Every record as (key, payload), or why the request is malformed.
    pub fn decode(&self) -> Result<Vec<KeyedRecord>, String> {
        if self.records.is_empty() || self.records.len() > MAX_TXN_RECORDS {
            return Err(format!(
                "a transaction holds 1 to {MAX_TXN_RECORDS} records, not {}",
                self.records.len()
            ));
        }
        self.records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let data = r.payload().map_err(|e| format!("records[{i}] {e}"))?;
                Ok((r.key.as_bytes().to_vec(), data))
            })
            .collect()
    }
}

/// A committed transaction (200); an aborted one answers an
/// [`crate::ErrorBody`] with `committed: false` (409).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnReply {
    /// Always `true` here.
    pub committed: bool,
    /// Each record's place, in request order.
    pub records: Vec<AppendReply>,
}

/// `POST /token/acquire`: the token was granted and released at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenReply {
    /// The request id.
    pub id: u64,
    /// The grant's fencing number (`generation.sequence`).
    pub fencing: String,
    /// How long the grant took.
    pub wait_ms: f64,
}

/// A change of the log's member set (`POST /log/members`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberOp {
    /// Add `node` (a node that runs without auto-join, or one to add now).
    Add,
    /// Remove `node`: at once if it is dead, else gracefully (its
    /// partitions move away first).
    Remove,
    /// This node leaves gracefully.
    Leave,
}

/// `POST /log/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    /// What to do.
    pub op: MemberOp,
    /// The node (PeerId) for `add` and `remove`; none for `leave`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Leave or remove even if fewer members than the replication factor
    /// would stay (chains then keep fewer copies).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// The answer to `POST /log/members`: the change is asked for (it is
/// made by the cluster's next configuration rounds; follow it in
/// `/status` or `/events`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberReply {
    /// What was asked.
    pub op: MemberOp,
    /// The node it is about.
    pub node: String,
    /// The member set's version when it was asked.
    pub members_version: u64,
    /// Already true of the member set (nothing to do).
    pub done: bool,
}

/// One `data:` line of `GET /events`: a ring event as it happened.
/// `E` is the event (the node writes `shen_rings::stack::ShenEvent`;
/// readers that do not link the rings take `serde_json::Value`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLine<E> {
    /// Milliseconds since the node's transport started.
    pub time_ms: u64,
    /// The event's stable dotted name (`sundial.suspected`...).
    pub name: String,
    /// The event.
    pub event: E,
}

/// The file in a node's data directory that holds its [`NodeInfo`].
pub const NODE_INFO_FILE: &str = "node.json";

/// What a node writes to `DATA_DIR/node.json` once it listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NodeInfo {
    /// PeerId.
    pub peer_id: String,
    /// Listen addresses (without /p2p).
    pub listen_addrs: Vec<String>,
    /// Admin HTTP address.
    pub admin: String,
    /// Process id.
    pub pid: u32,
}

/// Lowercase hex of `bytes`.
pub fn hex_encode(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Bytes of an even-length hex string (digits only: no signs, no spaces).
pub fn hex_decode(text: &str) -> Result<Vec<u8>, String> {
    hex::decode(text).map_err(|e| format!("not hex ({e})"))
}
