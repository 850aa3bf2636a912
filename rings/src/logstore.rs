//! Log storage: the durable, append-only record log behind each log
//! partition, as a trait ([`LogStore`]) with an in-memory implementation
//! ([`MemoryLog`]) that models what a crash keeps.
//!
//! A log is a sequence of opaque records (byte strings of at most
//! [`MAX_RECORD_LEN`] bytes). Each record has an *offset*: its position in
//! the log, dense from 0 (the first record is at 0, the next at 1, …).
//!
//! # The durability contract
//!
//! Every [`LogStore`] keeps these promises:
//!
//! 1. [`append`](LogStore::append) assigns the offset
//!    [`next_offset`](LogStore::next_offset) and makes the record readable at
//!    once; it is **not** durable yet.
//! 2. [`sync`](LogStore::sync) returns `Ok` only once every record appended
//!    so far is durable; afterwards [`durable_offset`](LogStore::durable_offset)
//!    equals [`next_offset`](LogStore::next_offset).
//! 3. After a crash (process kill or power loss) and a reopen, the log is a
//!    **prefix** of the log as it was before the crash, at least
//!    `durable_offset` records long. So every record below the
//!    `durable_offset` of the last moment before the crash survives, with
//!    its offset and content; records at or above it may or may not survive,
//!    but only as a whole prefix of them: never a torn record, never a gap,
//!    never a reordering, never a record that was not appended.
//! 4. [`truncate_from(o)`](LogStore::truncate_from) returns `Ok` only once
//!    the truncation itself is durable: no record at or above `o` from
//!    before the call reappears after a crash. Records below `o` keep their
//!    durability (an implementation may make them durable as a side effect,
//!    and reports it through `durable_offset`).
//!
//! 5. [`trim_before(o)`](LogStore::trim_before) (retention) discards only
//!    whole segments wholly below `o`, durably: afterwards
//!    [`first_offset`](LogStore::first_offset) is at most `o`, reads below
//!    it return `None`, and offsets never shift. After a crash the first
//!    offset is either the old one or the new one.
//! 6. [`reset_at(o)`](LogStore::reset_at) durably discards everything and
//!    makes `o` both the first and the next offset (a replica that jumps
//!    over a prefix its source no longer holds).
//!
//! A call that returns `Err` may or may not have taken effect; the caller
//! should treat the store as suspect (a file store refuses further writes
//! after an I/O error until it is reopened).
//!
//! # Implementations
//!
//! [`MemoryLog`] here (the browser and the simulator; it can drop the
//! un-synced records on a simulated crash); a directory of segment files in
//! `shen-storage`'s `SegmentLog`.
//!
//! # Example
//!
//! ```
//! use shen_rings::logstore::{LogStore, MemoryLog};
//!
//! let mut log = MemoryLog::new();
//! assert_eq!(log.append(b"a").unwrap(), 0);
//! assert_eq!(log.append(b"b").unwrap(), 1);
//! log.sync().unwrap();
//! assert_eq!(log.append(b"c").unwrap(), 2); // not synced
//!
//! log.crash(false); // power loss: the un-synced record is gone
//! assert_eq!(log.next_offset(), 2);
//! assert_eq!(log.read(1).unwrap().as_deref(), Some(&b"b"[..]));
//! assert_eq!(log.read(2).unwrap(), None);
//! ```

use alloc::sync::Arc;
use alloc::vec::Vec;

/// The largest record a [`LogStore`] accepts, in bytes (1 MiB, the same as
/// the wire frame limit).
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// A record longer than [`MAX_RECORD_LEN`] was given to
/// [`LogStore::append`]; nothing was appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("record of {len} bytes exceeds the {max}-byte limit")]
pub struct RecordTooLarge {
    /// The record's length in bytes.
    pub len: usize,
    /// The limit, [`MAX_RECORD_LEN`].
    pub max: usize,
}

/// `Ok` if a record of `len` bytes may be appended, else [`RecordTooLarge`].
pub fn check_record_len(len: usize) -> Result<(), RecordTooLarge> {
    if len > MAX_RECORD_LEN {
        Err(RecordTooLarge {
            len,
            max: MAX_RECORD_LEN,
        })
    } else {
        Ok(())
    }
}

/// A durable, append-only log of records at dense offsets from 0 (see the
/// [module docs](self) for the durability contract every implementation
/// keeps).
pub trait LogStore {
    /// Why an operation failed.
    type Error: core::error::Error + 'static;

    /// Append `record` at offset [`next_offset`](LogStore::next_offset) and
    /// return that offset. The record is readable at once and durable only
    /// after the next successful [`sync`](LogStore::sync). Records longer
    /// than [`MAX_RECORD_LEN`] are refused and nothing is appended.
    fn append(&mut self, record: &[u8]) -> Result<u64, Self::Error>;

    /// Return only once every record appended so far is durable (then
    /// [`durable_offset`](LogStore::durable_offset) equals
    /// [`next_offset`](LogStore::next_offset)).
    fn sync(&mut self) -> Result<(), Self::Error>;

    /// The record at `offset`, or `None` if `offset` is at or past
    /// [`next_offset`](LogStore::next_offset). Must return an error, never
    /// `None` or wrong bytes, if the record exists but cannot be read back
    /// intact.
    fn read(&self, offset: u64) -> Result<Option<Vec<u8>>, Self::Error>;

    /// The offset the next [`append`](LogStore::append) will get (the number
    /// of records in the log).
    fn next_offset(&self) -> u64;

    /// Records below this offset survive a crash. Never above
    /// [`next_offset`](LogStore::next_offset).
    fn durable_offset(&self) -> u64;

    /// Discard every record at or above `offset`, returning only once that is
    /// durable (no discarded record reappears after a crash). Afterwards
    /// [`next_offset`](LogStore::next_offset) is `offset` and later appends
    /// reuse the discarded offsets. An `offset` at or past `next_offset`
    /// changes nothing. Chain replication uses this to drop an uncommitted
    /// suffix.
    fn truncate_from(&mut self, offset: u64) -> Result<(), Self::Error>;

    /// The first offset still held: records below it were trimmed by
    /// [`trim_before`](LogStore::trim_before) or skipped by
    /// [`reset_at`](LogStore::reset_at). 0 for a log never trimmed.
    fn first_offset(&self) -> u64 {
        0
    }

    /// Discard the whole segments that end at or below `offset`, returning
    /// once that is durable. A log without segments may keep everything.
    fn trim_before(&mut self, offset: u64) -> Result<(), Self::Error> {
        let _ = offset;
        Ok(())
    }

    /// Discard every record and continue at `offset` (then both
    /// [`first_offset`](LogStore::first_offset) and
    /// [`next_offset`](LogStore::next_offset)), returning once durable. The
    /// default supports only `offset` 0.
    fn reset_at(&mut self, offset: u64) -> Result<(), Self::Error> {
        debug_assert_eq!(offset, 0, "this store cannot start above 0");
        self.truncate_from(0)
    }

    /// The first offset of each segment held, ascending (what
    /// [`trim_before`](LogStore::trim_before) can cut at).
    fn segment_starts(&self) -> Vec<u64> {
        alloc::vec![self.first_offset()]
    }
}

impl<L: LogStore + ?Sized> LogStore for &mut L {
    type Error = L::Error;

    fn append(&mut self, record: &[u8]) -> Result<u64, Self::Error> {
        (**self).append(record)
    }

    fn sync(&mut self) -> Result<(), Self::Error> {
        (**self).sync()
    }

    fn read(&self, offset: u64) -> Result<Option<Vec<u8>>, Self::Error> {
        (**self).read(offset)
    }

    fn next_offset(&self) -> u64 {
        (**self).next_offset()
    }

    fn durable_offset(&self) -> u64 {
        (**self).durable_offset()
    }

    fn truncate_from(&mut self, offset: u64) -> Result<(), Self::Error> {
        (**self).truncate_from(offset)
    }

    fn first_offset(&self) -> u64 {
        (**self).first_offset()
    }

    fn trim_before(&mut self, offset: u64) -> Result<(), Self::Error> {
        (**self).trim_before(offset)
    }

    fn reset_at(&mut self, offset: u64) -> Result<(), Self::Error> {
        (**self).reset_at(offset)
    }

    fn segment_starts(&self) -> Vec<u64> {
        (**self).segment_starts()
    }
}

/// Records per segment of the in-memory stores ([`MemoryLog`] and the
/// simulator's): segments are the aligned offset ranges
/// `[k * MEMORY_SEGMENT_RECORDS, (k + 1) * MEMORY_SEGMENT_RECORDS)`.
pub const MEMORY_SEGMENT_RECORDS: u64 = 16;

/// The segment starts of an in-memory store holding `[first, next)`.
pub fn aligned_segment_starts(first: u64, next: u64) -> Vec<u64> {
    let mut out = alloc::vec![first];
    let mut s = (first / MEMORY_SEGMENT_RECORDS + 1) * MEMORY_SEGMENT_RECORDS;
    while s < next {
        out.push(s);
        s += MEMORY_SEGMENT_RECORDS;
    }
    out
}

/// Where an in-memory store holding `[first, next)` trims for
/// `trim_before(offset)`: the last segment start at or below `offset` and
/// `next` (the segment being written is never dropped whole).
pub fn aligned_trim_point(first: u64, next: u64, offset: u64) -> u64 {
    let cut = offset.min(next);
    if cut <= first {
        return first;
    }
    (cut / MEMORY_SEGMENT_RECORDS * MEMORY_SEGMENT_RECORDS).max(first)
}

/// Errors of a [`MemoryLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MemoryLogError {
    /// The record is longer than [`MAX_RECORD_LEN`].
    #[error(transparent)]
    RecordTooLarge(#[from] RecordTooLarge),
    /// [`MemoryLog::set_fail_syncs`] is on; nothing was made durable.
    #[error("injected sync failure")]
    InjectedSyncFailure,
}

/// An in-memory [`LogStore`] for the browser, the simulator and tests, which
/// models durability: it knows which records were synced, and
/// [`crash`](MemoryLog::crash) drops the ones that were not, as a power loss
/// would.
///
/// `Clone` is a snapshot (records are shared and immutable, so it is cheap);
/// clones evolve independently.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryLog {
    /// The offset of `records[0]`.
    first: u64,
    records: Vec<Arc<[u8]>>,
    durable: u64,
    fail_syncs: bool,
    syncs: u64,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> MemoryLog {
        MemoryLog::default()
    }

    /// Simulate a crash and restart. With `keep_unsynced` the un-synced
    /// records survive (the process died but the machine did not, so the
    /// page cache still reached the disk); without it they are lost (power
    /// loss). Either way everything left is durable afterwards.
    pub fn crash(&mut self, keep_unsynced: bool) {
        if keep_unsynced {
            self.crash_keeping(u64::MAX);
        } else {
            self.crash_keeping(0);
        }
    }

    /// Simulate a crash that keeps only the first `keep` un-synced records
    /// (clamped to how many there are) — the general case the durability
    /// contract allows: a prefix of the log at least
    /// [`durable_offset`](LogStore::durable_offset) long. A simulator can
    /// draw `keep` from its RNG.
    pub fn crash_keeping(&mut self, keep: u64) {
        let len = self.next_offset();
        let kept = self.durable.saturating_add(keep).min(len);
        self.records.truncate(to_index(kept - self.first));
        self.durable = kept;
    }

    /// How many records are not yet durable.
    pub fn unsynced(&self) -> u64 {
        self.next_offset() - self.durable
    }

    /// How many syncs succeeded so far (including ones with nothing to do).
    pub fn sync_count(&self) -> u64 {
        self.syncs
    }

    /// Make every following [`sync`](LogStore::sync) fail without making
    /// anything durable (`true`), or succeed again (`false`).
    pub fn set_fail_syncs(&mut self, fail: bool) {
        self.fail_syncs = fail;
    }
}

/// Offsets index a `Vec`; a log never holds more than `usize::MAX` records.
fn to_index(offset: u64) -> usize {
    usize::try_from(offset).unwrap_or(usize::MAX)
}

impl LogStore for MemoryLog {
    type Error = MemoryLogError;

    fn append(&mut self, record: &[u8]) -> Result<u64, MemoryLogError> {
        check_record_len(record.len())?;
        let offset = self.next_offset();
        self.records.push(Arc::from(record));
        Ok(offset)
    }

    fn sync(&mut self) -> Result<(), MemoryLogError> {
        if self.fail_syncs {
            return Err(MemoryLogError::InjectedSyncFailure);
        }
        self.durable = self.next_offset();
        self.syncs += 1;
        Ok(())
    }

    fn read(&self, offset: u64) -> Result<Option<Vec<u8>>, MemoryLogError> {
        if offset < self.first {
            return Ok(None);
        }
        Ok(usize::try_from(offset - self.first)
            .ok()
            .and_then(|i| self.records.get(i))
            .map(|r| r.to_vec()))
    }

    fn next_offset(&self) -> u64 {
        self.first + self.records.len() as u64
    }

    fn durable_offset(&self) -> u64 {
        self.durable
    }

    /// Drops the suffix at once; records below `offset` keep their
    /// durability (the weakest behaviour the contract allows).
    fn truncate_from(&mut self, offset: u64) -> Result<(), MemoryLogError> {
        if offset < self.next_offset() {
            let offset = offset.max(self.first);
            self.records.truncate(to_index(offset - self.first));
            self.durable = self.durable.min(offset);
        }
        Ok(())
    }

    fn first_offset(&self) -> u64 {
        self.first
    }

    /// Drops whole aligned segments of [`MEMORY_SEGMENT_RECORDS`]; durable
    /// at once (trims are metadata, as a directory sync makes them).
    fn trim_before(&mut self, offset: u64) -> Result<(), MemoryLogError> {
        let cut = aligned_trim_point(self.first, self.next_offset(), offset);
        if cut > self.first {
            self.records.drain(..to_index(cut - self.first));
            self.first = cut;
            self.durable = self.durable.max(cut);
        }
        Ok(())
    }

    fn reset_at(&mut self, offset: u64) -> Result<(), MemoryLogError> {
        self.records.clear();
        self.first = offset;
        self.durable = offset;
        Ok(())
    }

    fn segment_starts(&self) -> Vec<u64> {
        aligned_segment_starts(self.first, self.next_offset())
    }
}

#[cfg(test)]
mod tests;
