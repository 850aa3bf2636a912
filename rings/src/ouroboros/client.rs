//! The client path: appends sent to a head and answered once on every member, reads at a tail confirmed by a majority check, retries.
//!
//! # Scarab IDs
//! The head stamps each record with a Scarab ID whose *node* field is the
//! partition number (hence at most 1,024 partitions) and whose time is the
//! head's wall clock (`set_wall_clock`: the Unix time of the driver's
//! `Time::ZERO`; the simulator keeps the Scarab epoch, so runs stay
//! deterministic). The ID is made strictly greater than the log's last ID,
//! so IDs increase along every partition even when a new head's clock is
//! behind the old head's. So `read_id(id)` is cheap: the partition is in the
//! ID and the tail binary-searches its committed prefix; the answer goes
//! through the same majority check as any read.

use alloc::collections::BTreeSet;
use alloc::vec::Vec;

use super::members;
use super::part::{next_scarab, part_id, Part};
use super::producer::Seen;
use super::{
    partition_of_key, Entry, Epoch, LogError, Ouroboros, OuroborosEvent, OuroborosMsg, Producer,
    ReadRecord, TxnMark,
};
use crate::contract::{NodeId, Ring, RingCtx, Time};
use crate::scarab::ScarabId;

/// Most bytes of records (keys, data and a margin per record) in one read
/// answer, so that it fits in one frame (`wire::MAX_FRAME_BYTES`, 1 MiB)
/// with room to spare; a record larger than this (at most 1 MiB) is sent
/// alone.
pub(super) const MAX_READ_BYTES: usize = 640 * 1024;

#[derive(Clone, Debug)]
pub(super) enum Op {
    Append {
        p: u32,
        key: Vec<u8>,
        data: Vec<u8>,
        txn: Option<TxnMark>,
        /// The transaction this append is part of (its events go there).
        owner: Option<u64>,
        /// The idempotent producer and sequence, if the caller gave them.
        producer: Option<Producer>,
    },
    Read {
        p: u32,
        from: u64,
        max: u32,
        id: Option<u64>,
    },
}

#[derive(Clone, Debug)]
pub(super) struct ClientOp {
    pub(super) op: Op,
    pub(super) deadline: Time,
    pub(super) retry_at: Time,
    /// The last answer said the chain cannot serve now (a read that runs
    /// out of time then fails with that, not with a bare timeout).
    pub(super) unavailable: bool,
}

#[derive(Clone, Debug)]
pub(super) struct PendingRead<I> {
    pub(super) client: I,
    pub(super) req: u64,
    pub(super) p: u32,
    pub(super) epoch: Epoch,
    pub(super) from: u64,
    pub(super) max: u32,
    pub(super) id: Option<u64>,
    pub(super) oks: BTreeSet<I>,
    pub(super) deadline: Time,
    /// The member version of the table the check started under.
    pub(super) members_version: u64,
}

/// The outcome carried by a reply to a client.
pub(super) enum OpResult<I> {
    Appended(u64, u64, Option<bool>),
    Read(Vec<ReadRecord<I>>, u64),
    Failed(LogError<I>),
}

impl<I: NodeId> Ouroboros<I> {
    /// Append `data` under `key`; returns the request number that the
    /// `Appended`/`AppendFailed` event will carry.
    pub fn append(&mut self, cx: &mut RingCtx<'_, I, Self>, key: &[u8], data: Vec<u8>) -> u64 {
        self.append_as(cx, key, data, None)
    }

    /// [`Ouroboros::append`] on behalf of an idempotent `producer`: an
    /// append with a (producer id, sequence) already in the partition's log
    /// is not written again; it is answered with the original offset (see
    /// the `producer` module). A sequence older than the producer's
    /// remembered window fails with [`LogError::StaleSequence`].
    pub fn append_as(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        key: &[u8],
        data: Vec<u8>,
        producer: Option<Producer>,
    ) -> u64 {
        let p = partition_of_key(key, self.config.partitions);
        self.start_op(
            cx,
            Op::Append {
                p,
                key: key.to_vec(),
                data,
                txn: None,
                owner: None,
                producer,
            },
        )
    }

    /// Read up to `max` committed records of partition `p` from offset
    /// `from` (at the tail); `ReadDone`/`ReadFailed` follows.
    pub fn read_range(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        p: u32,
        from: u64,
        max: u32,
    ) -> u64 {
        self.start_op(
            cx,
            Op::Read {
                p,
                from,
                max,
                id: None,
            },
        )
    }

    /// Read the record with Scarab ID `id` (its partition is the ID's node
    /// field); `ReadDone` with that one record, or none if no committed
    /// record has that ID, or `ReadFailed`.
    pub fn read_id(&mut self, cx: &mut RingCtx<'_, I, Self>, id: ScarabId) -> u64 {
        self.start_op(
            cx,
            Op::Read {
                p: u32::from(id.node()),
                from: 0,
                max: 1,
                id: Some(id.as_u64()),
            },
        )
    }

    fn start_op(&mut self, cx: &mut RingCtx<'_, I, Self>, op: Op) -> u64 {
        self.next_req += 1;
        let req = self.req_base.wrapping_add(self.next_req);
        let p = match &op {
            Op::Append { p, .. } | Op::Read { p, .. } => *p,
        };
        let failed = self.storage_failed();
        if p >= self.config.partitions || failed {
            let error = if failed {
                LogError::NotEnoughReplicas
            } else {
                LogError::BadPartition(p)
            };
            match op {
                Op::Append { .. } => cx.emit(OuroborosEvent::AppendFailed {
                    req,
                    partition: p,
                    error,
                }),
                Op::Read { .. } => cx.emit(OuroborosEvent::ReadFailed {
                    req,
                    partition: p,
                    error,
                }),
            }
            return req;
        }
        self.ops.insert(
            req,
            ClientOp {
                op,
                deadline: cx.now + self.config.request_timeout,
                retry_at: Time::ZERO,
                unavailable: false,
            },
        );
        self.try_op(cx, req);
        req
    }

    /// (Re)send client operation `req` to the head or tail of the table.
    pub(super) fn try_op(&mut self, cx: &mut RingCtx<'_, I, Self>, req: u64) {
        let Some(op) = self.ops.get_mut(&req) else {
            return;
        };
        let retry = op.retry_at != Time::ZERO;
        // Retry after a few ticks unless an answer comes first.
        op.retry_at = cx.now + self.config.tick * 10;
        let op = op.op.clone();
        if retry {
            // No answer: the table may be stale; ask a member (or, before
            // this node knows any, a live node) at random.
            let pool: Vec<I> = if self.table.members.is_empty() {
                self.live.iter().cloned().collect()
            } else {
                self.table.members.ids().cloned().collect()
            };
            if !pool.is_empty() {
                let i = (cx.rng.next_u64() % pool.len() as u64) as usize;
                let who = pool[i].clone();
                self.query(cx, who);
            }
        }
        match op {
            Op::Append {
                p,
                key,
                data,
                txn,
                producer,
                ..
            } => {
                let Some(head) = self.table.chains[p as usize].members.first().cloned() else {
                    return;
                };
                let msg = OuroborosMsg::ClientAppend {
                    p,
                    req,
                    key,
                    data,
                    txn,
                    producer,
                };
                if &head == cx.me && self.durable.is_none() {
                    let me = cx.me.clone();
                    self.on_message(cx, me, msg);
                } else {
                    cx.send(head, msg);
                }
            }
            Op::Read { p, from, max, id } => {
                let Some(tail) = self.table.chains[p as usize].members.last().cloned() else {
                    return;
                };
                let msg = OuroborosMsg::ClientRead {
                    p,
                    req,
                    from,
                    max,
                    id,
                };
                if &tail == cx.me && self.durable.is_none() {
                    let me = cx.me.clone();
                    self.on_message(cx, me, msg);
                } else {
                    cx.send(tail, msg);
                }
            }
        }
    }

    /// Answer a client; a local one directly, unless the answer must wait
    /// for a flush (with a store, it goes through the node like any send).
    pub(super) fn reply(&mut self, cx: &mut RingCtx<'_, I, Self>, to: I, msg: OuroborosMsg<I>) {
        if &to == cx.me && self.durable.is_none() {
            let me = cx.me.clone();
            self.on_message(cx, me, msg);
        } else {
            cx.send(to, msg);
        }
    }

    /// Whether the head may answer the append at `o`: it is on every
    /// member, and it is not behind a member of an undecided transaction
    /// (an acknowledged append is always visible to a read that follows).
    /// Transaction members and outcome entries are answered once on every
    /// member: the coordinator needs them to decide.
    pub(super) fn answerable(part: &mut Part<I>, o: u64) -> bool {
        if o >= part.commit {
            return false;
        }
        match part.log.txn(o) {
            Some(TxnMark::Member { .. }) | Some(TxnMark::Decide { .. }) => true,
            _ => o < Self::stable_point(part, part.commit),
        }
    }

    /// The answer to an acknowledged append at `o`.
    pub(super) fn append_ok(part: &Part<I>, req: u64, o: u64) -> OuroborosMsg<I> {
        let decided = match part.log.txn(o) {
            Some(TxnMark::Decide { txn, .. }) => part.txn_out.get(txn).map(|(_, c)| *c),
            _ => None,
        };
        OuroborosMsg::AppendReply {
            req,
            result: Ok((o, part_id(part, o))),
            decided,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_client_append(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        p: u32,
        req: u64,
        key: Vec<u8>,
        data: Vec<u8>,
        txn: Option<TxnMark>,
        producer: Option<Producer>,
    ) {
        let me = cx.me.clone();
        if p >= self.config.partitions {
            let msg = OuroborosMsg::AppendReply {
                req,
                result: Err(LogError::BadPartition(p)),
                decided: None,
            };
            return self.reply(cx, from, msg);
        }
        if !self.is_head(p, &me) {
            let head = self.chain(p).members.first().cloned();
            let msg = OuroborosMsg::AppendReply {
                req,
                result: Err(LogError::NotHead { head }),
                decided: None,
            };
            return self.reply(cx, from, msg);
        }
        if !self.recovered || self.parts[p as usize].stale {
            let msg = OuroborosMsg::AppendReply {
                req,
                result: Err(LogError::NotEnoughReplicas),
                decided: None,
            };
            return self.reply(cx, from, msg);
        }
        let epoch = self.chain(p).epoch;
        let single = self.chain(p).members.len() == 1;
        let part = &mut self.parts[p as usize];
        // A transaction's decision: the first one written counts, a later
        // one is answered like a duplicate of it.
        let first_decision = match &txn {
            Some(TxnMark::Decide { txn: t, .. }) => part
                .txn_out
                .get(t)
                .map(|(o, _)| *o)
                .filter(|o| matches!(part.log.txn(*o), Some(TxnMark::Decide { .. }))),
            _ => None,
        };
        let own = part.dedupe.get(&from, req);
        let by_producer = match producer.map(|pr| part.producers.check(&pr)) {
            Some(Seen::TooOld) if own.is_none() => {
                let msg = OuroborosMsg::AppendReply {
                    req,
                    result: Err(LogError::StaleSequence),
                    decided: None,
                };
                return self.reply(cx, from, msg);
            }
            Some(Seen::Duplicate(o)) => Some(o),
            Some(Seen::New | Seen::TooOld) | None => None,
        };
        if let Some(o) = own.or(by_producer).or(first_decision) {
            self.stats.deduplicated += 1;
            if Self::answerable(part, o) {
                let msg = Self::append_ok(part, req, o);
                return self.reply(cx, from, msg);
            }
            let ws = part.waiters.entry(o).or_default();
            if !ws.contains(&(from.clone(), req)) {
                ws.push((from, req));
            }
            return;
        }
        let o = part.log.len();
        let id = next_scarab(
            part.log.last_id(),
            p,
            self.unix_at_zero_ms.saturating_add(cx.now.as_millis()),
        );
        Self::index_entry(part, o, id, &from, req, txn.as_ref(), producer);
        part.log.push(Entry {
            id,
            epoch,
            origin: from.clone(),
            req,
            key,
            data,
            txn,
            producer,
        });
        part.waiters.entry(o).or_default().push((from, req));
        self.stats.head_appends += 1;
        self.note_appended(p, cx.now);
        if single {
            self.advance_commit(cx, p, o + 1);
            return;
        }
        // Nagle-style batching: push now if nothing is in flight or a full
        // batch is waiting; otherwise the next ack (or tick) pushes.
        let part = &self.parts[p as usize];
        let len = part.log.len();
        if part.sent <= part.commit || len - part.sent >= self.config.max_batch as u64 {
            if part.sent <= part.commit {
                self.parts[p as usize].last_progress = cx.now;
            }
            self.push(cx, p);
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_client_read(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        p: u32,
        req: u64,
        start: u64,
        max: u32,
        id: Option<u64>,
    ) {
        let me = cx.me.clone();
        let err = if p >= self.config.partitions {
            Some(LogError::BadPartition(p))
        } else if !self.is_tail(p, &me) {
            Some(LogError::NotTail {
                tail: self.chain(p).members.last().cloned(),
            })
        } else if !self.recovered || self.parts[p as usize].stale || !self.parts[p as usize].ready {
            Some(LogError::NotEnoughReplicas)
        } else {
            None
        };
        if let Some(e) = err {
            let msg = OuroborosMsg::ReadReply {
                req,
                result: Err(e),
            };
            return self.reply(cx, from, msg);
        }
        self.next_nonce += 1;
        let nonce = self.next_nonce;
        let epoch = self.chain(p).epoch;
        self.reads.insert(
            nonce,
            PendingRead {
                client: from,
                req,
                p,
                epoch,
                from: start,
                max,
                id,
                oks: BTreeSet::new(),
                deadline: cx.now + self.config.round_timeout,
                members_version: self.table.members.version,
            },
        );
        // Our own answer first, then the others'.
        let members_version = self.table.members.version;
        let ok = self.check_ok(p, epoch, members_version);
        self.on_check_reply(cx, me.clone(), nonce, ok);
        let others = self.others(&me);
        cx.multicast(
            others.iter(),
            &OuroborosMsg::Check {
                p,
                epoch,
                nonce,
                members_version,
            },
        );
    }

    /// No newer epoch for `p` and no newer member set than the asker's
    /// was accepted or committed here (see `members` for why the version
    /// matters).
    fn check_ok(&self, p: u32, epoch: Epoch, members_version: u64) -> bool {
        if !self.recovered {
            return false;
        }
        let newer_members = self.table.members.version > members_version
            || self
                .accepted
                .as_ref()
                .is_some_and(|a| a.members.version > members_version);
        if newer_members {
            return false;
        }
        let newest = match &self.accepted {
            Some(a) if a.ballot > self.table.ballot => a.chains[p as usize].epoch,
            _ => self.chain(p).epoch,
        };
        newest <= epoch && self.chain(p).epoch <= epoch
    }

    pub(super) fn on_check_reply(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        nonce: u64,
        ok: bool,
    ) {
        let Some(r) = self.reads.get_mut(&nonce) else {
            return;
        };
        if !ok {
            let r = self.reads.remove(&nonce).expect("present");
            let msg = OuroborosMsg::ReadReply {
                req: r.req,
                result: Err(LogError::StaleEpoch),
            };
            return self.reply(cx, r.client, msg);
        }
        r.oks.insert(from);
        if !members::has_majority(r.oks.iter(), &self.table.members) {
            return;
        }
        let r = self.reads.remove(&nonce).expect("present");
        // Still the tail of the same epoch, under the same member set?
        let me = cx.me.clone();
        if self.chain(r.p).epoch != r.epoch
            || !self.is_tail(r.p, &me)
            || self.table.members.version != r.members_version
        {
            let msg = OuroborosMsg::ReadReply {
                req: r.req,
                result: Err(LogError::StaleEpoch),
            };
            return self.reply(cx, r.client, msg);
        }
        let part = &mut self.parts[r.p as usize];
        // Only what is on every member (at the tail that is its verified
        // prefix), up to the first member of a transaction whose outcome is
        // not here yet; transaction bookkeeping entries and aborted members
        // are skipped (offsets keep their gaps).
        let committed = part.commit.min(part.log.len());
        let len = Self::stable_point(part, committed);
        let part = &self.parts[r.p as usize];
        let low = part.log.low();
        if r.id.is_none() && r.from < low {
            // Retention deleted it (see `retention`).
            let msg = OuroborosMsg::ReadReply {
                req: r.req,
                result: Err(LogError::OffsetOutOfRange {
                    earliest: low,
                    latest: len.max(low),
                }),
            };
            return self.reply(cx, r.client, msg);
        }
        let (start, n) = match r.id {
            // IDs increase along the log: binary search the stable part.
            Some(id) => match part.log.find_id(id, len) {
                Some(o) => (o, 1),
                None => (len, 0),
            },
            None => (r.from, (r.max as usize).min(self.config.max_read) as u64),
        };
        let mut records: Vec<ReadRecord<I>> = Vec::new();
        let mut bytes = 0usize;
        let mut o = start.min(len);
        while o < len && (records.len() as u64) < n {
            if Self::visible(part, o) {
                let Some(e) = part.log.get(o) else {
                    // Unreadable: the flush reports the store's failure.
                    break;
                };
                // The answer must fit in one frame: at least one record,
                // then no more than `MAX_READ_BYTES` of keys and data (the
                // reader asks again from the next offset).
                let b = e.key.len() + e.data.len() + 64;
                if !records.is_empty() && bytes + b > MAX_READ_BYTES {
                    break;
                }
                bytes += b;
                records.push(ReadRecord {
                    offset: o,
                    id: e.id,
                    origin: e.origin.clone(),
                    req: e.req,
                    key: e.key.clone(),
                    data: e.data.clone(),
                });
            }
            if r.id.is_some() {
                break;
            }
            o += 1;
        }
        let msg = OuroborosMsg::ReadReply {
            req: r.req,
            result: Ok((records, len)),
        };
        self.reply(cx, r.client, msg);
    }

    pub(super) fn on_reply(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        req: u64,
        result: OpResult<I>,
    ) {
        let Some(op) = self.ops.get(&req) else {
            return;
        };
        let p = match &op.op {
            Op::Append { p, .. } | Op::Read { p, .. } => *p,
        };
        let owner = match &op.op {
            Op::Append { owner, .. } => *owner,
            Op::Read { .. } => None,
        };
        if let Some(owner) = owner {
            match result {
                OpResult::Appended(o, id, decided) => {
                    self.ops.remove(&req);
                    self.txn_op_done(cx, owner, req, Ok((o, id, decided)));
                }
                OpResult::Failed(LogError::BadPartition(x)) => {
                    self.ops.remove(&req);
                    self.txn_op_done(cx, owner, req, Err(LogError::BadPartition(x)));
                }
                OpResult::Failed(_) => {
                    self.query(cx, from);
                    if let Some(op) = self.ops.get_mut(&req) {
                        op.retry_at = cx.now + self.config.tick * 2;
                    }
                }
                OpResult::Read(..) => {}
            }
            return;
        }
        match result {
            OpResult::Appended(o, id, _) => {
                self.ops.remove(&req);
                cx.emit(OuroborosEvent::Appended {
                    req,
                    partition: p,
                    offset: o,
                    id,
                });
            }
            OpResult::Read(records, committed) => {
                let from_off = match &op.op {
                    Op::Read { from, .. } => *from,
                    Op::Append { .. } => return,
                };
                self.ops.remove(&req);
                cx.emit(OuroborosEvent::ReadDone {
                    req,
                    partition: p,
                    from: from_off,
                    records,
                    committed,
                });
            }
            // Definite answers: retrying cannot change them.
            OpResult::Failed(
                error @ (LogError::BadPartition(_)
                | LogError::StaleSequence
                | LogError::OffsetOutOfRange { .. }),
            ) => {
                let is_append = matches!(op.op, Op::Append { .. });
                self.ops.remove(&req);
                if is_append {
                    cx.emit(OuroborosEvent::AppendFailed {
                        req,
                        partition: p,
                        error,
                    });
                } else {
                    cx.emit(OuroborosEvent::ReadFailed {
                        req,
                        partition: p,
                        error,
                    });
                }
            }
            OpResult::Failed(e) => {
                // Retry soon, with a fresher table if the replier has one.
                self.query(cx, from);
                if let Some(op) = self.ops.get_mut(&req) {
                    op.retry_at = cx.now + self.config.tick * 2;
                    op.unavailable = matches!(e, LogError::NotEnoughReplicas);
                }
            }
        }
    }

    /// Another tail asks whether `epoch` is still the newest for `p`.
    pub(super) fn on_check(
        &mut self,
        cx: &mut RingCtx<'_, I, Self>,
        from: I,
        p: u32,
        epoch: Epoch,
        nonce: u64,
        members_version: u64,
    ) {
        if self.recovered && p < self.config.partitions {
            let ok = self.check_ok(p, epoch, members_version);
            cx.send(from, OuroborosMsg::CheckReply { nonce, ok });
        }
    }
}
