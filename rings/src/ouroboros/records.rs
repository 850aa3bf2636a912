//! Where a node's partition records live: the [`RecordStore`] trait the
//! ring reaches its disk through, and [`PartitionLogs`], a record store made
//! of two [`LogStore`]s per partition (an index and the record data).
//!
//! Each partition's replica is kept as two parallel logs at the same
//! offsets: the *index* (each record's Scarab ID, epoch, origin, request
//! number, transaction mark and size: small, read whole when a node starts)
//! and the *data* (the record itself, read on demand). The ring holds the
//! index in memory and a bounded cache of recent records (see
//! `ouroboros::plog`); everything else is read back from here.
//!
//! A record store is written only after the write-ahead log records the
//! same change (see `ouroboros::durable`), and synced only by checkpoints,
//! so its durability rests on the write-ahead log between checkpoints.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::logstore::LogStore;

/// A node's partition records as the ring uses them. Errors are text (the
/// ring only reports them).
pub trait RecordStore: core::fmt::Debug {
    /// Append one record to partition `p` at its next offset.
    fn append(&mut self, p: u32, index: &[u8], data: &[u8]) -> Result<(), String>;
    /// The index entry of the record of `p` at `offset`, if held.
    fn read_index(&self, p: u32, offset: u64) -> Result<Option<Vec<u8>>, String>;
    /// The data of the record of `p` at `offset`, if held.
    fn read_data(&self, p: u32, offset: u64) -> Result<Option<Vec<u8>>, String>;
    /// `(first, next)`: the offsets of `p` held are `first..next`.
    fn bounds(&self, p: u32) -> (u64, u64);
    /// Drop the records of `p` at or above `offset` (durably).
    fn truncate_from(&mut self, p: u32, offset: u64) -> Result<(), String>;
    /// Drop whole segments of `p` below `offset` (durably; retention).
    fn trim_before(&mut self, p: u32, offset: u64) -> Result<(), String>;
    /// Drop everything of `p` and continue at `offset` (durably).
    fn reset_at(&mut self, p: u32, offset: u64) -> Result<(), String>;
    /// The first offset of each segment of `p`, ascending.
    fn segment_starts(&self, p: u32) -> Vec<u64>;
    /// Make everything appended so far durable.
    fn sync(&mut self) -> Result<(), String>;
}

/// A [`RecordStore`] of two [`LogStore`]s per partition: `(index, data)`.
#[derive(Debug)]
pub struct PartitionLogs<L> {
    parts: Vec<(L, L)>,
}

impl<L: LogStore> PartitionLogs<L> {
    /// One `(index, data)` pair of logs per partition, in partition order.
    /// Partitions whose two logs disagree on their bounds (a crash between
    /// the two writes) are cut to what both hold.
    pub fn new(parts: Vec<(L, L)>) -> Result<Self, String> {
        let mut parts = parts;
        for (p, (index, data)) in parts.iter_mut().enumerate() {
            let next = index.next_offset().min(data.next_offset());
            let first = index.first_offset().max(data.first_offset());
            if first > next {
                index.reset_at(first).map_err(|e| e.to_string())?;
                data.reset_at(first).map_err(|e| e.to_string())?;
                continue;
            }
            index
                .truncate_from(next)
                .map_err(|e| alloc::format!("partition {p} index: {e}"))?;
            data.truncate_from(next)
                .map_err(|e| alloc::format!("partition {p} data: {e}"))?;
            if index.first_offset() < first {
                index.trim_before(first).map_err(|e| e.to_string())?;
            }
        }
        Ok(PartitionLogs { parts })
    }

    fn part(&self, p: u32) -> Result<&(L, L), String> {
        self.parts
            .get(p as usize)
            .ok_or_else(|| alloc::format!("no partition {p} in the record store"))
    }

    fn part_mut(&mut self, p: u32) -> Result<&mut (L, L), String> {
        self.parts
            .get_mut(p as usize)
            .ok_or_else(|| alloc::format!("no partition {p} in the record store"))
    }
}

fn text<E: core::fmt::Display>(e: E) -> String {
    e.to_string()
}

impl<L: LogStore + core::fmt::Debug> RecordStore for PartitionLogs<L> {
    fn append(&mut self, p: u32, index: &[u8], data: &[u8]) -> Result<(), String> {
        let (i, d) = self.part_mut(p)?;
        d.append(data).map_err(text)?;
        i.append(index).map_err(text)?;
        Ok(())
    }

    fn read_index(&self, p: u32, offset: u64) -> Result<Option<Vec<u8>>, String> {
        self.part(p)?.0.read(offset).map_err(text)
    }

    fn read_data(&self, p: u32, offset: u64) -> Result<Option<Vec<u8>>, String> {
        self.part(p)?.1.read(offset).map_err(text)
    }

    fn bounds(&self, p: u32) -> (u64, u64) {
        match self.part(p) {
            Ok((i, d)) => (
                i.first_offset().max(d.first_offset()),
                i.next_offset().min(d.next_offset()),
            ),
            Err(_) => (0, 0),
        }
    }

    fn truncate_from(&mut self, p: u32, offset: u64) -> Result<(), String> {
        let (i, d) = self.part_mut(p)?;
        i.truncate_from(offset).map_err(text)?;
        d.truncate_from(offset).map_err(text)
    }

    /// The data log decides where segments end; the index follows it.
    fn trim_before(&mut self, p: u32, offset: u64) -> Result<(), String> {
        let (i, d) = self.part_mut(p)?;
        d.trim_before(offset).map_err(text)?;
        i.trim_before(d.first_offset()).map_err(text)
    }

    fn reset_at(&mut self, p: u32, offset: u64) -> Result<(), String> {
        let (i, d) = self.part_mut(p)?;
        i.reset_at(offset).map_err(text)?;
        d.reset_at(offset).map_err(text)
    }

    fn segment_starts(&self, p: u32) -> Vec<u64> {
        self.part(p)
            .map(|(_, d)| d.segment_starts())
            .unwrap_or_default()
    }

    fn sync(&mut self) -> Result<(), String> {
        for (i, d) in &mut self.parts {
            d.sync().map_err(text)?;
            i.sync().map_err(text)?;
        }
        Ok(())
    }
}

/// A boxed record store (what the ring holds).
pub type BoxedRecords = Box<dyn RecordStore>;
