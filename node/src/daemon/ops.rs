//! The typed operations on a running node (status, append, read, transaction, token): the only users of the transport handle.
//!
//! Each runs a command on the node's event loop and waits for the ring's
//! answer through [`super::waiters::Waiters`], with the ring's own deadline
//! plus a margin. Answers and errors are `shen-api` documents, so the admin
//! layer only encodes them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shen_api::{
    AppendReply, ErrorBody, ErrorKind, MemberOp, MemberReply, MemberRequest, ReadQuery, ReadReply,
    Ready, RecordDoc, StatusDoc, TokenReply, TxnReply,
};
use shen_rings::cartouche::Cartouche;
use shen_rings::ouroboros::{
    partition_of_key, LogError, MemberChange, Ouroboros, OuroborosEvent, Producer,
};
use shen_rings::scarab::ScarabId;
use shen_rings::stack::ShenEvent;
use shen_rings::{Node, Time};
use shen_transport_libp2p::{Handle, PeerKey};
use tokio::sync::broadcast;

use super::status::{epoch_text, status_doc};
use super::{Event, Shared};

/// The transport's counters.
pub use shen_transport_libp2p::MetricsSnapshot as TransportMetrics;

/// How long the event loop may take to pick up a command.
const LOOP_DEADLINE: Duration = Duration::from_secs(5);

/// A cloneable handle on a running node's operations.
#[derive(Clone)]
pub struct Ops {
    handle: Handle<Event>,
    shared: Arc<Shared>,
}

/// The error document of a failed log operation.
pub fn log_error(error: &LogError<PeerKey>) -> ErrorBody {
    let kind = match error {
        LogError::NotHead { .. } => ErrorKind::NotHead,
        LogError::NotTail { .. } => ErrorKind::NotTail,
        LogError::StaleEpoch => ErrorKind::StaleEpoch,
        LogError::NotEnoughReplicas => ErrorKind::NotEnoughReplicas,
        LogError::Timeout => ErrorKind::TimeoutOutcomeUnknown,
        LogError::BadPartition(_) => ErrorKind::BadPartition,
        LogError::StaleSequence => ErrorKind::StaleSequence,
        LogError::OffsetOutOfRange { .. } => ErrorKind::OffsetOutOfRange,
    };
    ErrorBody::new(kind, error.to_string())
}

/// A read's failure: like [`log_error`], but a read that ran out of time
/// changed nothing (no "outcome unknown").
fn read_error(error: &LogError<PeerKey>) -> ErrorBody {
    match error {
        LogError::Timeout => read_timeout(),
        e => log_error(e),
    }
}

fn read_timeout() -> ErrorBody {
    ErrorBody::new(
        ErrorKind::Timeout,
        "timeout: the partition's tail did not answer in time (a read changes nothing; retry)",
    )
}

fn not_answering() -> ErrorBody {
    ErrorBody::new(ErrorKind::Unavailable, "node not answering")
}

fn unexpected(other: &OuroborosEvent<PeerKey>) -> ErrorBody {
    ErrorBody::new(
        ErrorKind::Internal,
        format!(
            "unexpected outcome {}",
            ShenEvent::Ouroboros(other.clone()).name()
        ),
    )
}

impl Ops {
    pub(super) fn new(handle: Handle<Event>, shared: Arc<Shared>) -> Ops {
        Ops { handle, shared }
    }

    /// This node's PeerId.
    pub fn peer_id(&self) -> String {
        self.handle.peer_id().to_string()
    }

    /// Leave the cluster gracefully, flush and stop the node.
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }

    /// The transport's counters.
    pub fn transport_metrics(&self) -> TransportMetrics {
        self.handle.metrics()
    }

    /// How many ring events of each name this node saw.
    pub fn event_counts(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.shared
            .counts
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }

    /// Ring events as they happen: (event number, an `EventLine` in JSON).
    pub fn subscribe_events(&self) -> broadcast::Receiver<(u64, String)> {
        self.shared.events.subscribe()
    }

    /// Why a log operation cannot run here.
    pub fn not_formed(&self) -> ErrorBody {
        let why = match self.shared.log_expect {
            Some(n) => format!("the log has not formed yet: waiting for exactly {n} live nodes (--bootstrap-expect {n})"),
            None => "this node runs no log: start the cluster with --bootstrap-expect N".to_string(),
        };
        ErrorBody::new(ErrorKind::NotFormed, why)
    }

    /// The `/status` document.
    pub async fn status(&self) -> Result<StatusDoc, ErrorBody> {
        let expect = self.shared.log_expect;
        let rx = self
            .handle
            .run(move |node, view, now, _| status_doc(node, view, now, expect));
        match tokio::time::timeout(LOOP_DEADLINE, rx).await {
            Ok(Ok(mut doc)) => {
                let dir = self.shared.data_dir.clone();
                let chains = std::mem::take(&mut doc.log.chains);
                // Directory walks: off the async threads.
                doc.log.chains = tokio::task::spawn_blocking(move || {
                    chains
                        .into_iter()
                        .map(|mut c| {
                            c.disk_bytes =
                                Some(super::formation::part_disk_bytes(&dir, c.partition));
                            c
                        })
                        .collect()
                })
                .await
                .unwrap_or_default();
                Ok(doc)
            }
            _ => Err(not_answering()),
        }
    }

    /// Whether this node serves: the log formed, its storage is healthy
    /// and the event loop answers.
    pub async fn readiness(&self) -> Ready {
        let mut reasons = Vec::new();
        match self.status().await {
            Err(e) => reasons.push(e.message),
            Ok(doc) => {
                if !doc.log.formed {
                    reasons.push(self.not_formed().message);
                }
                if doc.log.storage_failed == Some(true) {
                    reasons
                        .push("the write-ahead log failed: this node stopped acknowledging".into());
                }
                if doc.log.recovered == Some(false) {
                    reasons
                        .push("restarted: still relearning the log's table from a majority".into());
                }
                if doc.health == Some(shen_api::ClusterHealth::Left) {
                    reasons.push("this node left the cluster".into());
                }
            }
        }
        Ready {
            ready: reasons.is_empty(),
            reasons,
        }
    }

    /// Run a client operation on the node's Ouroboros and wait for its
    /// outcome (at most `deadlines` request timeouts, plus a margin).
    async fn run_op(
        &self,
        deadlines: u32,
        op: impl FnOnce(&mut Node<PeerKey, Event>, Time, &mut dyn rand_core::RngCore) -> Option<u64>
            + Send
            + 'static,
    ) -> Result<OuroborosEvent<PeerKey>, ErrorBody> {
        let sh = self.shared.clone();
        let rx = self.handle.run(move |node, _, now, rng| {
            let timeout = node.ring::<Ouroboros<PeerKey>>()?.config().request_timeout * deadlines;
            let req = op(node, now, rng)?;
            Some((req, timeout, sh.waiters.register(req)))
        });
        let (req, timeout, wait) = match tokio::time::timeout(LOOP_DEADLINE, rx).await {
            Ok(Ok(Some(s))) => s,
            Ok(Ok(None)) => return Err(self.not_formed()),
            _ => return Err(not_answering()),
        };
        match tokio::time::timeout(timeout + Duration::from_secs(2), wait).await {
            Ok(Ok(outcome)) => Ok(outcome),
            _ => {
                self.shared.waiters.forget(req);
                Err(log_error(&LogError::Timeout))
            }
        }
    }

    /// Append `data` under `key`; answers once every replica of the
    /// partition's chain holds it. With `producer` (an idempotent
    /// producer's id and sequence), an append already in the log is not
    /// written again and is answered with its original place.
    pub async fn append(
        &self,
        key: Vec<u8>,
        data: Vec<u8>,
        producer: Option<(u64, u64)>,
    ) -> Result<AppendReply, ErrorBody> {
        let producer = producer.map(|(id, seq)| Producer { id, seq });
        let outcome = self
            .run_op(1, move |node, now, rng| {
                node.command::<Ouroboros<PeerKey>, _>(now, rng, |o, cx| {
                    o.append_as(cx, &key, data, producer)
                })
            })
            .await?;
        match outcome {
            OuroborosEvent::Appended {
                partition,
                offset,
                id,
                ..
            } => Ok(AppendReply {
                partition,
                offset,
                id: ScarabId::from_u64(id).to_string(),
            }),
            OuroborosEvent::AppendFailed { error, .. } => Err(log_error(&error)),
            other => Err(unexpected(&other)),
        }
    }

    /// Committed records, from the partition's tail.
    pub async fn read(&self, q: ReadQuery) -> Result<ReadReply, ErrorBody> {
        let id = match &q.id {
            None => None,
            Some(text) => Some(
                text.parse::<ScarabId>()
                    .map_err(|e| ErrorBody::bad_request(format!("id: {e}")))?,
            ),
        };
        let outcome = self
            .run_op(1, move |node, now, rng| {
                node.command::<Ouroboros<PeerKey>, _>(now, rng, |o, cx| {
                    if let Some(id) = id {
                        return o.read_id(cx, id);
                    }
                    let p = match (q.partition, &q.key) {
                        (Some(p), _) => p,
                        (None, Some(k)) => partition_of_key(k, o.config().partitions),
                        (None, None) => 0,
                    };
                    o.read_range(cx, p, q.from, q.max)
                })
            })
            .await
            .map_err(|e| {
                if e.kind == ErrorKind::TimeoutOutcomeUnknown {
                    read_timeout()
                } else {
                    e
                }
            })?;
        match outcome {
            OuroborosEvent::ReadDone {
                partition,
                from,
                records,
                committed,
                ..
            } => {
                // A PeerId's text (base58) costs more than copying a 4 KiB
                // record: one per client, not per record.
                let mut names: Vec<(PeerKey, String)> = Vec::new();
                let mut name = |p: &PeerKey| -> String {
                    if let Some((_, n)) = names.iter().find(|(k, _)| k == p) {
                        return n.clone();
                    }
                    let n = p.to_string();
                    if names.len() < 64 {
                        names.push((*p, n.clone()));
                    }
                    n
                };
                Ok(ReadReply {
                    partition,
                    from,
                    committed,
                    records: records
                        .iter()
                        .map(|r| {
                            let mut d = RecordDoc {
                                offset: r.offset,
                                id: ScarabId::from_u64(r.id).to_string(),
                                origin: name(&r.origin),
                                req: r.req,
                                key: None,
                                key_hex: None,
                                data: None,
                                data_hex: None,
                            };
                            d.set_key(&r.key);
                            d.set_payload(&r.data);
                            d
                        })
                        .collect(),
                })
            }
            OuroborosEvent::ReadFailed { error, .. } => Err(read_error(&error)),
            other => Err(unexpected(&other)),
        }
    }

    /// Append `records` (key, payload) atomically across their partitions
    /// under the Cartouche token: all visible, or none.
    pub async fn txn(&self, records: Vec<(Vec<u8>, Vec<u8>)>) -> Result<TxnReply, ErrorBody> {
        // Three rounds of appends: three request timeouts (the
        // transaction's own deadline inside the node).
        let outcome = self
            .run_op(3, move |node, now, rng| {
                node.command::<Ouroboros<PeerKey>, _>(now, rng, |o, cx| o.transaction(cx, records))
            })
            .await?;
        match outcome {
            OuroborosEvent::TxnDone {
                committed: Some(true),
                records,
                ..
            } => Ok(TxnReply {
                committed: true,
                records: records
                    .iter()
                    .map(|(p, o, id)| AppendReply {
                        partition: *p,
                        offset: *o,
                        id: ScarabId::from_u64(*id).to_string(),
                    })
                    .collect(),
            }),
            OuroborosEvent::TxnDone {
                committed: Some(false),
                error,
                ..
            } => {
                let mut e = ErrorBody::new(
                    ErrorKind::Aborted,
                    error.map(|e| e.to_string()).unwrap_or_else(|| {
                        "the transaction aborted: a record could not be written".into()
                    }),
                );
                e.committed = Some(false);
                Err(e)
            }
            OuroborosEvent::TxnDone { .. } => Err(log_error(&LogError::Timeout)),
            other => Err(unexpected(&other)),
        }
    }

    /// Acquire the Cartouche token and release it at once (how long the
    /// grant took).
    pub async fn token_acquire(&self) -> Result<TokenReply, ErrorBody> {
        let t0 = Instant::now();
        let sh = self.shared.clone();
        let rx = self.handle.run(move |node, _, now, rng| {
            let id =
                node.command::<Cartouche<PeerKey>, _>(now, rng, |c, cx| c.request(cx, "client"))?;
            Some((id, sh.waiters.register_token(id)))
        });
        let (id, wait) = match tokio::time::timeout(LOOP_DEADLINE, rx).await {
            Ok(Ok(Some(s))) => s,
            Ok(Ok(None)) => return Err(self.not_formed()),
            _ => return Err(not_answering()),
        };
        let release = |handle: &Handle<Event>| {
            drop(handle.run(move |node, _, now, rng| {
                node.command::<Cartouche<PeerKey>, _>(now, rng, |c, cx| c.release(cx, id));
            }));
        };
        let fencing = match tokio::time::timeout(Duration::from_secs(10), wait).await {
            Ok(Ok(f)) => f,
            _ => {
                self.shared.waiters.forget_token(id);
                release(&self.handle);
                return Err(ErrorBody::new(
                    ErrorKind::Timeout,
                    "the token was not granted within 10 s",
                ));
            }
        };
        let wait_ms = t0.elapsed().as_secs_f64() * 1000.0;
        release(&self.handle);
        Ok(TokenReply {
            id,
            fencing: epoch_text(fencing),
            wait_ms,
        })
    }

    /// Ask for a change of the log's member set: `add` or `remove` a node
    /// (PeerId text), or make this node `leave`. The cluster's next rounds
    /// make it; the answer says it was asked (or is already true).
    pub async fn member_change(&self, req: MemberRequest) -> Result<MemberReply, ErrorBody> {
        let bad = |m: String| ErrorBody::new(ErrorKind::BadRequest, m);
        let target = match (req.op, req.node.as_deref()) {
            (MemberOp::Leave, None) => None,
            (MemberOp::Leave, Some(_)) => {
                return Err(bad(
                    "leave takes no node: it is about the node that receives it".into(),
                ))
            }
            (_, None) => return Err(bad("add and remove need a node (a PeerId)".into())),
            (_, Some(text)) => Some(
                text.parse::<shen_transport_libp2p::libp2p::PeerId>()
                    .map(PeerKey)
                    .map_err(|e| bad(format!("bad PeerId '{text}': {e}")))?,
            ),
        };
        let op = req.op;
        let req_force = req.force;
        let rx = self.handle.run(move |node, _, now, rng| {
            let req = MemberRequest {
                op,
                node: None,
                force: req_force,
            };
            let me = *node.id();
            let who = target.unwrap_or(me);
            let change = match op {
                MemberOp::Add => MemberChange::Join(who),
                MemberOp::Remove => MemberChange::Remove(who),
                MemberOp::Leave => MemberChange::Leave(me),
            };
            let force = req.force;
            node.command::<Ouroboros<PeerKey>, _>(now, rng, |o, _| {
                let m = o.member_set();
                let done = match &change {
                    MemberChange::Join(n) => m.contains(n),
                    MemberChange::Leave(n) | MemberChange::Remove(n) => !m.contains(n),
                };
                let version = m.version;
                let knows = !m.is_empty();
                // Members that would stay (not leaving, not this one).
                let staying = m.ids().filter(|n| !m.is_leaving(n) && **n != who).count();
                let rf = o.config().rf;
                // Only a live member's departure takes copies away (a dead
                // one's are gone already).
                let live = o.live().any(|n| *n == who);
                let short =
                    !done && live && !matches!(change, MemberChange::Join(_)) && staying < rf;
                if !done && (!short || force) {
                    o.request_member_change(change);
                }
                (
                    who,
                    version,
                    done,
                    knows,
                    (short && !force).then_some((staying, rf)),
                )
            })
        });
        match tokio::time::timeout(LOOP_DEADLINE, rx).await {
            Ok(Ok(Some((who, _, _, false, _)))) if op != MemberOp::Leave => Err(ErrorBody::new(
                ErrorKind::NotFormed,
                format!("this node knows no log yet, so it cannot change one (asked about {who})"),
            )),
            Ok(Ok(Some((who, _, _, _, Some((staying, rf)))))) => Err(ErrorBody::new(
                ErrorKind::BadRequest,
                format!(
                    "{who} leaving would leave {staying} member(s), fewer than the replication factor {rf}: chains would keep {staying} cop(ies); add a node first, or ask again with force"
                ),
            )),
            Ok(Ok(Some((who, members_version, done, _, None)))) => Ok(MemberReply {
                op,
                node: who.to_string(),
                members_version,
                done,
            }),
            Ok(Ok(None)) => Err(self.not_formed()),
            _ => Err(not_answering()),
        }
    }
}
