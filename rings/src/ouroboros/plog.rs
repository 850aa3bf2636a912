//! One partition replica's log as the ring sees it: an in-memory index of
//! every record held, a bounded cache of the newest records, and the rest
//! on disk behind a [`RecordStore`].
//!
//! # Shape
//! The log holds the offsets `low..len`. `low` is the *low watermark*:
//! records below it were deleted by retention (or never received, by a
//! replica that joined after they were deleted). For every held offset the
//! index ([`Meta`]: Scarab ID, epoch, transaction mark, size) is in memory;
//! the records themselves are in the cache (the newest, up to the byte
//! budget) or in the record store. Without a record store (the browser, a
//! simulator run without disks) everything stays in the cache.
//!
//! # Invariants
//! - The record store holds exactly this log's `low..stored` (maybe more
//!   below `low`, never read), and `stored <= len`.
//! - Every offset at or above `stored` is in the cache, so nothing is lost
//!   before it reaches the store; eviction only drops records below
//!   `stored`.
//! - `runs` lists the epoch runs of the whole log `0..len`, trimmed part
//!   included (chain derivation compares them; they are tiny).

use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use serde::{Deserialize, Serialize};

use super::records::BoxedRecords;
use super::{Entry, Epoch, Producer, TxnMark};

/// A shared handle to the node's record store.
pub(super) type Records = Rc<RefCell<BoxedRecords>>;

/// What the ring keeps in memory of each record held.
#[derive(Clone, Debug)]
pub(super) struct Meta {
    pub(super) id: u64,
    pub(super) epoch: Epoch,
    pub(super) txn: Option<alloc::boxed::Box<TxnMark>>,
    /// Key plus data bytes.
    pub(super) bytes: u32,
}

/// A record's index entry on disk.
#[derive(Serialize, Deserialize)]
pub(super) struct IndexRec<I> {
    pub(super) id: u64,
    pub(super) epoch: Epoch,
    pub(super) origin: I,
    pub(super) req: u64,
    pub(super) txn: Option<TxnMark>,
    /// What [`entry_bytes`] counts for it.
    pub(super) bytes: u32,
    /// Its idempotent producer, if any (the producer table is rebuilt from
    /// the index at recovery).
    pub(super) producer: Option<Producer>,
}

/// A record's data on disk: key and payload.
#[derive(Serialize, Deserialize)]
pub(super) struct DataRec {
    #[serde(with = "serde_bytes")]
    pub(super) key: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub(super) data: Vec<u8>,
}

/// The bytes an entry counts for in the cache and for retention.
pub(super) fn entry_bytes<I>(e: &Entry<I>) -> usize {
    e.key.len() + e.data.len() + 48
}

/// One partition replica's log (see the module docs).
#[derive(Clone, Debug)]
pub(super) struct PartLog<I> {
    /// The partition (for store calls).
    pub(super) p: u32,
    low: u64,
    metas: VecDeque<Meta>,
    cache: VecDeque<Entry<I>>,
    cached: usize,
    pub(super) budget: usize,
    pub(super) stored: u64,
    pub(super) store: Option<Records>,
    runs: Vec<(Epoch, u64)>,
    /// Bytes (as `entry_bytes` counts) held, `low..len`.
    held: u64,
    /// A read from the store failed (reported by the next flush).
    pub(super) read_error: Rc<RefCell<Option<String>>>,
}

impl<I> Default for PartLog<I> {
    fn default() -> Self {
        PartLog {
            p: 0,
            low: 0,
            metas: VecDeque::new(),
            cache: VecDeque::new(),
            cached: 0,
            budget: usize::MAX,
            stored: 0,
            store: None,
            runs: Vec::new(),
            held: 0,
            read_error: Rc::default(),
        }
    }
}

impl<I: Clone + Serialize + for<'de> Deserialize<'de>> PartLog<I> {
    /// The next offset (the log's length, trimmed prefix included).
    pub(super) fn len(&self) -> u64 {
        self.low + self.metas.len() as u64
    }

    /// No offset was ever written (or all were cut).
    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The low watermark: the first offset held.
    pub(super) fn low(&self) -> u64 {
        self.low
    }

    /// Record bytes held.
    pub(super) fn held_bytes(&self) -> u64 {
        self.held
    }

    fn meta(&self, o: u64) -> Option<&Meta> {
        let i = o.checked_sub(self.low)?;
        self.metas.get(usize::try_from(i).ok()?)
    }

    /// The Scarab ID at `o`, if held.
    pub(super) fn id(&self, o: u64) -> Option<u64> {
        self.meta(o).map(|m| m.id)
    }

    /// The epoch at `o` (also for trimmed offsets, from the runs).
    pub(super) fn epoch(&self, o: u64) -> Option<Epoch> {
        if let Some(m) = self.meta(o) {
            return Some(m.epoch);
        }
        super::part::epoch_at(&self.runs, self.len(), o)
    }

    /// The transaction mark at `o`, if held and any.
    pub(super) fn txn(&self, o: u64) -> Option<&TxnMark> {
        self.meta(o).and_then(|m| m.txn.as_deref())
    }

    /// The last record's Scarab ID.
    pub(super) fn last_id(&self) -> Option<u64> {
        self.metas.back().map(|m| m.id)
    }

    /// The last record's epoch.
    pub(super) fn last_epoch(&self) -> Option<Epoch> {
        self.metas
            .back()
            .map(|m| m.epoch)
            .or_else(|| self.runs.last().map(|r| r.0))
    }

    /// The epoch runs of the whole log.
    pub(super) fn runs(&self) -> Vec<(Epoch, u64)> {
        self.runs.clone()
    }

    /// The offset of the record with Scarab ID `id` below `upto`.
    pub(super) fn find_id(&self, id: u64, upto: u64) -> Option<u64> {
        let n = usize::try_from(upto.saturating_sub(self.low))
            .unwrap_or(usize::MAX)
            .min(self.metas.len());
        let (a, b) = self.metas.as_slices();
        let search = |s: &[Meta]| s.binary_search_by_key(&id, |m| m.id).ok();
        if n <= a.len() {
            return search(&a[..n]).map(|i| self.low + i as u64);
        }
        search(a)
            .map(|i| self.low + i as u64)
            .or_else(|| search(&b[..n - a.len()]).map(|i| self.low + (a.len() + i) as u64))
    }

    fn cache_start(&self) -> u64 {
        self.len() - self.cache.len() as u64
    }

    /// The whole entry at `o`: from the cache, else from the store. `None`
    /// if not held (or unreadable: then the error waits for the flush).
    pub(super) fn get(&self, o: u64) -> Option<Entry<I>> {
        if o >= self.len() || o < self.low {
            return None;
        }
        let cs = self.cache_start();
        if o >= cs {
            return self.cache.get((o - cs) as usize).cloned();
        }
        let store = self.store.as_ref()?;
        let p = self.p;
        let s = store.borrow();
        let read = || -> Result<Entry<I>, String> {
            let idx = s
                .read_index(p, o)?
                .ok_or_else(|| alloc::format!("partition {p}: index of {o} missing"))?;
            let data = s
                .read_data(p, o)?
                .ok_or_else(|| alloc::format!("partition {p}: record {o} missing"))?;
            let idx: IndexRec<I> = postcard::from_bytes(&idx)
                .map_err(|e| alloc::format!("partition {p}: index of {o}: {e}"))?;
            let data: DataRec = postcard::from_bytes(&data)
                .map_err(|e| alloc::format!("partition {p}: record {o}: {e}"))?;
            Ok(Entry {
                id: idx.id,
                epoch: idx.epoch,
                origin: idx.origin,
                req: idx.req,
                key: data.key,
                data: data.data,
                txn: idx.txn,
                producer: idx.producer,
            })
        };
        match read() {
            Ok(e) => Some(e),
            Err(reason) => {
                self.read_error.borrow_mut().get_or_insert(reason);
                None
            }
        }
    }

    /// Entries `start..end` (stops early at one not readable).
    pub(super) fn range(&self, start: u64, end: u64) -> Vec<Entry<I>> {
        let mut out = Vec::new();
        for o in start..end.min(self.len()) {
            match self.get(o) {
                Some(e) => out.push(e),
                None => break,
            }
        }
        out
    }

    /// Append an entry.
    pub(super) fn push(&mut self, e: Entry<I>) {
        let o = self.len();
        if self.runs.last().is_none_or(|(ep, _)| *ep != e.epoch) {
            self.runs.push((e.epoch, o));
        }
        let b = entry_bytes(&e);
        self.held += b as u64;
        self.metas.push_back(Meta {
            id: e.id,
            epoch: e.epoch,
            txn: e.txn.clone().map(alloc::boxed::Box::new),
            bytes: b as u32,
        });
        self.cached += b;
        self.cache.push_back(e);
    }

    /// Cut the log to `len` offsets. Cutting below the low watermark
    /// leaves an empty log at `len`.
    pub(super) fn truncate(&mut self, len: u64) {
        let old = self.len();
        if len >= old {
            return;
        }
        if len < self.low {
            self.metas.clear();
            self.cache.clear();
            self.cached = 0;
            self.held = 0;
            self.low = len;
        } else {
            let cs = self.cache_start();
            for _ in len..old {
                if let Some(m) = self.metas.pop_back() {
                    self.held -= u64::from(m.bytes);
                }
            }
            for _ in len.max(cs)..old {
                if let Some(e) = self.cache.pop_back() {
                    self.cached -= entry_bytes(&e);
                }
            }
        }
        while self.runs.last().is_some_and(|(_, s)| *s >= len) {
            self.runs.pop();
        }
        self.stored = self.stored.min(len);
    }

    /// Drop everything.
    pub(super) fn clear(&mut self) {
        self.truncate(0);
        self.low = 0;
        self.runs.clear();
        self.stored = 0;
    }

    /// Move the low watermark up to `low` (retention, or a jump over a
    /// prefix the source no longer holds; `runs` gives the epochs below).
    pub(super) fn set_low(&mut self, low: u64, runs_below: Option<Vec<(Epoch, u64)>>) {
        if low <= self.low {
            return;
        }
        if low >= self.len() {
            self.metas.clear();
            self.cache.clear();
            self.cached = 0;
            self.held = 0;
            if let Some(r) = runs_below {
                self.runs = r;
            }
            self.low = low;
            self.stored = self.stored.max(low);
            return;
        }
        while self.low < low {
            if let Some(m) = self.metas.pop_front() {
                self.held -= u64::from(m.bytes);
            }
            self.low += 1;
        }
        while !self.cache.is_empty() && self.cache_start() < self.low {
            if let Some(e) = self.cache.pop_front() {
                self.cached -= entry_bytes(&e);
            }
        }
        self.stored = self.stored.max(low);
    }

    /// Evict cached records below `stored` while over the byte budget.
    pub(super) fn evict(&mut self) {
        while self.cached > self.budget && self.cache_start() < self.stored {
            match self.cache.pop_front() {
                Some(e) => self.cached -= entry_bytes(&e),
                None => break,
            }
        }
    }

    /// The cached entries from `from` on (those not yet in the store).
    pub(super) fn cached_from(&self, from: u64) -> impl Iterator<Item = &Entry<I>> {
        let cs = self.cache_start();
        self.cache.iter().skip(from.saturating_sub(cs) as usize)
    }

    /// Byte size of each held offset's record, from `from`.
    pub(super) fn sizes_from(&self, from: u64) -> impl Iterator<Item = u64> + '_ {
        self.metas
            .iter()
            .skip(from.saturating_sub(self.low) as usize)
            .map(|m| u64::from(m.bytes))
    }

    /// Rebuild from the store's index for `low..len` (at recovery): each
    /// index entry is handed to `each` too (for the deduplication index).
    pub(super) fn load(
        &mut self,
        p: u32,
        low: u64,
        len: u64,
        runs: Vec<(Epoch, u64)>,
        mut each: impl FnMut(u64, &IndexRec<I>),
    ) -> Result<(), String> {
        self.metas.clear();
        self.cache.clear();
        self.cached = 0;
        self.held = 0;
        self.low = low;
        self.runs = runs;
        self.p = p;
        let Some(store) = self.store.clone() else {
            if low != len {
                return Err(alloc::format!(
                    "partition {p}: {} records on disk but no record store",
                    len - low
                ));
            }
            return Ok(());
        };
        let s = store.borrow();
        for o in low..len {
            let idx = s
                .read_index(p, o)?
                .ok_or_else(|| alloc::format!("partition {p}: index of {o} missing"))?;
            let idx: IndexRec<I> = postcard::from_bytes(&idx)
                .map_err(|e| alloc::format!("partition {p}: index of {o}: {e}"))?;
            each(o, &idx);
            self.held += u64::from(idx.bytes);
            self.metas.push_back(Meta {
                id: idx.id,
                epoch: idx.epoch,
                txn: idx.txn.map(alloc::boxed::Box::new),
                bytes: idx.bytes,
            });
        }
        self.stored = len;
        Ok(())
    }
}

/// [`IndexRec`] as written (same layout, borrowing).
#[derive(Serialize)]
struct IndexOut<'a, I> {
    id: u64,
    epoch: Epoch,
    origin: &'a I,
    req: u64,
    txn: &'a Option<TxnMark>,
    bytes: u32,
    producer: Option<Producer>,
}

/// [`DataRec`] as written.
#[derive(Serialize)]
struct DataOut<'a> {
    key: &'a [u8],
    data: &'a [u8],
}

impl<I: Clone + Serialize + for<'de> Deserialize<'de>> PartLog<I> {
    /// Bring the record store up to this log: drop what it holds from
    /// `stored` on, move its start up to `low`, and append `stored..len`
    /// from the cache (see the invariants in the module docs).
    pub(super) fn write_store(&mut self) -> Result<(), String> {
        let Some(store) = self.store.clone() else {
            self.stored = self.len();
            return Ok(());
        };
        let mut s = store.borrow_mut();
        let p = self.p;
        let (first, next) = s.bounds(p);
        if self.low > next || self.stored < first {
            s.reset_at(p, self.low)?;
            self.stored = self.low;
        } else {
            if next > self.stored {
                s.truncate_from(p, self.stored)?;
            } else if next < self.stored {
                return Err(alloc::format!(
                    "partition {p}: the record store ends at {next}, the log wrote up to {}",
                    self.stored
                ));
            }
            if self.low > first {
                s.trim_before(p, self.low)?;
            }
        }
        let cs = self.cache_start();
        if cs > self.stored {
            return Err(alloc::format!(
                "partition {p}: records {}..{cs} are neither stored nor cached",
                self.stored
            ));
        }
        for e in self.cache.iter().skip((self.stored - cs) as usize) {
            let index = crate::wire::to_sized_vec(&IndexOut {
                id: e.id,
                epoch: e.epoch,
                origin: &e.origin,
                req: e.req,
                txn: &e.txn,
                bytes: entry_bytes(e) as u32,
                producer: e.producer,
            })
            .map_err(|x| alloc::format!("cannot encode an index entry: {x}"))?;
            let data = crate::wire::to_sized_vec(&DataOut {
                key: &e.key,
                data: &e.data,
            })
            .map_err(|x| alloc::format!("cannot encode a record: {x}"))?;
            s.append(p, &index, &data)?;
        }
        self.stored = self.len();
        Ok(())
    }
}
