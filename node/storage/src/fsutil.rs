//! Small file-system helpers shared by the durable stores (`file_cell`,
//! `segment_log`): positioned writes and reads, and making a directory
//! entry durable.

use std::fs::File;
use std::io;
use std::path::Path;

/// Make a directory entry (a created, renamed or removed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
    }
    Ok(())
}

/// Write all of `buf` at byte position `pos`.
#[cfg(unix)]
pub(crate) fn write_at(file: &File, buf: &[u8], pos: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(buf, pos)
}

/// Write all of `buf` at byte position `pos`.
#[cfg(not(unix))]
pub(crate) fn write_at(mut file: &File, buf: &[u8], pos: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    file.seek(SeekFrom::Start(pos))?;
    file.write_all(buf)
}

/// Fill `buf` from byte position `pos`.
#[cfg(unix)]
pub(crate) fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, pos)
}

/// Fill `buf` from byte position `pos`.
#[cfg(not(unix))]
pub(crate) fn read_at(mut file: &File, buf: &mut [u8], pos: u64) -> io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(pos))?;
    file.read_exact(buf)
}
