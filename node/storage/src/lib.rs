//! `shen-storage`: the files under a node's data directory — the fsyncing
//! Obelisk cell, the segmented write-ahead log, and atomic file replacement.

#![warn(missing_docs)]

mod atomic_file;
mod file_cell;
mod fsutil;
mod record_file;
mod segment_log;

pub use atomic_file::write_atomic;
pub use file_cell::{FileCell, FileCellError, DEFAULT_FILE_NAME, SLOT_B_OFFSET, SLOT_LEN};
pub use record_file::RecordFile;
pub use segment_log::{
    segment_file_name, SegmentLog, SegmentLogConfig, SegmentLogError, DEFAULT_SEGMENT_BYTES,
    DEFAULT_WRITE_BUFFER_BYTES, FRAME_HEADER_LEN, SEGMENT_HEADER_LEN, SEGMENT_SUFFIX,
};
