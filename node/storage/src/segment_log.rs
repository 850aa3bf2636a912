//! A durable, segmented, append-only record log in a directory of files:
//! the file implementation of [`LogStore`] (one per log partition).
//!
//! # On-disk format
//!
//! The directory holds *segment files*, each named by the offset of its first
//! record as 20 decimal digits plus `.seg` (for example
//! `00000000000000000000.seg`, see [`segment_file_name`]). Other files are
//! ignored. Segments are consecutive: each one's base offset is the previous
//! one's base plus its record count (the first one's is 0 unless retention deleted older segments). All integers
//! are little-endian.
//!
//! A segment starts with a [`SEGMENT_HEADER_LEN`]-byte header:
//!
//! | offset | size | field                                      |
//! |--------|------|--------------------------------------------|
//! | 0      | 8    | magic `SHENSEG1` (format and version)      |
//! | 8      | 8    | base offset (the same as in the file name) |
//!
//! followed by records, each framed as
//!
//! | offset | size  | field                                                       |
//! |--------|-------|-------------------------------------------------------------|
//! | 0      | 4     | `len`, the payload length (at most [`MAX_RECORD_LEN`])     |
//! | 4      | 8     | XXH3-64, seeded with the record's offset, of `len` ‖ payload |
//! | 12     | `len` | payload                                                     |
//!
//! Seeding the checksum with the offset means a frame is only valid at the
//! offset it was written for: a stale or misplaced frame fails the check.
//!
//! A segment *rolls* (a new file is started) before an append that would
//! take it past [`SegmentLogConfig::segment_bytes`], unless it holds no
//! record yet (so a segment exceeds the size only by holding one oversized
//! record).
//!
//! # Crash safety
//!
//! See [`shen_rings::logstore`] for the contract. How it is kept:
//!
//! * Appends go to a write buffer and are written to the last (*active*)
//!   segment with positioned writes; [`sync`](LogStore::sync) writes the
//!   buffer and calls [`File::sync_data`] (`fdatasync`) on the active
//!   segment.
//! * Rolling syncs the old segment *before* creating the new file, then
//!   syncs the directory. So every segment but the last is complete and
//!   durable before any later segment exists, and a damaged record in a
//!   non-last segment can only be real corruption.
//! * [`SegmentLog::open`] validates every record of every segment in order.
//!   In the last segment, the first torn or invalid record and everything
//!   after it is the torn tail of an interrupted write: the file is
//!   truncated there (and synced). Anywhere else it is
//!   [`SegmentLogError::Corrupt`], naming the file and byte position: data
//!   in the middle of the log is never silently dropped. After a successful
//!   open the whole log is durable (the active segment is synced, since a
//!   killed process may have left un-synced records in the page cache).
//! * [`truncate_from`](LogStore::truncate_from) deletes later segments
//!   (newest first) and syncs the directory *before* cutting the containing
//!   segment and syncing it, so a crash in between leaves a consistent log.
//! * After an I/O error while writing, the log is *poisoned*: writes fail
//!   with [`SegmentLogError::Poisoned`] (after a failed `fsync` Linux may
//!   drop dirty pages and report the next `fsync` as fine, so retrying is not
//!   trusted); reopen to see what is really on disk. Reads keep working.
//!
//! Only one `SegmentLog` (one process) may use a directory at a time; nothing
//! here locks it.
//!
//! # Reads
//!
//! An in-memory index holds each record's byte position: a read is a binary
//! search over the segments plus one positioned read, and the frame's
//! checksum is verified again (a failure is [`SegmentLogError::Corrupt`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use shen_rings::logstore::{check_record_len, LogStore, RecordTooLarge, MAX_RECORD_LEN};
use xxhash_rust::xxh3::Xxh3;

use crate::fsutil::{read_at, write_at};

/// Default size at which a segment rolls: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// Default size of the write buffer: 64 KiB.
pub const DEFAULT_WRITE_BUFFER_BYTES: usize = 64 << 10;

/// Suffix of segment file names.
pub const SEGMENT_SUFFIX: &str = ".seg";

/// Length of a segment file's header in bytes.
pub const SEGMENT_HEADER_LEN: u64 = 16;

/// Length of a record frame's header (`len` and checksum) in bytes.
pub const FRAME_HEADER_LEN: usize = 12;

/// Format marker at the start of every segment file.
const SEGMENT_MAGIC: &[u8; 8] = b"SHENSEG1";

/// Buffer size for scanning segments on open.
const SCAN_BUFFER_BYTES: usize = 256 << 10;

/// The file name of the segment whose first record has offset `base`.
pub fn segment_file_name(base: u64) -> String {
    format!("{base:020}{SEGMENT_SUFFIX}")
}

/// The base offset encoded in a segment file name, or `None` if `name` is
/// not exactly 20 digits plus [`SEGMENT_SUFFIX`].
fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Settings of a [`SegmentLog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentLogConfig {
    /// A segment rolls before an append would take it past this many bytes
    /// (header and frames included). Default [`DEFAULT_SEGMENT_BYTES`].
    pub segment_bytes: u64,
    /// Appended frames are buffered in memory and written once the buffer
    /// holds this many bytes (or on sync, roll, truncation or drop). 0 writes
    /// every append at once. Default [`DEFAULT_WRITE_BUFFER_BYTES`].
    pub write_buffer_bytes: usize,
}

impl Default for SegmentLogConfig {
    fn default() -> SegmentLogConfig {
        SegmentLogConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            write_buffer_bytes: DEFAULT_WRITE_BUFFER_BYTES,
        }
    }
}

/// Errors of a [`SegmentLog`].
#[derive(Debug, thiserror::Error)]
pub enum SegmentLogError {
    /// An I/O operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (e.g. "sync", "write").
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The record is longer than [`MAX_RECORD_LEN`]; nothing was appended.
    #[error(transparent)]
    RecordTooLarge(#[from] RecordTooLarge),
    /// A record that must be intact is not: a damaged frame in a segment
    /// other than the last, or a frame that fails its check when read back.
    /// Needs an operator (restore the segment from a replica or a backup).
    #[error("{}: corrupt record at byte {position} (offset {offset}): {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the damaged frame in the file.
        position: u64,
        /// The offset the damaged record should have.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A segment file's header is not a valid header for its name.
    #[error("{}: bad segment header: {reason}", path.display())]
    BadHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `.seg` file whose name is not 20 digits plus `.seg`.
    #[error("{}: not a segment file name (expected 20 digits + {SEGMENT_SUFFIX})", path.display())]
    BadSegmentName {
        /// The file.
        path: PathBuf,
    },
    /// The segments are not consecutive: a segment's base offset is not
    /// where the previous one ends (a missing or extra segment file).
    #[error("{}: segment starts at offset {found}, expected {expected}", path.display())]
    Gap {
        /// The segment file that does not fit.
        path: PathBuf,
        /// Where the previous segment ends (0 for the first).
        expected: u64,
        /// The base offset in its name.
        found: u64,
    },
    /// An earlier write or sync failed; this handle refuses further writes.
    /// Reopen the log to recover.
    #[error("{}: an earlier write failed; reopen the log", dir.display())]
    Poisoned {
        /// The log's directory.
        dir: PathBuf,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SegmentLogError + 'a {
    move |source| SegmentLogError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The checksum of the record at `offset` with `payload`.
fn frame_checksum(offset: u64, len: u32, payload: &[u8]) -> u64 {
    let mut h = Xxh3::with_seed(offset);
    h.update(&len.to_le_bytes());
    h.update(payload);
    h.digest()
}

fn segment_header(base: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[..8].copy_from_slice(SEGMENT_MAGIC);
    h[8..].copy_from_slice(&base.to_le_bytes());
    h
}

/// Make a directory entry durable.
fn sync_dir(dir: &Path) -> Result<(), SegmentLogError> {
    crate::fsutil::sync_dir(dir).map_err(io_err("sync directory", dir))
}

/// One segment file and its index.
#[derive(Debug)]
struct Segment {
    /// Offset of its first record.
    base: u64,
    path: PathBuf,
    file: File,
    /// Byte position of each record's frame.
    positions: Vec<u64>,
    /// Byte length including frames still in the write buffer.
    end: u64,
    /// Byte length written to the file (`end` minus the buffered bytes; only
    /// the last segment ever has buffered bytes).
    written: u64,
}

impl Segment {
    fn next_offset(&self) -> u64 {
        self.base + self.positions.len() as u64
    }
}

/// The outcome of scanning one segment file.
enum Scan {
    /// Every frame is valid.
    Clean,
    /// The header is missing or all zeros (a creation interrupted early).
    TornHeader,
    /// The frame at this byte position (the record's offset is the index's
    /// next) is torn or invalid; nothing after it was read.
    BadFrame { position: u64, reason: &'static str },
}

/// A [`LogStore`] in a directory of segment files (see the
/// module docs of `segment_log.rs` for the format and the crash-safety argument).
#[derive(Debug)]
pub struct SegmentLog {
    dir: PathBuf,
    config: SegmentLogConfig,
    /// Consecutive segments, never empty; the last is the active one.
    segments: Vec<Segment>,
    /// Frames appended to the active segment but not yet written.
    buf: Vec<u8>,
    durable: u64,
    poisoned: bool,
}

impl SegmentLog {
    /// Open the log in `dir` with the default settings, creating the
    /// directory and the first segment if missing, validating every record
    /// and truncating a torn tail.
    pub fn open(dir: impl AsRef<Path>) -> Result<SegmentLog, SegmentLogError> {
        SegmentLog::open_with(dir, SegmentLogConfig::default())
    }

    /// Like [`open`](SegmentLog::open) with chosen settings. The settings
    /// only steer future writes: a log written with one segment size can be
    /// reopened with another.
    pub fn open_with(
        dir: impl AsRef<Path>,
        config: SegmentLogConfig,
    ) -> Result<SegmentLog, SegmentLogError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(io_err("create directory", &dir))?;
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let mut bases = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("list directory", &dir))? {
            let entry = entry.map_err(io_err("list directory", &dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.ends_with(SEGMENT_SUFFIX) {
                continue;
            }
            match parse_segment_name(name) {
                Some(base) => bases.push(base),
                None => return Err(SegmentLogError::BadSegmentName { path: entry.path() }),
            }
        }
        bases.sort_unstable();

        let mut log = SegmentLog {
            dir,
            config,
            segments: Vec::with_capacity(bases.len().max(1)),
            buf: Vec::new(),
            durable: 0,
            poisoned: false,
        };
        if bases.is_empty() {
            log.create_segment(0)?;
            return Ok(log);
        }
        let count = bases.len();
        // Retention may have deleted the oldest segments: the first base is
        // where the log starts.
        let mut expected = bases[0];
        for (i, base) in bases.into_iter().enumerate() {
            let path = log.dir.join(segment_file_name(base));
            if base != expected {
                return Err(SegmentLogError::Gap {
                    path,
                    expected,
                    found: base,
                });
            }
            let is_last = i + 1 == count;
            let segment = open_segment(base, path, is_last)?;
            expected = segment.next_offset();
            log.segments.push(segment);
        }
        // A killed process may have left records in the page cache only:
        // make everything found durable, so `durable_offset` is true.
        if let Some(last) = log.segments.last() {
            last.file.sync_data().map_err(io_err("sync", &last.path))?;
        }
        log.durable = log.next_offset();
        Ok(log)
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings in use.
    pub fn config(&self) -> SegmentLogConfig {
        self.config
    }

    /// The segment files, oldest first (the last one is being appended to).
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    fn check_poisoned(&self) -> Result<(), SegmentLogError> {
        if self.poisoned {
            Err(SegmentLogError::Poisoned {
                dir: self.dir.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// Run a write operation, poisoning the log if it fails with an I/O
    /// error.
    fn guarded<T>(
        &mut self,
        op: impl FnOnce(&mut SegmentLog) -> Result<T, SegmentLogError>,
    ) -> Result<T, SegmentLogError> {
        self.check_poisoned()?;
        let result = op(self);
        if matches!(result, Err(SegmentLogError::Io { .. })) {
            self.poisoned = true;
        }
        result
    }

    fn active(&self) -> &Segment {
        // `segments` is never empty once opened.
        &self.segments[self.segments.len() - 1]
    }

    /// Create the segment file for `base` (header included), sync the
    /// directory, and make it the active segment.
    fn create_segment(&mut self, base: u64) -> Result<(), SegmentLogError> {
        let path = self.dir.join(segment_file_name(base));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err("create segment", &path))?;
        write_at(&file, &segment_header(base), 0).map_err(io_err("write header", &path))?;
        sync_dir(&self.dir)?;
        self.segments.push(Segment {
            base,
            path,
            file,
            positions: Vec::new(),
            end: SEGMENT_HEADER_LEN,
            written: SEGMENT_HEADER_LEN,
        });
        Ok(())
    }

    /// Write the buffered frames to the active segment.
    fn flush_buffer(&mut self) -> Result<(), SegmentLogError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let Some(active) = self.segments.last_mut() else {
            return Ok(());
        };
        write_at(&active.file, &self.buf, active.written).map_err(io_err("write", &active.path))?;
        active.written = active.end;
        self.buf.clear();
        Ok(())
    }

    /// Make the active segment complete and durable, then start a new one.
    fn roll(&mut self) -> Result<(), SegmentLogError> {
        self.flush_buffer()?;
        let active = self.active();
        active
            .file
            .sync_data()
            .map_err(io_err("sync", &active.path))?;
        let next = active.next_offset();
        self.durable = next;
        self.create_segment(next)
    }

    fn append_inner(&mut self, record: &[u8]) -> Result<u64, SegmentLogError> {
        check_record_len(record.len())?;
        let frame_len = (FRAME_HEADER_LEN + record.len()) as u64;
        let active = self.active();
        if !active.positions.is_empty()
            && active.end.saturating_add(frame_len) > self.config.segment_bytes
        {
            self.roll()?;
        }
        let offset = self.next_offset();
        // `check_record_len` bounds the length far below `u32::MAX`.
        let len = record.len() as u32;
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf
            .extend_from_slice(&frame_checksum(offset, len, record).to_le_bytes());
        self.buf.extend_from_slice(record);
        let n = self.segments.len();
        let active = &mut self.segments[n - 1];
        active.positions.push(active.end);
        active.end += frame_len;
        if self.buf.len() >= self.config.write_buffer_bytes {
            self.flush_buffer()?;
        }
        Ok(offset)
    }

    fn sync_inner(&mut self) -> Result<(), SegmentLogError> {
        if self.durable == self.next_offset() {
            return Ok(());
        }
        self.flush_buffer()?;
        let active = self.active();
        active
            .file
            .sync_data()
            .map_err(io_err("sync", &active.path))?;
        self.durable = self.next_offset();
        Ok(())
    }

    fn truncate_inner(&mut self, offset: u64) -> Result<(), SegmentLogError> {
        if offset >= self.next_offset() {
            return Ok(());
        }
        let offset = offset.max(self.first());
        self.flush_buffer()?;
        // The last segment starting at or before `offset` holds it.
        let keep = self.segments.partition_point(|s| s.base <= offset).max(1);
        if keep < self.segments.len() {
            // Newest first, so a crash part-way leaves consecutive segments.
            while self.segments.len() > keep {
                let Some(seg) = self.segments.pop() else {
                    break;
                };
                fs::remove_file(&seg.path).map_err(io_err("remove segment", &seg.path))?;
            }
            sync_dir(&self.dir)?;
        }
        let seg = &mut self.segments[keep - 1];
        let index = usize::try_from(offset - seg.base).unwrap_or(usize::MAX);
        let position = seg.positions.get(index).copied().unwrap_or(seg.end);
        seg.file
            .set_len(position)
            .map_err(io_err("truncate", &seg.path))?;
        seg.file.sync_data().map_err(io_err("sync", &seg.path))?;
        seg.positions.truncate(index);
        seg.end = position;
        seg.written = position;
        // Earlier segments were synced when they rolled; this one just was.
        self.durable = self.next_offset();
        Ok(())
    }

    fn first(&self) -> u64 {
        self.segments.first().map_or(0, |s| s.base)
    }

    /// Delete the oldest segments that end at or below `offset` (never the
    /// active one), oldest first, then sync the directory: a crash part-way
    /// leaves consecutive segments, starting at the old or a later base.
    fn trim_inner(&mut self, offset: u64) -> Result<(), SegmentLogError> {
        let drop = self
            .segments
            .iter()
            .take(self.segments.len() - 1)
            .take_while(|s| s.next_offset() <= offset)
            .count();
        if drop == 0 {
            return Ok(());
        }
        for seg in self.segments.drain(..drop) {
            fs::remove_file(&seg.path).map_err(io_err("remove segment", &seg.path))?;
        }
        sync_dir(&self.dir)
    }

    /// Delete every segment (newest first) and start an empty one at
    /// `offset`.
    fn reset_inner(&mut self, offset: u64) -> Result<(), SegmentLogError> {
        self.buf.clear();
        while let Some(seg) = self.segments.pop() {
            fs::remove_file(&seg.path).map_err(io_err("remove segment", &seg.path))?;
        }
        sync_dir(&self.dir)?;
        self.create_segment(offset)?;
        self.durable = offset;
        Ok(())
    }

    /// The bytes of the frame of `offset` in `seg` (`index` into its
    /// positions), read from the write buffer or the file.
    fn frame_bytes(&self, seg: &Segment, index: usize) -> Result<Vec<u8>, SegmentLogError> {
        let pos = seg.positions[index];
        let end = seg.positions.get(index + 1).copied().unwrap_or(seg.end);
        let len = usize::try_from(end - pos).unwrap_or(usize::MAX);
        if pos >= seg.written {
            // Only the active segment has buffered frames.
            let from = usize::try_from(pos - seg.written).unwrap_or(usize::MAX);
            return self
                .buf
                .get(from..from.saturating_add(len))
                .map(<[u8]>::to_vec)
                .ok_or(SegmentLogError::Corrupt {
                    path: seg.path.clone(),
                    position: pos,
                    offset: seg.base + index as u64,
                    reason: "frame missing from the write buffer",
                });
        }
        let mut frame = vec![0u8; len];
        read_at(&seg.file, &mut frame, pos).map_err(io_err("read", &seg.path))?;
        Ok(frame)
    }
}

/// Decode and check one whole frame for `offset`; the payload or why not.
fn decode_frame(frame: &[u8], offset: u64) -> Result<&[u8], &'static str> {
    let (header, payload) = frame
        .split_at_checked(FRAME_HEADER_LEN)
        .ok_or("frame shorter than its header")?;
    let mut len = [0u8; 4];
    len.copy_from_slice(&header[..4]);
    let len = u32::from_le_bytes(len);
    let mut sum = [0u8; 8];
    sum.copy_from_slice(&header[4..]);
    if len as usize != payload.len() {
        return Err("length does not match the index");
    }
    if frame_checksum(offset, len, payload) != u64::from_le_bytes(sum) {
        return Err("checksum mismatch");
    }
    Ok(payload)
}

/// Open one segment file, validate its header and frames, and index it. In
/// the last segment a torn tail is cut off; elsewhere damage is an error.
fn open_segment(base: u64, path: PathBuf, is_last: bool) -> Result<Segment, SegmentLogError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err("open segment", &path))?;
    let mut seg = Segment {
        base,
        path,
        file,
        positions: Vec::new(),
        end: SEGMENT_HEADER_LEN,
        written: SEGMENT_HEADER_LEN,
    };
    let scan = scan_segment(&mut seg)?;
    match scan {
        Scan::Clean => {}
        Scan::TornHeader if is_last => {
            // Created by a roll that was interrupted before its first sync:
            // it never held a durable record. Start it afresh.
            seg.file
                .set_len(0)
                .and_then(|()| write_at(&seg.file, &segment_header(base), 0))
                .and_then(|()| seg.file.sync_data())
                .map_err(io_err("rewrite header", &seg.path))?;
            seg.positions.clear();
            seg.end = SEGMENT_HEADER_LEN;
            seg.written = SEGMENT_HEADER_LEN;
        }
        Scan::TornHeader => {
            return Err(SegmentLogError::BadHeader {
                path: seg.path,
                reason: "missing or zeroed header in a segment that is not the last",
            })
        }
        Scan::BadFrame { position, .. } if is_last => {
            seg.file
                .set_len(position)
                .map_err(io_err("truncate torn tail", &seg.path))?;
            seg.end = position;
            seg.written = position;
        }
        Scan::BadFrame { position, reason } => {
            return Err(SegmentLogError::Corrupt {
                offset: seg.next_offset(),
                path: seg.path,
                position,
                reason,
            })
        }
    }
    Ok(seg)
}

/// Read `buf.len()` bytes; `Ok(n)` with `n < buf.len()` only at end of file.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Validate the header and index every valid frame of `seg` (whose `end`
/// and `written` end up after the last valid frame).
fn scan_segment(seg: &mut Segment) -> Result<Scan, SegmentLogError> {
    let mut reader = BufReader::with_capacity(SCAN_BUFFER_BYTES, &seg.file);
    let path = seg.path.clone();
    let read_err = || io_err("read segment", &path);
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    let n = read_full(&mut reader, &mut header).map_err(read_err())?;
    if n < header.len() || header.iter().all(|&b| b == 0) {
        return Ok(Scan::TornHeader);
    }
    if &header[..8] != SEGMENT_MAGIC {
        return Err(SegmentLogError::BadHeader {
            path: seg.path.clone(),
            reason: "wrong magic (not a Shen segment, or another format version)",
        });
    }
    if header[8..] != seg.base.to_le_bytes() {
        return Err(SegmentLogError::BadHeader {
            path: seg.path.clone(),
            reason: "base offset differs from the file name",
        });
    }
    let mut pos = SEGMENT_HEADER_LEN;
    let mut payload = Vec::new();
    loop {
        let mut fh = [0u8; FRAME_HEADER_LEN];
        let n = read_full(&mut reader, &mut fh).map_err(read_err())?;
        let bad = |reason| {
            Ok(Scan::BadFrame {
                position: pos,
                reason,
            })
        };
        if n == 0 {
            return Ok(Scan::Clean);
        }
        if n < FRAME_HEADER_LEN {
            return bad("torn frame header");
        }
        let mut len = [0u8; 4];
        len.copy_from_slice(&fh[..4]);
        let len = u32::from_le_bytes(len);
        if len as usize > MAX_RECORD_LEN {
            return bad("length over the record limit");
        }
        payload.resize(len as usize, 0);
        let n = read_full(&mut reader, &mut payload).map_err(read_err())?;
        if n < payload.len() {
            return bad("torn payload");
        }
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&fh[4..]);
        if frame_checksum(seg.next_offset(), len, &payload) != u64::from_le_bytes(sum) {
            return bad("checksum mismatch");
        }
        seg.positions.push(pos);
        pos += (FRAME_HEADER_LEN + payload.len()) as u64;
        seg.end = pos;
        seg.written = pos;
    }
}

impl LogStore for SegmentLog {
    type Error = SegmentLogError;

    /// Buffer the framed record (rolling to a new segment first if the
    /// active one is full); written once the buffer fills.
    fn append(&mut self, record: &[u8]) -> Result<u64, SegmentLogError> {
        self.guarded(|log| log.append_inner(record))
    }

    /// Write the buffer and `fdatasync` the active segment (earlier segments
    /// were synced when they rolled). Nothing to do if nothing was appended
    /// since the last sync.
    fn sync(&mut self) -> Result<(), SegmentLogError> {
        self.guarded(SegmentLog::sync_inner)
    }

    fn read(&self, offset: u64) -> Result<Option<Vec<u8>>, SegmentLogError> {
        if offset >= self.next_offset() {
            return Ok(None);
        }
        let at = self.segments.partition_point(|s| s.base <= offset);
        let Some(seg) = at.checked_sub(1).and_then(|i| self.segments.get(i)) else {
            return Ok(None);
        };
        let index = usize::try_from(offset - seg.base).unwrap_or(usize::MAX);
        if index >= seg.positions.len() {
            return Ok(None);
        }
        let mut frame = self.frame_bytes(seg, index)?;
        match decode_frame(&frame, offset) {
            Ok(_) => {
                frame.drain(..FRAME_HEADER_LEN);
                Ok(Some(frame))
            }
            Err(reason) => Err(SegmentLogError::Corrupt {
                path: seg.path.clone(),
                position: seg.positions[index],
                offset,
                reason,
            }),
        }
    }

    fn next_offset(&self) -> u64 {
        self.segments.last().map_or(0, Segment::next_offset)
    }

    fn durable_offset(&self) -> u64 {
        self.durable
    }

    /// Delete later segments, sync the directory, cut the containing segment
    /// and sync it. Afterwards the whole remaining log is durable.
    fn truncate_from(&mut self, offset: u64) -> Result<(), SegmentLogError> {
        self.guarded(|log| log.truncate_inner(offset))
    }

    fn first_offset(&self) -> u64 {
        self.first()
    }

    /// Delete whole segments wholly below `offset` (the active segment is
    /// kept), durably.
    fn trim_before(&mut self, offset: u64) -> Result<(), SegmentLogError> {
        self.guarded(|log| log.trim_inner(offset))
    }

    /// Delete every segment and continue empty at `offset`, durably.
    fn reset_at(&mut self, offset: u64) -> Result<(), SegmentLogError> {
        self.guarded(|log| log.reset_inner(offset))
    }

    fn segment_starts(&self) -> Vec<u64> {
        self.segments.iter().map(|s| s.base).collect()
    }
}

impl Drop for SegmentLog {
    /// Write (not sync) the buffered frames, so a clean shutdown without a
    /// final sync still leaves them to the operating system.
    fn drop(&mut self) {
        if !self.poisoned {
            let _ = self.flush_buffer();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shen_rings::logstore::MemoryLog;

    /// Tiny segments and write-through appends.
    fn tiny(segment_bytes: u64) -> SegmentLogConfig {
        SegmentLogConfig {
            segment_bytes,
            write_buffer_bytes: 0,
        }
    }

    /// The record written at `offset` in these tests (varying length).
    fn rec(offset: u64) -> Vec<u8> {
        let mut r = format!("record-{offset}-").into_bytes();
        r.resize(r.len() + (offset % 23) as usize, b'a' + (offset % 26) as u8);
        r
    }

    fn fill(log: &mut SegmentLog, from: u64, to: u64) {
        for i in from..to {
            assert_eq!(log.append(&rec(i)).unwrap(), i);
        }
    }

    fn check_all(log: &SegmentLog, n: u64) {
        assert_eq!(log.next_offset(), n);
        for i in 0..n {
            assert_eq!(log.read(i).unwrap(), Some(rec(i)), "offset {i}");
        }
        assert_eq!(log.read(n).unwrap(), None);
    }

    fn append_bytes(path: &Path, bytes: &[u8]) {
        use std::io::Write;
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(bytes).unwrap();
    }

    fn flip_byte(path: &Path, pos: u64) {
        let mut bytes = fs::read(path).unwrap();
        bytes[pos as usize] ^= 0x5a;
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_file_name(0), "00000000000000000000.seg");
        assert_eq!(segment_file_name(u64::MAX), "18446744073709551615.seg");
        assert_eq!(parse_segment_name("00000000000000000042.seg"), Some(42));
        assert_eq!(parse_segment_name("42.seg"), None);
        assert_eq!(parse_segment_name("0000000000000000004x.seg"), None);
        assert_eq!(parse_segment_name("99999999999999999999.seg"), None);
    }

    #[test]
    fn trim_deletes_whole_old_segments_and_reopens_from_the_first_base() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(200)).unwrap();
        fill(&mut log, 0, 60);
        log.sync().unwrap();
        let starts = log.segment_starts();
        assert!(starts.len() > 3, "{starts:?}");
        log.trim_before(starts[2]).unwrap();
        assert_eq!(log.first_offset(), starts[2]);
        assert_eq!(log.read(starts[2] - 1).unwrap(), None);
        assert_eq!(log.read(starts[2]).unwrap(), Some(rec(starts[2])));
        drop(log);
        let mut log = SegmentLog::open_with(dir.path(), tiny(200)).unwrap();
        assert_eq!((log.first_offset(), log.next_offset()), (starts[2], 60));
        for i in starts[2]..60 {
            assert_eq!(log.read(i).unwrap(), Some(rec(i)));
        }
        // The active segment is never trimmed away.
        log.trim_before(1_000).unwrap();
        assert_eq!(log.next_offset(), 60);
        assert!(log.first_offset() <= 59);
        log.reset_at(500).unwrap();
        assert_eq!(log.append(&rec(500)).unwrap(), 500);
        log.sync().unwrap();
        drop(log);
        let log = SegmentLog::open_with(dir.path(), tiny(200)).unwrap();
        assert_eq!((log.first_offset(), log.next_offset()), (500, 501));
        assert_eq!(log.segment_starts(), vec![500]);
    }

    #[test]
    fn empty_log_creates_first_segment() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path().join("p0")).unwrap();
        assert_eq!(log.next_offset(), 0);
        assert_eq!(log.durable_offset(), 0);
        assert_eq!(log.read(0).unwrap(), None);
        let paths = log.segment_paths();
        assert_eq!(paths.len(), 1);
        assert!(paths[0].ends_with("00000000000000000000.seg"));
        assert_eq!(fs::metadata(&paths[0]).unwrap().len(), SEGMENT_HEADER_LEN);
    }

    #[test]
    fn round_trip_across_segments_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        for buffer in [0, 100, DEFAULT_WRITE_BUFFER_BYTES] {
            let path = dir.path().join(format!("b{buffer}"));
            let cfg = SegmentLogConfig {
                segment_bytes: 200,
                write_buffer_bytes: buffer,
            };
            let mut log = SegmentLog::open_with(&path, cfg).unwrap();
            fill(&mut log, 0, 100);
            check_all(&log, 100); // partly from the write buffer
            assert!(log.segment_paths().len() > 10, "segments must roll");
            for p in log.segment_paths() {
                // Only a single oversized record may exceed the size.
                assert!(fs::metadata(&p).unwrap().len() <= 200);
            }
            log.sync().unwrap();
            assert_eq!(log.durable_offset(), 100);
            fill(&mut log, 100, 120); // not synced: a clean drop still writes them
            drop(log);
            let mut log = SegmentLog::open_with(&path, cfg).unwrap();
            check_all(&log, 120);
            assert_eq!(log.durable_offset(), 120);
            fill(&mut log, 120, 150);
            drop(log);
            // Reopen with another segment size.
            let log = SegmentLog::open(&path).unwrap();
            check_all(&log, 150);
        }
    }

    #[test]
    fn segments_respect_the_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(256)).unwrap();
        fill(&mut log, 0, 200);
        log.sync().unwrap();
        for p in log.segment_paths() {
            assert!(fs::metadata(&p).unwrap().len() <= 256, "{}", p.display());
        }
        // Names are the base offsets, consecutive.
        let mut expected = 0;
        for p in log.segment_paths() {
            let name = p.file_name().unwrap().to_str().unwrap();
            assert_eq!(parse_segment_name(name), Some(expected));
            // Advance `expected` to the next segment's base.
            let seg = &log.segments[log.segments.iter().position(|s| s.path == p).unwrap()];
            expected = seg.next_offset();
        }
        assert_eq!(expected, 200);
        // A record larger than the segment size gets a segment of its own.
        let big = vec![1u8; 1000];
        let off = log.append(&big).unwrap();
        log.append(b"after").unwrap();
        assert_eq!(log.read(off).unwrap(), Some(big));
        assert_eq!(log.read(off + 1).unwrap().as_deref(), Some(&b"after"[..]));
    }

    #[test]
    fn torn_tail_garbage_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(300)).unwrap();
        fill(&mut log, 0, 40);
        log.sync().unwrap();
        let last = log.segment_paths().pop().unwrap();
        let good_len = fs::metadata(&last).unwrap().len();
        drop(log);

        for garbage in [
            &b"\x01"[..],                                               // torn frame header
            &b"\x05\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08ab"[..], // torn payload
            &b"\x02\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08ab"[..], // bad checksum
            &b"\xff\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00\x00"[..],   // absurd length
            &[0u8; 4096][..], // zeroed pages after a power loss
        ] {
            append_bytes(&last, garbage);
            let log = SegmentLog::open_with(dir.path(), tiny(300)).unwrap();
            check_all(&log, 40);
            assert_eq!(log.durable_offset(), 40);
            assert_eq!(fs::metadata(&last).unwrap().len(), good_len);
        }
    }

    #[test]
    fn half_a_record_at_the_end_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(4096)).unwrap();
        fill(&mut log, 0, 10);
        log.sync().unwrap();
        let last = log.segment_paths().pop().unwrap();
        let len = fs::metadata(&last).unwrap().len();
        drop(log);
        // Cut the last record in half.
        let f = OpenOptions::new().write(true).open(&last).unwrap();
        f.set_len(len - 5).unwrap();
        drop(f);
        let mut log = SegmentLog::open_with(dir.path(), tiny(4096)).unwrap();
        check_all(&log, 9);
        // The log continues at the freed offset.
        assert_eq!(log.append(&rec(9)).unwrap(), 9);
        drop(log);
        check_all(&SegmentLog::open(dir.path()).unwrap(), 10);
    }

    #[test]
    fn damaged_record_in_last_segment_drops_it_and_later_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(1 << 20)).unwrap();
        fill(&mut log, 0, 10);
        let pos = log.segments[0].positions[6];
        drop(log);
        flip_byte(&dir.path().join(segment_file_name(0)), pos + 14);
        let log = SegmentLog::open(dir.path()).unwrap();
        check_all(&log, 6);
    }

    #[test]
    fn corruption_in_an_older_segment_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(200)).unwrap();
        fill(&mut log, 0, 60);
        let victim = log.segments[1].path.clone();
        let base = log.segments[1].base;
        let pos = log.segments[1].positions[1];
        drop(log);
        flip_byte(&victim, pos + FRAME_HEADER_LEN as u64 + 2);
        let err = SegmentLog::open(dir.path()).unwrap_err();
        match &err {
            SegmentLogError::Corrupt {
                path,
                position,
                offset,
                ..
            } => {
                assert_eq!(path, &victim);
                assert_eq!(*position, pos);
                assert_eq!(*offset, base + 1);
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains(&segment_file_name(base)), "{msg}");

        // A truncated older segment is corruption too.
        flip_byte(&victim, pos + FRAME_HEADER_LEN as u64 + 2); // repair
        SegmentLog::open(dir.path()).unwrap();
        let f = OpenOptions::new().write(true).open(&victim).unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len - 1).unwrap();
        assert!(matches!(
            SegmentLog::open(dir.path()),
            Err(SegmentLogError::Corrupt { .. })
        ));
    }

    #[test]
    fn corruption_is_detected_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(1 << 20)).unwrap();
        fill(&mut log, 0, 5);
        let pos = log.segments[0].positions[2];
        flip_byte(&log.segments[0].path.clone(), pos + 13);
        assert!(matches!(
            log.read(2),
            Err(SegmentLogError::Corrupt { offset: 2, .. })
        ));
        assert_eq!(log.read(1).unwrap(), Some(rec(1)));
    }

    #[test]
    fn missing_middle_segment_is_a_gap() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(200)).unwrap();
        fill(&mut log, 0, 60);
        let victim = log.segments[2].path.clone();
        drop(log);
        fs::remove_file(&victim).unwrap();
        assert!(matches!(
            SegmentLog::open(dir.path()),
            Err(SegmentLogError::Gap { .. })
        ));
    }

    #[test]
    fn bad_names_and_headers_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(200)).unwrap();
        fill(&mut log, 0, 30);
        let first = log.segments[0].path.clone();
        drop(log);
        fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        SegmentLog::open(dir.path()).unwrap();

        fs::write(dir.path().join("7.seg"), b"").unwrap();
        assert!(matches!(
            SegmentLog::open(dir.path()),
            Err(SegmentLogError::BadSegmentName { .. })
        ));
        fs::remove_file(dir.path().join("7.seg")).unwrap();

        flip_byte(&first, 1);
        assert!(matches!(
            SegmentLog::open(dir.path()),
            Err(SegmentLogError::BadHeader { .. })
        ));
        flip_byte(&first, 1);
        flip_byte(&first, 8);
        assert!(matches!(
            SegmentLog::open(dir.path()),
            Err(SegmentLogError::BadHeader { .. })
        ));
    }

    #[test]
    fn torn_header_of_new_last_segment_is_reset() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(200)).unwrap();
        fill(&mut log, 0, 30);
        log.sync().unwrap();
        let next = log.next_offset();
        drop(log);
        // A roll interrupted right after creating the file.
        let torn = dir.path().join(segment_file_name(next));
        fs::write(&torn, b"SHEN").unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(200)).unwrap();
        check_all(&log, 30);
        fill(&mut log, 30, 40);
        drop(log);
        check_all(&SegmentLog::open(dir.path()).unwrap(), 40);
    }

    #[test]
    fn truncate_from_removes_later_segments() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SegmentLogConfig {
            segment_bytes: 200,
            write_buffer_bytes: 64,
        };
        let mut log = SegmentLog::open_with(dir.path(), cfg).unwrap();
        fill(&mut log, 0, 80);
        let segments = log.segment_paths().len();
        log.truncate_from(500).unwrap(); // past the end: nothing happens
        assert_eq!(log.next_offset(), 80);

        // Into the middle of an older segment.
        let cut = log.segments[2].base + 1;
        log.truncate_from(cut).unwrap();
        assert_eq!(log.durable_offset(), cut);
        check_all(&log, cut);
        assert_eq!(log.segment_paths().len(), 3);
        for s in &log.segments[3..] {
            assert!(!s.path.exists());
        }
        let on_disk = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(on_disk, 3);
        assert!(segments > 3);
        // Appends reuse the offsets; reopen sees the new records.
        fill(&mut log, cut, 100);
        drop(log);
        let mut log = SegmentLog::open_with(dir.path(), cfg).unwrap();
        check_all(&log, 100);

        // Exactly at a segment boundary: that segment stays, emptied.
        let boundary = log.segments[4].base;
        log.truncate_from(boundary).unwrap();
        check_all(&log, boundary);
        assert_eq!(log.segment_paths().len(), 5);
        fill(&mut log, boundary, boundary + 3);
        drop(log);
        let mut log = SegmentLog::open_with(dir.path(), cfg).unwrap();
        check_all(&log, boundary + 3);

        // Everything.
        log.truncate_from(0).unwrap();
        check_all(&log, 0);
        drop(log);
        let log = SegmentLog::open(dir.path()).unwrap();
        check_all(&log, 0);
        assert_eq!(log.segment_paths().len(), 1);
    }

    #[test]
    fn records_over_the_limit_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open(dir.path()).unwrap();
        let max = vec![3u8; MAX_RECORD_LEN];
        assert_eq!(log.append(&max).unwrap(), 0);
        let err = log.append(&vec![3u8; MAX_RECORD_LEN + 1]).unwrap_err();
        assert!(
            matches!(err, SegmentLogError::RecordTooLarge(RecordTooLarge { len, .. }) if len == MAX_RECORD_LEN + 1),
            "{err}"
        );
        // Not poisoned, nothing appended.
        assert_eq!(log.append(b"").unwrap(), 1);
        log.sync().unwrap();
        drop(log);
        let log = SegmentLog::open(dir.path()).unwrap();
        assert_eq!(log.read(0).unwrap(), Some(max));
        assert_eq!(log.read(1).unwrap(), Some(vec![]));
        assert_eq!(log.next_offset(), 2);
    }

    #[test]
    fn poisoned_after_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = SegmentLog::open_with(dir.path(), tiny(100)).unwrap();
        fill(&mut log, 0, 3);
        // Make rolling fail: a directory where the next segment file goes.
        let mut next = log.next_offset();
        let mut blocked = false;
        for i in 3..50 {
            fs::create_dir_all(dir.path().join(segment_file_name(next))).ok();
            match log.append(&rec(i)) {
                Ok(_) => next = log.next_offset(),
                Err(SegmentLogError::Io { .. }) => {
                    blocked = true;
                    break;
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(blocked);
        assert!(matches!(
            log.append(b"x"),
            Err(SegmentLogError::Poisoned { .. })
        ));
        assert!(matches!(log.sync(), Err(SegmentLogError::Poisoned { .. })));
        // Reads still work.
        assert_eq!(log.read(0).unwrap(), Some(rec(0)));
    }

    /// The same random operations on a `SegmentLog` and a `MemoryLog` give
    /// the same log; a reopen behaves like a crash keeping un-synced records.
    #[test]
    fn matches_memory_log() {
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        let dir = tempfile::tempdir().unwrap();
        for seed in 0..4u64 {
            let path = dir.path().join(format!("s{seed}"));
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let cfg = SegmentLogConfig {
                segment_bytes: 64 + rng.next_u64() % 400,
                write_buffer_bytes: (rng.next_u64() % 300) as usize,
            };
            let mut file = SegmentLog::open_with(&path, cfg).unwrap();
            let mut mem = MemoryLog::new();
            for _ in 0..400 {
                match rng.next_u32() % 20 {
                    0..=11 => {
                        let len = (rng.next_u32() % 80) as usize;
                        let mut r = vec![0u8; len];
                        rng.fill_bytes(&mut r);
                        assert_eq!(file.append(&r).unwrap(), mem.append(&r).unwrap());
                    }
                    12..=14 => {
                        file.sync().unwrap();
                        mem.sync().unwrap();
                        assert_eq!(file.durable_offset(), mem.durable_offset());
                    }
                    15..=16 => {
                        let o = rng.next_u64() % (mem.next_offset() + 3);
                        file.truncate_from(o).unwrap();
                        mem.truncate_from(o).unwrap();
                    }
                    17 => {
                        drop(file);
                        file = SegmentLog::open_with(&path, cfg).unwrap();
                        mem.crash(true);
                        assert_eq!(file.durable_offset(), mem.durable_offset());
                    }
                    _ => {
                        let o = rng.next_u64() % (mem.next_offset() + 2);
                        assert_eq!(file.read(o).unwrap(), mem.read(o).unwrap());
                    }
                }
                assert_eq!(file.next_offset(), mem.next_offset());
                assert!(file.durable_offset() >= mem.durable_offset());
            }
            for o in 0..mem.next_offset() {
                assert_eq!(file.read(o).unwrap(), mem.read(o).unwrap());
            }
        }
    }
}
