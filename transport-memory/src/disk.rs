//! Simulated per-node disks whose contents survive a crash according to the
//! restart mode: everything, only what was fsynced, or nothing.
//!
//! Each node's disk has a synced and an unsynced layer. [`SimCell`] is a
//! `DurableCell` on it and [`SimWal`] a `LogStore` (one key per record) that
//! simulated nodes keep Ouroboros' write-ahead log in. The world flushes a
//! node `set_fsync_delay` (default 0) after it first needs it; a crash before
//! then loses the held messages with the un-synced writes.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use shen_rings::logstore::{
    aligned_segment_starts, aligned_trim_point, check_record_len, LogStore, RecordTooLarge,
};
use shen_rings::obelisk::DurableCell;

/// What survives when a crashed node restarts.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestartMode {
    /// The process died but the machine did not: every write survives,
    /// fsynced or not (un-fsynced writes stay pending).
    #[default]
    Keep,
    /// Power loss: writes not yet fsynced are lost.
    LoseUnsynced,
    /// The disk is gone: the node restarts empty.
    LoseDisk,
}

/// The contents of a [`SimDisk`]: a durable layer and an ordered log of
/// writes not yet fsynced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskContents {
    synced: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Pending writes, oldest first (`None` removes the key).
    pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

#[derive(Debug, Default)]
struct DiskInner {
    contents: DiskContents,
    writes: u64,
    fsyncs: u64,
    fault: Option<DiskFault>,
}

/// A storage fault injected into a node's disk: from then on every write
/// and sync of its [`SimWal`] fails, as a real disk that filled up or broke
/// would make them fail, until the fault is cleared.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiskFault {
    /// No space left (ENOSPC).
    Full,
    /// The device fails reads and writes (EIO, or a failed fsync).
    Io,
}

impl core::fmt::Display for DiskFault {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DiskFault::Full => "no space left on device (simulated ENOSPC)",
            DiskFault::Io => "input/output error (simulated EIO)",
        })
    }
}

/// Why a [`SimWal`] operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SimWalError {
    /// The record is longer than a log record may be.
    TooLarge(RecordTooLarge),
    /// The disk has a fault (see [`SimDisk::set_fault`]).
    Disk(DiskFault),
}

impl core::fmt::Display for SimWalError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SimWalError::TooLarge(e) => e.fmt(f),
            SimWalError::Disk(d) => d.fmt(f),
        }
    }
}

impl core::error::Error for SimWalError {}

impl From<RecordTooLarge> for SimWalError {
    fn from(e: RecordTooLarge) -> SimWalError {
        SimWalError::TooLarge(e)
    }
}

/// One node's simulated disk: a key → bytes store with a synced layer and an
/// un-synced layer.
///
/// Handles are cheap clones sharing one disk (the node factory may keep one
/// inside a ring, for example as a [`SimCell`]). The simulator owns the
/// handle of each node and applies the [`RestartMode`] to it when the node
/// restarts.
#[derive(Clone, Debug, Default)]
pub struct SimDisk {
    inner: Rc<RefCell<DiskInner>>,
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> SimDisk {
        SimDisk::default()
    }

    /// Write `value` under `key` (visible to reads at once, durable only
    /// after [`SimDisk::fsync`]).
    pub fn write(&self, key: impl AsRef<[u8]>, value: impl Into<Vec<u8>>) {
        let mut d = self.inner.borrow_mut();
        d.writes += 1;
        d.contents
            .pending
            .push((key.as_ref().to_vec(), Some(value.into())));
    }

    /// Remove `key` (durable only after [`SimDisk::fsync`]).
    pub fn remove(&self, key: impl AsRef<[u8]>) {
        let mut d = self.inner.borrow_mut();
        d.writes += 1;
        d.contents.pending.push((key.as_ref().to_vec(), None));
    }

    /// Inject a storage fault (or clear it with `None`). The fault stays
    /// across restarts until cleared, as a full disk stays full.
    pub fn set_fault(&self, fault: Option<DiskFault>) {
        self.inner.borrow_mut().fault = fault;
    }

    /// The storage fault in force, if any.
    pub fn fault(&self) -> Option<DiskFault> {
        self.inner.borrow().fault
    }

    /// Make every pending write durable.
    pub fn fsync(&self) {
        let mut d = self.inner.borrow_mut();
        d.fsyncs += 1;
        let DiskContents { synced, pending } = &mut d.contents;
        for (k, v) in pending.drain(..) {
            match v {
                Some(v) => {
                    synced.insert(k, v);
                }
                None => {
                    synced.remove(&k);
                }
            }
        }
    }

    /// The current value of `key`, including un-synced writes.
    pub fn read(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        let key = key.as_ref();
        let d = self.inner.borrow();
        if let Some((_, v)) = d.contents.pending.iter().rev().find(|(k, _)| k == key) {
            return v.clone();
        }
        d.contents.synced.get(key).cloned()
    }

    /// The value of `key` that would survive a power loss now.
    pub fn read_synced(&self, key: impl AsRef<[u8]>) -> Option<Vec<u8>> {
        self.inner
            .borrow()
            .contents
            .synced
            .get(key.as_ref())
            .cloned()
    }

    /// Every key currently visible, sorted.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        let d = self.inner.borrow();
        let mut view: BTreeMap<&[u8], bool> = d
            .contents
            .synced
            .keys()
            .map(|k| (k.as_slice(), true))
            .collect();
        for (k, v) in &d.contents.pending {
            view.insert(k.as_slice(), v.is_some());
        }
        view.into_iter()
            .filter(|(_, present)| *present)
            .map(|(k, _)| k.to_vec())
            .collect()
    }

    /// Number of writes not yet fsynced.
    pub fn pending_writes(&self) -> usize {
        self.inner.borrow().contents.pending.len()
    }

    /// Writes and fsyncs issued so far (`(writes, fsyncs)`).
    pub fn stats(&self) -> (u64, u64) {
        let d = self.inner.borrow();
        (d.writes, d.fsyncs)
    }

    /// A copy of the contents (for world snapshots).
    pub fn contents(&self) -> DiskContents {
        self.inner.borrow().contents.clone()
    }

    /// Replace the contents (restoring a snapshot).
    pub fn set_contents(&self, contents: DiskContents) {
        self.inner.borrow_mut().contents = contents;
    }

    /// Apply what a crash followed by a restart in `mode` does to the disk.
    pub fn apply_restart(&self, mode: RestartMode) {
        let mut d = self.inner.borrow_mut();
        match mode {
            RestartMode::Keep => {}
            RestartMode::LoseUnsynced => d.contents.pending.clear(),
            RestartMode::LoseDisk => d.contents = DiskContents::default(),
        }
    }

    /// A [`DurableCell`] stored under `key` on this disk.
    pub fn cell(&self, key: impl AsRef<[u8]>) -> SimCell {
        SimCell {
            disk: self.clone(),
            key: key.as_ref().to_vec(),
        }
    }

    /// True when both handles refer to the same disk.
    pub fn same_disk(&self, other: &SimDisk) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

/// Why a [`SimCell`] could not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimCellError {
    /// The stored bytes are not an 8-byte little-endian `u64`.
    #[error("cell holds {len} bytes, expected 8")]
    Corrupt {
        /// The stored length.
        len: usize,
    },
}

/// A [`DurableCell`] kept under one key of a [`SimDisk`]:
/// `store_durable` writes and fsyncs; `load` reads the current value.
#[derive(Clone, Debug)]
pub struct SimCell {
    disk: SimDisk,
    key: Vec<u8>,
}

impl DurableCell for SimCell {
    type Error = SimCellError;

    fn load(&mut self) -> Result<Option<u64>, SimCellError> {
        match self.disk.read(&self.key) {
            None => Ok(None),
            Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                Ok(b) => Ok(Some(u64::from_le_bytes(b))),
                Err(_) => Err(SimCellError::Corrupt { len: bytes.len() }),
            },
        }
    }

    fn store_durable(&mut self, value: u64) -> Result<(), SimCellError> {
        self.disk.write(&self.key, value.to_le_bytes().to_vec());
        self.disk.fsync();
        Ok(())
    }
}

/// One record kept under a key of a [`SimDisk`], replaced as a whole and
/// synced at every store: Cartouche's acceptor state
/// ([`shen_rings::cartouche::AcceptorStore`]).
#[derive(Clone, Debug)]
pub struct SimRecord {
    disk: SimDisk,
    key: Vec<u8>,
}

impl SimRecord {
    /// The record under `key` of `disk`.
    pub fn new(disk: &SimDisk, key: &str) -> SimRecord {
        SimRecord {
            disk: disk.clone(),
            key: key.as_bytes().to_vec(),
        }
    }
}

impl shen_rings::cartouche::AcceptorStore for SimRecord {
    fn load(&mut self) -> Result<Option<Vec<u8>>, String> {
        Ok(self.disk.read(&self.key))
    }
    fn store(&mut self, record: &[u8]) -> Result<(), String> {
        if let Some(f) = self.disk.fault() {
            return Err(f.to_string());
        }
        self.disk.write(&self.key, record.to_vec());
        self.disk.fsync();
        Ok(())
    }
}

/// An append-only record log ([`LogStore`]) kept on a [`SimDisk`], one key
/// per record (`prefix` + the offset, big-endian): what a simulated node
/// writes its Ouroboros write-ahead log to. What survives a crash is what
/// the disk's [`RestartMode`] keeps, so power loss drops un-synced records
/// (always a suffix: records are written in order and one fsync makes all
/// of them durable).
#[derive(Clone, Debug)]
pub struct SimWal {
    disk: SimDisk,
    prefix: Vec<u8>,
    /// The first offset held (raised by `trim_before`, set by `reset_at`;
    /// kept on the disk under `prefix` + `first`).
    first: u64,
    len: u64,
    durable: u64,
}

impl SimWal {
    /// Open the log stored under `prefix` on `disk` (its records are the
    /// contiguous offsets present from its first offset, 0 unless trimmed).
    pub fn open(disk: &SimDisk, prefix: &str) -> SimWal {
        let mut wal = SimWal {
            disk: disk.clone(),
            prefix: prefix.as_bytes().to_vec(),
            first: 0,
            len: 0,
            durable: 0,
        };
        wal.first = disk
            .read(wal.first_key())
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
        wal.len = wal.first;
        while disk.read(wal.key(wal.len)).is_some() {
            wal.len += 1;
        }
        wal.durable = wal.len;
        wal
    }

    fn key(&self, offset: u64) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(&offset.to_be_bytes());
        k
    }

    fn first_key(&self) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(b"first");
        k
    }

    /// Record the first offset and drop the records below it, durably (one
    /// fsync: after a crash the log starts at the old or the new first).
    fn move_first(&mut self, first: u64) {
        self.disk
            .write(self.first_key(), first.to_le_bytes().to_vec());
        for o in self.first..first.min(self.len) {
            self.disk.remove(self.key(o));
        }
        self.disk.fsync();
        self.first = first;
    }
}

impl SimWal {
    fn healthy(&self) -> Result<(), SimWalError> {
        match self.disk.fault() {
            Some(f) => Err(SimWalError::Disk(f)),
            None => Ok(()),
        }
    }
}

impl LogStore for SimWal {
    type Error = SimWalError;

    fn append(&mut self, record: &[u8]) -> Result<u64, SimWalError> {
        check_record_len(record.len())?;
        self.healthy()?;
        let o = self.len;
        self.disk.write(self.key(o), record.to_vec());
        self.len += 1;
        Ok(o)
    }

    fn sync(&mut self) -> Result<(), SimWalError> {
        self.healthy()?;
        self.disk.fsync();
        self.durable = self.len;
        Ok(())
    }

    fn read(&self, offset: u64) -> Result<Option<Vec<u8>>, SimWalError> {
        if offset >= self.len || offset < self.first {
            return Ok(None);
        }
        Ok(self.disk.read(self.key(offset)))
    }

    fn next_offset(&self) -> u64 {
        self.len
    }

    fn durable_offset(&self) -> u64 {
        self.durable
    }

    fn truncate_from(&mut self, offset: u64) -> Result<(), SimWalError> {
        self.healthy()?;
        let offset = offset.max(self.first);
        while self.len > offset {
            self.len -= 1;
            self.disk.remove(self.key(self.len));
        }
        self.disk.fsync();
        self.durable = self.durable.min(self.len);
        Ok(())
    }

    fn first_offset(&self) -> u64 {
        self.first
    }

    /// Drops whole aligned segments, as `MemoryLog` does.
    fn trim_before(&mut self, offset: u64) -> Result<(), SimWalError> {
        self.healthy()?;
        let cut = aligned_trim_point(self.first, self.len, offset);
        if cut > self.first {
            self.move_first(cut);
            self.durable = self.durable.max(cut);
        }
        Ok(())
    }

    fn reset_at(&mut self, offset: u64) -> Result<(), SimWalError> {
        self.healthy()?;
        for o in self.first..self.len {
            self.disk.remove(self.key(o));
        }
        self.len = self.first;
        self.move_first(offset);
        self.len = offset;
        self.durable = offset;
        Ok(())
    }

    fn segment_starts(&self) -> Vec<u64> {
        aligned_segment_starts(self.first, self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_modes_keep_what_they_promise() {
        let d = SimDisk::new();
        d.write("a", b"1".to_vec());
        d.fsync();
        d.write("b", b"2".to_vec());
        d.remove("a");
        assert_eq!(d.read("a"), None);
        assert_eq!(d.read_synced("a"), Some(b"1".to_vec()));
        assert_eq!(d.keys(), vec![b"b".to_vec()]);

        let keep = SimDisk::new();
        keep.set_contents(d.contents());
        keep.apply_restart(RestartMode::Keep);
        assert_eq!(keep.read("b"), Some(b"2".to_vec()));
        assert_eq!(keep.read("a"), None);

        let power = SimDisk::new();
        power.set_contents(d.contents());
        power.apply_restart(RestartMode::LoseUnsynced);
        assert_eq!(power.read("a"), Some(b"1".to_vec()));
        assert_eq!(power.read("b"), None);

        d.apply_restart(RestartMode::LoseDisk);
        assert!(d.keys().is_empty());
    }

    #[test]
    fn sim_wal_keeps_the_synced_prefix() {
        let d = SimDisk::new();
        let mut w = SimWal::open(&d, "wal/");
        w.append(b"a").unwrap();
        w.append(b"b").unwrap();
        w.sync().unwrap();
        w.append(b"c").unwrap();
        assert_eq!(w.read(2).unwrap(), Some(b"c".to_vec()));
        assert_eq!(SimWal::open(&d, "wal/").next_offset(), 3);
        d.apply_restart(RestartMode::LoseUnsynced);
        let w = SimWal::open(&d, "wal/");
        assert_eq!(w.next_offset(), 2);
        assert_eq!(w.read(1).unwrap(), Some(b"b".to_vec()));
        assert_eq!(w.read(2).unwrap(), None);
        assert_eq!(SimWal::open(&d, "other/").next_offset(), 0);
    }

    #[test]
    fn sim_wal_trims_whole_segments_and_resets_durably() {
        let d = SimDisk::new();
        let mut w = SimWal::open(&d, "p/");
        for i in 0..40u8 {
            w.append(&[i]).unwrap();
        }
        w.sync().unwrap();
        assert_eq!(w.segment_starts(), vec![0, 16, 32]);
        w.trim_before(20).unwrap();
        assert_eq!(w.first_offset(), 16);
        assert_eq!(w.read(15).unwrap(), None);
        assert_eq!(w.read(16).unwrap(), Some(vec![16]));
        d.apply_restart(RestartMode::LoseUnsynced);
        let mut w = SimWal::open(&d, "p/");
        assert_eq!((w.first_offset(), w.next_offset()), (16, 40));
        w.truncate_from(3).unwrap();
        assert_eq!(w.next_offset(), 16);
        w.reset_at(100).unwrap();
        assert_eq!(w.append(b"x").unwrap(), 100);
        w.sync().unwrap();
        d.apply_restart(RestartMode::LoseUnsynced);
        let w = SimWal::open(&d, "p/");
        assert_eq!((w.first_offset(), w.next_offset()), (100, 101));
        assert_eq!(w.read(100).unwrap(), Some(b"x".to_vec()));
        assert!(d.keys().len() <= 2, "{:?}", d.keys());
    }

    #[test]
    fn sim_cell_is_a_durable_cell() {
        let d = SimDisk::new();
        let mut c = d.cell("hw");
        assert_eq!(c.load(), Ok(None));
        c.store_durable(42).unwrap();
        d.apply_restart(RestartMode::LoseUnsynced);
        assert_eq!(d.cell("hw").load(), Ok(Some(42)));
        d.write("hw", b"xyz".to_vec());
        assert_eq!(c.load(), Err(SimCellError::Corrupt { len: 3 }));
    }
}
