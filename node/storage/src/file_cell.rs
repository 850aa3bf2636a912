//! File-backed durable storage for the sans-IO rings.
//!
//! [`FileCell`] implements [`DurableCell`] — the one crash-safe `u64` an
//! [`Obelisk`](shen_rings::obelisk::Obelisk) keeps its high-water mark in —
//! over a small file in a data directory.
//!
//! # On-disk format
//!
//! The file holds two fixed slots, A at offset 0 and B at offset
//! [`SLOT_B_OFFSET`] (4096, so the two never share a disk sector or page).
//! Each slot is [`SLOT_LEN`] bytes, all integers little-endian:
//!
//! | offset | size | field                                               |
//! |--------|------|-----------------------------------------------------|
//! | 0      | 8    | magic `SHENOBL1` (format and version)               |
//! | 8      | 8    | sequence number of the write (1, 2, 3, …)           |
//! | 16     | 8    | the stored value                                    |
//! | 24     | 8    | XXH3-64 of bytes 0..24                              |
//!
//! # Crash safety
//!
//! * A store writes the *other* slot than the newest valid one, with the next
//!   sequence number, using a positioned write and then `fdatasync`
//!   ([`File::sync_data`]); it returns only after the sync. The newest valid
//!   slot is never touched, so a write torn by a crash or power loss at worst
//!   leaves one slot with a bad checksum — and the other slot still holds the
//!   previous durable value.
//! * A load reads both slots and returns the valid one with the highest
//!   sequence number.
//! * The file is created atomically on the first store: written in full to a
//!   temporary file, synced, renamed into place, and the directory synced.
//!   So an existing file always had a valid slot once, and a file in which
//!   **both slots are invalid is corruption**: [`FileCellError::Corrupt`] is
//!   returned instead of restarting the counter from zero.
//! * After any I/O error during a store the cell is *poisoned*: every later
//!   call fails with [`FileCellError::Poisoned`]. After a failed `fsync`,
//!   Linux may drop the dirty pages and report a later `fsync` as
//!   successful, so retrying in-process is not trusted; reopen the cell (in
//!   practice, restart the process) to read back what is really on disk.
//!
//! Only one `FileCell` (one process) may use a file at a time; nothing here
//! locks it.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use shen_rings::obelisk::DurableCell;
use xxhash_rust::xxh3::xxh3_64;

use crate::fsutil::write_at;

/// File name used by [`FileCell::open`] inside the data directory.
pub const DEFAULT_FILE_NAME: &str = "obelisk.cell";

/// Size of one slot in bytes.
pub const SLOT_LEN: usize = 32;

/// Byte offset of slot B (slot A is at 0).
pub const SLOT_B_OFFSET: u64 = 4096;

/// Total size of a cell file.
const FILE_LEN: usize = SLOT_B_OFFSET as usize + SLOT_LEN;

/// Format marker at the start of every valid slot.
const MAGIC: &[u8; 8] = b"SHENOBL1";

/// Suffix of the temporary file used while creating the cell file.
const TMP_SUFFIX: &str = ".tmp";

/// Errors of a [`FileCell`].
#[derive(Debug, thiserror::Error)]
pub enum FileCellError {
    /// An I/O operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (e.g. "sync", "write slot").
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The file exists but neither slot holds a valid record. The counter's
    /// high-water mark is lost; starting again from zero could repeat values,
    /// so this needs an operator (restore from backup, or deliberately
    /// initialise above every value ever handed out).
    #[error("{}: both slots are corrupt; refusing to restart the counter", path.display())]
    Corrupt {
        /// The cell file.
        path: PathBuf,
    },
    /// An earlier store failed with an I/O error; this handle refuses further
    /// use. Reopen the cell to recover.
    #[error("{}: an earlier store failed; reopen the cell", path.display())]
    Poisoned {
        /// The cell file.
        path: PathBuf,
    },
}

/// One decoded, valid slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    seq: u64,
    value: u64,
}

fn encode_slot(record: Record) -> [u8; SLOT_LEN] {
    let mut buf = [0u8; SLOT_LEN];
    buf[0..8].copy_from_slice(MAGIC);
    buf[8..16].copy_from_slice(&record.seq.to_le_bytes());
    buf[16..24].copy_from_slice(&record.value.to_le_bytes());
    let sum = xxh3_64(&buf[0..24]);
    buf[24..32].copy_from_slice(&sum.to_le_bytes());
    buf
}

/// Decode a slot; `None` if it is torn, zeroed, foreign or missing.
fn decode_slot(bytes: Option<&[u8]>) -> Option<Record> {
    let buf = bytes?.get(..SLOT_LEN)?;
    let word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&buf[i..i + 8]);
        u64::from_le_bytes(w)
    };
    if &buf[0..8] != MAGIC || xxh3_64(&buf[0..24]) != word(24) {
        return None;
    }
    Some(Record {
        seq: word(8),
        value: word(16),
    })
}

const fn slot_offset(slot: usize) -> u64 {
    if slot == 0 {
        0
    } else {
        SLOT_B_OFFSET
    }
}

/// What the cell knows about the file after reading it.
#[derive(Debug, Clone, Copy)]
struct State {
    /// The newest valid slot (0 = A, 1 = B) and its record.
    newest: (usize, Record),
}

/// A [`DurableCell`] stored in a two-slot file in a data directory (see the
/// module docs of `file_cell.rs` for the format and the crash-safety argument).
#[derive(Debug)]
pub struct FileCell {
    path: PathBuf,
    /// Open read-write once the file exists.
    file: Option<File>,
    /// Known once the file was read or created.
    state: Option<State>,
    poisoned: bool,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FileCellError + 'a {
    move |source| FileCellError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Make a directory entry durable.
fn sync_dir(dir: &Path) -> Result<(), FileCellError> {
    crate::fsutil::sync_dir(dir).map_err(io_err("sync directory", dir))
}

impl FileCell {
    /// Open (or prepare to create) the cell `obelisk.cell` in `dir`. The
    /// directory is created if missing; the file itself is only created by
    /// the first store.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileCell, FileCellError> {
        FileCell::open_named(dir, DEFAULT_FILE_NAME)
    }

    /// Like [`open`](FileCell::open) with a chosen file name, so one data
    /// directory can hold several independent counters.
    pub fn open_named(dir: impl AsRef<Path>, name: &str) -> Result<FileCell, FileCellError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let path = dir.join(name);
        // A leftover temporary file is a creation that never completed: no
        // store using it ever returned, so it holds nothing durable.
        let tmp = tmp_path(&path);
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove stale temporary file", &tmp)(e)),
        }
        let file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => Some(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err("open", &path)(e)),
        };
        Ok(FileCell {
            path,
            file,
            state: None,
            poisoned: false,
        })
    }

    /// The cell file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_poisoned(&self) -> Result<(), FileCellError> {
        if self.poisoned {
            Err(FileCellError::Poisoned {
                path: self.path.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// Read both slots and pick the newest valid one. `Ok(None)` only when
    /// the file does not exist.
    fn read_state(&mut self) -> Result<Option<State>, FileCellError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(None);
        };
        let bytes = read_prefix(file).map_err(io_err("read", &self.path))?;
        let slot = |i: usize| decode_slot(bytes.get(slot_offset(i) as usize..));
        let newest = match (slot(0), slot(1)) {
            (Some(a), Some(b)) if b.seq > a.seq => (1, b),
            (Some(a), _) => (0, a),
            (None, Some(b)) => (1, b),
            (None, None) => {
                return Err(FileCellError::Corrupt {
                    path: self.path.clone(),
                })
            }
        };
        let state = State { newest };
        self.state = Some(state);
        Ok(Some(state))
    }

    /// First store: write the whole file beside the target, sync it, rename
    /// it into place and sync the directory.
    fn create(&mut self, value: u64) -> Result<(), FileCellError> {
        let record = Record { seq: 1, value };
        let mut contents = vec![0u8; FILE_LEN];
        contents[..SLOT_LEN].copy_from_slice(&encode_slot(record));
        let tmp = tmp_path(&self.path);
        let write_tmp = || -> io::Result<()> {
            let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
            io::Write::write_all(&mut f, &contents)?;
            f.sync_all()
        };
        write_tmp().map_err(io_err("write temporary file", &tmp))?;
        fs::rename(&tmp, &self.path).map_err(io_err("rename into place", &self.path))?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(io_err("open", &self.path))?;
        self.file = Some(file);
        self.state = Some(State {
            newest: (0, record),
        });
        Ok(())
    }

    fn store_inner(&mut self, value: u64) -> Result<(), FileCellError> {
        let state = match self.state {
            Some(s) => Some(s),
            None => self.read_state()?,
        };
        let (Some(state), Some(file)) = (state, self.file.as_ref()) else {
            return self.create(value);
        };
        let (newest_slot, newest) = state.newest;
        let record = Record {
            seq: newest.seq + 1,
            value,
        };
        let slot = 1 - newest_slot;
        write_at(file, &encode_slot(record), slot_offset(slot))
            .map_err(io_err("write slot", &self.path))?;
        file.sync_data().map_err(io_err("sync", &self.path))?;
        self.state = Some(State {
            newest: (slot, record),
        });
        Ok(())
    }
}

/// The first `FILE_LEN` bytes of the file (fewer if it is shorter).
fn read_prefix(mut file: &File) -> io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut bytes = Vec::with_capacity(FILE_LEN);
    file.seek(SeekFrom::Start(0))?;
    file.take(FILE_LEN as u64).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(TMP_SUFFIX);
    path.with_file_name(name)
}

impl DurableCell for FileCell {
    type Error = FileCellError;

    /// The newest valid slot's value; `None` only if the file does not exist.
    fn load(&mut self) -> Result<Option<u64>, FileCellError> {
        self.check_poisoned()?;
        Ok(self.read_state()?.map(|s| s.newest.1.value))
    }

    /// Write the older slot and `fdatasync`; the first store creates the
    /// file atomically. Any I/O error poisons the cell.
    fn store_durable(&mut self, value: u64) -> Result<(), FileCellError> {
        self.check_poisoned()?;
        let result = self.store_inner(value);
        if matches!(result, Err(FileCellError::Io { .. })) {
            self.poisoned = true;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shen_rings::obelisk::{Obelisk, ObeliskConfig};

    fn corrupt_byte(path: &Path, offset: u64) {
        let mut bytes = fs::read(path).unwrap();
        bytes[offset as usize] ^= 0x5a;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn empty_directory_loads_none_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = FileCell::open(dir.path()).unwrap();
        assert_eq!(cell.load().unwrap(), None);
        assert!(!cell.path().exists());
    }

    #[test]
    fn round_trip_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = FileCell::open(dir.path()).unwrap();
        cell.store_durable(42).unwrap();
        assert_eq!(cell.load().unwrap(), Some(42));
        assert_eq!(fs::metadata(cell.path()).unwrap().len(), FILE_LEN as u64);
        for v in [43, 1_000, u64::MAX - 1, 7] {
            cell.store_durable(v).unwrap();
            assert_eq!(cell.load().unwrap(), Some(v));
            let mut reopened = FileCell::open(dir.path()).unwrap();
            assert_eq!(reopened.load().unwrap(), Some(v));
        }
        // A store through a reopened handle continues the sequence.
        let mut reopened = FileCell::open(dir.path()).unwrap();
        reopened.store_durable(99).unwrap();
        assert_eq!(
            FileCell::open(dir.path()).unwrap().load().unwrap(),
            Some(99)
        );
    }

    #[test]
    fn store_without_load_after_reopen_keeps_newest_slot() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = FileCell::open(dir.path()).unwrap();
        cell.store_durable(1).unwrap(); // slot A, seq 1
        cell.store_durable(2).unwrap(); // slot B, seq 2
        let mut reopened = FileCell::open(dir.path()).unwrap();
        reopened.store_durable(3).unwrap(); // must go to slot A, seq 3
        corrupt_byte(reopened.path(), 20); // tear that newest write
        assert_eq!(FileCell::open(dir.path()).unwrap().load().unwrap(), Some(2));
    }

    #[test]
    fn torn_slot_recovers_the_other() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = FileCell::open(dir.path()).unwrap();
        cell.store_durable(10).unwrap(); // slot A
        cell.store_durable(20).unwrap(); // slot B (newest)
        let path = cell.path().to_path_buf();
        drop(cell);

        // Tear the newest slot: fall back to the previous value.
        corrupt_byte(&path, SLOT_B_OFFSET + 17);
        let mut cell = FileCell::open(dir.path()).unwrap();
        assert_eq!(cell.load().unwrap(), Some(10));
        // The next store overwrites the torn slot, not the good one.
        cell.store_durable(30).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(
            decode_slot(Some(&bytes[..SLOT_LEN])),
            Some(Record { seq: 1, value: 10 })
        );
        assert_eq!(
            FileCell::open(dir.path()).unwrap().load().unwrap(),
            Some(30)
        );

        // Tear the older slot instead: the newest value is still there.
        corrupt_byte(&path, 3);
        assert_eq!(
            FileCell::open(dir.path()).unwrap().load().unwrap(),
            Some(30)
        );
    }

    #[test]
    fn zeroed_slot_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = FileCell::open(dir.path()).unwrap();
        cell.store_durable(5).unwrap();
        cell.store_durable(6).unwrap();
        let mut bytes = fs::read(cell.path()).unwrap();
        bytes[SLOT_B_OFFSET as usize..].fill(0);
        fs::write(cell.path(), bytes).unwrap();
        assert_eq!(FileCell::open(dir.path()).unwrap().load().unwrap(), Some(5));
    }

    #[test]
    fn both_slots_corrupt_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = FileCell::open(dir.path()).unwrap();
        cell.store_durable(10).unwrap();
        cell.store_durable(20).unwrap();
        let path = cell.path().to_path_buf();
        corrupt_byte(&path, 9);
        corrupt_byte(&path, SLOT_B_OFFSET + 25);
        let mut cell = FileCell::open(dir.path()).unwrap();
        let err = cell.load().unwrap_err();
        assert!(matches!(err, FileCellError::Corrupt { .. }), "{err}");
        // Stores refuse too: they cannot know which slot is safe to write.
        assert!(matches!(
            cell.store_durable(1),
            Err(FileCellError::Corrupt { .. })
        ));
        // And an Obelisk refuses to open.
        let o = Obelisk::open(
            FileCell::open(dir.path()).unwrap(),
            ObeliskConfig::default(),
        );
        assert!(o.is_err());
    }

    #[test]
    fn truncated_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut cell = FileCell::open(dir.path()).unwrap();
        cell.store_durable(10).unwrap();
        File::create(cell.path()).unwrap(); // truncate to 0 bytes
        let err = FileCell::open(dir.path()).unwrap().load().unwrap_err();
        assert!(matches!(err, FileCellError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn stale_temporary_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DEFAULT_FILE_NAME);
        fs::write(tmp_path(&path), b"half-written").unwrap();
        let mut cell = FileCell::open(dir.path()).unwrap();
        assert!(!tmp_path(&path).exists());
        assert_eq!(cell.load().unwrap(), None);
        cell.store_durable(3).unwrap();
        assert_eq!(cell.load().unwrap(), Some(3));
    }

    #[test]
    fn creates_missing_directory_and_named_cells_are_independent() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let mut one = FileCell::open_named(&nested, "one").unwrap();
        let mut two = FileCell::open_named(&nested, "two").unwrap();
        one.store_durable(1).unwrap();
        two.store_durable(2).unwrap();
        assert_eq!(one.load().unwrap(), Some(1));
        assert_eq!(two.load().unwrap(), Some(2));
    }

    #[test]
    fn obelisk_over_file_cell_resumes_above_the_high_water_mark() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ObeliskConfig::with_range(100);
        let mut last = None;
        for _ in 0..5 {
            let mut o = Obelisk::open(FileCell::open(dir.path()).unwrap(), cfg).unwrap();
            for _ in 0..250 {
                let v = o.next().unwrap();
                assert!(last.is_none_or(|l| v > l));
                last = Some(v);
            }
            // Dropped without any shutdown step, like a crash.
        }
        // 5 runs of 250 values with ranges of 100: each run burns 300.
        assert_eq!(last, Some(4 * 300 + 249));
    }
}
