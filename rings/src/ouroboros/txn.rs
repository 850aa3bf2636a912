//! Transactions: an atomic multi-partition append.
//!
//! A transaction writes its records to their partitions as *members*
//! (`TxnMark::Member`, each naming the transaction, its *home* partition
//! and every partition it touches), then appends one *decision*
//! (`TxnMark::Decide`) to the home partition, then copies the outcome to
//! every other partition it touched (`TxnMark::Done`).
//!
//! - **One outcome.** The home partition's head accepts one decision per
//!   transaction: a second `Decide` for the same transaction is answered
//!   with the first one's offset and outcome (like a duplicate append). So
//!   whoever writes first — the coordinator deciding commit, or a resolver
//!   deciding abort for a coordinator that vanished — decides for everyone,
//!   with no timeout involved.
//! - **All or nothing.** A member is visible to readers only once its
//!   partition holds the transaction's outcome (`Decide` or `Done`) in its
//!   committed prefix, and only if that outcome is commit.
//!   Readers stop at the first member whose outcome is not there yet (the
//!   *stable point*), so a partition is always read as a prefix of one
//!   order, and an append behind an open transaction is acknowledged only
//!   once that transaction is resolved (an acknowledged append is always
//!   visible). `Done` is written only after the decision is committed, so a
//!   member visible anywhere belongs to a committed transaction. `Done` goes
//!   to every partition of the transaction, home included, and like any
//!   append is acknowledged only once readers see past it; once
//!   [`Ouroboros::transaction`] reports `committed`, every later read sees
//!   all of its records. (Reads running
//!   while the outcome is being copied may see one partition's records
//!   before another's: read-committed, not a cross-partition snapshot.)
//! - **Under the token.** The coordinator holds the Cartouche token for the
//!   whole transaction (transactions are serialised cluster-wide); its
//!   fencing number, with a random nonce against a restarted token ring
//!   reusing numbers, is the transaction's id and is carried by every one
//!   of its records.
//! - **Nobody is stuck.** A partition whose stable point sits at a member
//!   of an undecided transaction for `resolve_after` gets resolved by its
//!   tail (`resolve_after` = the request timeout): it appends
//!   `Decide{commit: false}` at the home partition (which
//!   returns the real outcome if the coordinator decided first) and copies
//!   the outcome everywhere.
//!
//! Members and decisions are acknowledged once on every chain member (the
//! coordinator needs them to decide); ordinary appends and `Done`s only once
//! below the stable point. The resolver needs no token: the first-decision
//! rule makes a racing coordinator and resolver safe. Transactions are
//! serialised by the token, so their throughput is one at a time. Checked by
//! `shen sim log` (one operation in 50 is a 2–3 record transaction): a
//! committed one's records are acknowledged appends, an aborted one's are
//! never read, and every transaction is in the final logs wholly or not at
//! all.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use super::{Epoch, LogError, Op, Ouroboros, OuroborosEvent, Part};
use crate::contract::{NodeId, RingCtx, Time};

/// A transaction's identity: the coordinator's Cartouche fencing number and
/// a random nonce.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TxnId {
    /// The fencing number of the grant it ran under.
    pub fence: Epoch,
    /// Random, so a fencing number reused after a whole-cluster restart of
    /// the token ring never names an older transaction.
    pub nonce: u64,
}

/// What a log entry is to a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnMark {
    /// One of the transaction's records.
    Member {
        /// The transaction.
        txn: TxnId,
        /// Where its decision is written.
        home: u32,
        /// Every partition it writes to (sorted, `home` first).
        parts: Vec<u32>,
    },
    /// The outcome, in the home partition: the first one counts.
    Decide {
        /// The transaction.
        txn: TxnId,
        /// Commit (true) or abort.
        commit: bool,
    },
    /// The outcome, copied to another partition of the transaction.
    Done {
        /// The transaction.
        txn: TxnId,
        /// Commit (true) or abort.
        commit: bool,
    },
}

impl TxnMark {
    /// The transaction this mark belongs to.
    pub fn txn(&self) -> TxnId {
        match self {
            TxnMark::Member { txn, .. }
            | TxnMark::Decide { txn, .. }
            | TxnMark::Done { txn, .. } => *txn,
        }
    }
}

/// A record as a transaction writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRecord {
    /// Partition.
    pub p: u32,
    /// Routing key.
    pub key: Vec<u8>,
    /// Payload.
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the Cartouche grant.
    Token,
    /// Writing the members.
    Members,
    /// Writing the decision at home.
    Decide,
    /// Copying the outcome.
    Done,
}

/// A transaction this node coordinates (or resolves).
#[derive(Clone, Debug)]
pub(super) struct TxnOp {
    pub(super) records: Vec<TxnRecord>,
    pub(super) id: Option<TxnId>,
    pub(super) home: u32,
    pub(super) parts: Vec<u32>,
    pub(super) phase: Phase,
    /// Member index → (offset, Scarab ID) once acknowledged.
    pub(super) placed: Vec<Option<(u64, u64)>>,
    /// Client operations in flight → what they are (member index, or
    /// `None` for the decision and the outcome copies).
    pub(super) ops: BTreeMap<u64, Option<usize>>,
    /// A member append failed for good: decide abort.
    pub(super) failed: bool,
    pub(super) outcome: Option<bool>,
    /// Resolving someone else's transaction (no token, no members).
    pub(super) resolver: bool,
    pub(super) deadline: Time,
}

impl<I: NodeId> Ouroboros<I> {
    /// Append `records` (key, payload) atomically across their partitions:
    /// all of them become visible or none. Runs under the Cartouche token
    /// (the node emits `WantsTxnToken`; the standard reactor requests it and
    /// calls [`Ouroboros::txn_granted`]). Ends with `TxnDone` (committed
    /// with every record's place, aborted, or outcome unknown after a
    /// timeout) carrying the returned id.
    pub fn transaction(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        records: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> u64 {
        self.next_req += 1;
        let req = self.req_base.wrapping_add(self.next_req);
        let records: Vec<TxnRecord> = records
            .into_iter()
            .map(|(key, data)| TxnRecord {
                p: super::partition_of_key(&key, self.config.partitions),
                key,
                data,
            })
            .collect();
        if records.is_empty() || self.storage_failed() {
            cx.emit(OuroborosEvent::TxnDone {
                req,
                committed: Some(false),
                records: Vec::new(),
                error: Some(if records.is_empty() {
                    LogError::BadPartition(u32::MAX)
                } else {
                    LogError::NotEnoughReplicas
                }),
            });
            return req;
        }
        let mut parts: Vec<u32> = records.iter().map(|r| r.p).collect();
        parts.sort_unstable();
        parts.dedup();
        let n = records.len();
        self.txns.insert(
            req,
            TxnOp {
                records,
                id: None,
                home: parts[0],
                parts,
                phase: Phase::Token,
                placed: alloc::vec![None; n],
                ops: BTreeMap::new(),
                failed: false,
                outcome: None,
                resolver: false,
                deadline: cx.now + self.config.request_timeout * 3,
            },
        );
        cx.emit(OuroborosEvent::WantsTxnToken { req });
        req
    }

    /// Partitions this node is the tail of whose readers wait at a member
    /// of an undecided transaction.
    pub fn blocked_partitions(&mut self, me: &I) -> Vec<u32> {
        (0..self.config.partitions)
            .filter(|p| {
                if !self.is_tail(*p, me) {
                    return false;
                }
                let part = &mut self.parts[*p as usize];
                let c = part.commit.min(part.log.len());
                Self::stable_point(part, c) < c
            })
            .collect()
    }

    /// Transactions running here (coordinated or being resolved), with
    /// their phase, for debugging.
    pub fn txns_debug(&self) -> alloc::string::String {
        let mut out = alloc::string::String::new();
        for (req, t) in &self.txns {
            out.push_str(&alloc::format!(
                "txn {req}: {:?} home {} parts {:?} resolver {} ops {} outcome {:?}; ",
                t.phase,
                t.home,
                t.parts,
                t.resolver,
                t.ops.len(),
                t.outcome
            ));
        }
        out
    }

    /// Whether transaction `req` is still running here.
    pub fn has_txn(&self, req: u64) -> bool {
        self.txns.contains_key(&req)
    }

    /// The transaction waiting for the Cartouche request `token`, if any.
    pub fn txn_for_token(&self, token: u64) -> Option<u64> {
        self.txn_tokens.get(&token).copied()
    }

    /// Remember that Cartouche request `token` is for transaction `req`.
    pub fn set_txn_token(&mut self, req: u64, token: u64) {
        self.txn_tokens.insert(token, req);
    }

    /// Forget the Cartouche request `token` (released or expired).
    pub fn clear_txn_token(&mut self, token: u64) {
        self.txn_tokens.remove(&token);
    }

    /// The Cartouche request of transaction `req`, if it has one.
    pub fn token_of_txn(&self, req: u64) -> Option<u64> {
        self.txn_tokens
            .iter()
            .find(|(_, r)| **r == req)
            .map(|(t, _)| *t)
    }

    /// Transaction `req` holds the token with fencing number `fence`: write
    /// its members.
    pub fn txn_granted(&mut self, cx: &mut RingCtx<'_, I, Self>, req: u64, fence: Epoch) {
        let nonce = cx.rng.next_u64();
        let Some(t) = self.txns.get_mut(&req) else {
            return;
        };
        if t.phase != Phase::Token {
            return;
        }
        let id = TxnId { fence, nonce };
        t.id = Some(id);
        t.phase = Phase::Members;
        let (home, parts) = (t.home, t.parts.clone());
        let records = t.records.clone();
        for (i, r) in records.into_iter().enumerate() {
            let mark = TxnMark::Member {
                txn: id,
                home,
                parts: parts.clone(),
            };
            self.txn_op(cx, req, Some(i), r.p, r.key, r.data, mark);
        }
    }

    /// Start one client append on behalf of transaction `req`.
    #[allow(clippy::too_many_arguments)]
    fn txn_op(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        req: u64,
        member: Option<usize>,
        p: u32,
        key: Vec<u8>,
        data: Vec<u8>,
        mark: TxnMark,
    ) {
        self.next_req += 1;
        let op_req = self.req_base.wrapping_add(self.next_req);
        if let Some(t) = self.txns.get_mut(&req) {
            t.ops.insert(op_req, member);
        }
        self.ops.insert(
            op_req,
            super::ClientOp {
                op: Op::Append {
                    p,
                    key,
                    data,
                    txn: Some(mark),
                    owner: Some(req),
                    producer: None,
                },
                deadline: cx.now + self.config.request_timeout,
                retry_at: Time::ZERO,
                unavailable: false,
            },
        );
        self.try_op(cx, op_req);
    }

    /// A client operation of transaction `owner` finished: `Ok((offset,
    /// id, decided outcome))` or an error (a timeout included).
    pub(super) fn txn_op_done(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        owner: u64,
        op_req: u64,
        result: Result<(u64, u64, Option<bool>), LogError<I>>,
    ) {
        let Some(t) = self.txns.get_mut(&owner) else {
            return;
        };
        let Some(what) = t.ops.remove(&op_req) else {
            return;
        };
        match (&t.phase, what, result) {
            (Phase::Members, Some(i), Ok((o, id, _))) => t.placed[i] = Some((o, id)),
            (Phase::Members, Some(_), Err(_)) => t.failed = true,
            (Phase::Decide, None, Ok((_, _, Some(commit)))) => t.outcome = Some(commit),
            (Phase::Decide, None, _) => {
                // Retry the decision (the first one in the log counts, so
                // a duplicate is harmless).
                let (home, id) = (t.home, t.id);
                let commit = !t.failed && !t.resolver;
                if let Some(id) = id {
                    let mark = TxnMark::Decide { txn: id, commit };
                    self.txn_op(cx, owner, None, home, Vec::new(), Vec::new(), mark);
                }
                return;
            }
            (Phase::Done, None, Ok(_)) => {}
            (Phase::Done, None, Err(_)) => {
                // Copy the outcome again (duplicates are harmless); which
                // partition is not recorded, so redo every copy still open.
                t.ops.clear();
                self.txn_copy_outcome(cx, owner);
                return;
            }
            _ => {}
        }
        self.txn_advance(cx, owner);
    }

    fn txn_copy_outcome(&mut self, cx: &mut RingCtx<'_, I, Self>, owner: u64) {
        let Some(t) = self.txns.get(&owner) else {
            return;
        };
        let (Some(id), Some(commit)) = (t.id, t.outcome) else {
            return;
        };
        // Every partition, home included: an outcome copy is acknowledged
        // only once readers of its partition see past the transaction, so
        // when the last one is, every later read sees all of it.
        let parts = t.parts.clone();
        for p in parts {
            let mark = TxnMark::Done { txn: id, commit };
            self.txn_op(cx, owner, None, p, Vec::new(), Vec::new(), mark);
        }
    }

    /// Move transaction `owner` to its next phase when its operations are
    /// done.
    fn txn_advance(&mut self, cx: &mut RingCtx<'_, I, Self>, owner: u64) {
        let Some(t) = self.txns.get_mut(&owner) else {
            return;
        };
        if !t.ops.is_empty() {
            return;
        }
        match t.phase {
            Phase::Token => {}
            Phase::Members => {
                t.phase = Phase::Decide;
                let commit = !t.failed;
                let (home, id) = (t.home, t.id);
                if let Some(id) = id {
                    let mark = TxnMark::Decide { txn: id, commit };
                    self.txn_op(cx, owner, None, home, Vec::new(), Vec::new(), mark);
                }
            }
            Phase::Decide => {
                t.phase = Phase::Done;
                self.txn_copy_outcome(cx, owner);
                self.txn_advance(cx, owner);
            }
            Phase::Done => {
                let Some(t) = self.txns.remove(&owner) else {
                    return;
                };
                if t.resolver {
                    self.stats.txn_resolved += 1;
                    return;
                }
                let committed = t.outcome == Some(true);
                let records = if committed {
                    t.records
                        .iter()
                        .zip(&t.placed)
                        .filter_map(|(r, pl)| pl.map(|(o, id)| (r.p, o, id)))
                        .collect()
                } else {
                    Vec::new()
                };
                if committed {
                    self.stats.txn_committed += 1;
                } else {
                    self.stats.txn_aborted += 1;
                }
                cx.emit(OuroborosEvent::TxnDone {
                    req: owner,
                    committed: Some(committed),
                    records,
                    error: None,
                });
            }
        }
    }

    /// Transactions past their deadline: the outcome is unknown to the
    /// caller (a resolver will settle it for the readers).
    pub(super) fn txn_expire(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let now = cx.now;
        let late: Vec<u64> = self
            .txns
            .iter()
            .filter(|(_, t)| now >= t.deadline)
            .map(|(r, _)| *r)
            .collect();
        for req in late {
            let Some(t) = self.txns.remove(&req) else {
                continue;
            };
            for op in t.ops.keys() {
                self.ops.remove(op);
            }
            if !t.resolver {
                // Before the token came, nothing was written: a definite
                // failure.
                let committed = (t.phase == Phase::Token).then_some(false);
                cx.emit(OuroborosEvent::TxnDone {
                    req,
                    committed,
                    records: Vec::new(),
                    error: Some(LogError::Timeout),
                });
            }
        }
    }

    /// As the tail of a partition blocked by a member of an undecided
    /// transaction for `resolve_after`: settle it.
    pub(super) fn txn_resolve_blocked(&mut self, cx: &mut RingCtx<'_, I, Self>) {
        let me = cx.me.clone();
        let now = cx.now;
        let after = self.config.request_timeout;
        for p in 0..self.config.partitions {
            if !self.is_tail(p, &me) {
                continue;
            }
            let part = &mut self.parts[p as usize];
            let stable = Self::stable_point(part, part.commit);
            let blocker = (stable < part.commit)
                .then(|| part.log.txn(stable).cloned())
                .flatten();
            let Some(TxnMark::Member { txn, home, parts }) = blocker else {
                part.blocked = None;
                continue;
            };
            let since = match part.blocked {
                Some((t, s)) if t == txn => s,
                _ => {
                    part.blocked = Some((txn, now));
                    now
                }
            };
            if now.saturating_since(since) < after {
                continue;
            }
            part.blocked = Some((txn, now));
            if self.txns.values().any(|t| t.id == Some(txn)) {
                continue;
            }
            self.next_req += 1;
            let req = self.req_base.wrapping_add(self.next_req);
            self.txns.insert(
                req,
                TxnOp {
                    records: Vec::new(),
                    id: Some(txn),
                    home,
                    parts,
                    phase: Phase::Decide,
                    placed: Vec::new(),
                    ops: BTreeMap::new(),
                    failed: true,
                    outcome: None,
                    resolver: true,
                    deadline: now + self.config.request_timeout * 3,
                },
            );
            let mark = TxnMark::Decide { txn, commit: false };
            self.txn_op(cx, req, None, home, Vec::new(), Vec::new(), mark);
        }
    }

    /// The first offset below `upto` holding a member whose outcome is not
    /// in the log below `upto` (or `upto`): readers stop there.
    pub(super) fn stable_point(part: &mut Part<I>, upto: u64) -> u64 {
        // Members resolved below the commit point stay resolved: forget
        // them (the index is rebuilt whenever the log is cut).
        while let Some((&o, &txn)) = part.open.first_key_value() {
            match part.txn_out.get(&txn) {
                Some(&(at, _)) if at < part.commit && o < part.commit => {
                    part.open.pop_first();
                }
                _ => break,
            }
        }
        for (&o, txn) in part.open.range(..upto) {
            match part.txn_out.get(txn) {
                Some(&(at, _)) if at < upto => continue,
                _ => return o,
            }
        }
        upto
    }

    /// Whether entry `o` (below the stable point) is shown to readers.
    pub(super) fn visible(part: &Part<I>, o: u64) -> bool {
        match part.log.txn(o) {
            None => true,
            Some(TxnMark::Member { txn, .. }) => {
                part.txn_out.get(txn).is_some_and(|(_, commit)| *commit)
            }
            Some(_) => false,
        }
    }

    /// Index entry `o` of `part` (deduplication and transactions).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn index_entry(
        part: &mut Part<I>,
        o: u64,
        id: u64,
        origin: &I,
        req: u64,
        txn: Option<&TxnMark>,
        producer: Option<super::Producer>,
    ) {
        part.dedupe.insert(origin, req, o, id);
        if let Some(pr) = producer {
            part.producers.record(pr, o);
        }
        match txn {
            None => {}
            Some(TxnMark::Member { txn, .. }) => {
                part.open.insert(o, *txn);
            }
            Some(TxnMark::Decide { txn, commit } | TxnMark::Done { txn, commit }) => {
                part.txn_out.entry(*txn).or_insert((o, *commit));
            }
        }
    }
}
