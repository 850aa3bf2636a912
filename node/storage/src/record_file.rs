//! One small record kept in a file and replaced atomically: the durable home of Cartouche's acceptor state on a real node.

use std::path::{Path, PathBuf};

use crate::write_atomic;

/// A record in one file. [`RecordFile::store`] replaces it with
/// [`write_atomic`] (temporary file, fsync, rename, directory fsync), so a
/// crash leaves the old record or the new one, never a mix; a missing file
/// is "never stored", any other read error is an error.
#[derive(Debug)]
pub struct RecordFile {
    path: PathBuf,
}

impl RecordFile {
    /// The record at `path` (the file need not exist yet).
    pub fn new(path: impl AsRef<Path>) -> RecordFile {
        RecordFile {
            path: path.as_ref().to_path_buf(),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The record last stored, `None` if the file does not exist.
    pub fn load(&self) -> Result<Option<Vec<u8>>, String> {
        match std::fs::read(&self.path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", self.path.display())),
        }
    }

    /// Replace the record; returns once it is durable.
    pub fn store(&self, record: &[u8]) -> Result<(), String> {
        write_atomic(&self.path, record)
    }
}

impl shen_rings::cartouche::AcceptorStore for RecordFile {
    fn load(&mut self) -> Result<Option<Vec<u8>>, String> {
        RecordFile::load(self)
    }

    fn store(&mut self, record: &[u8]) -> Result<(), String> {
        RecordFile::store(self, record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_file_stores_replaces_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let f = RecordFile::new(dir.path().join("cartouche-acceptor"));
        assert_eq!(f.load().unwrap(), None);
        f.store(b"one").unwrap();
        assert_eq!(f.load().unwrap().as_deref(), Some(&b"one"[..]));
        f.store(b"two, longer").unwrap();
        let again = RecordFile::new(f.path());
        assert_eq!(again.load().unwrap().as_deref(), Some(&b"two, longer"[..]));
    }

    #[test]
    fn an_unreadable_record_is_an_error_not_none() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be cannot be read as a record.
        let p = dir.path().join("rec");
        std::fs::create_dir(&p).unwrap();
        let e = RecordFile::new(&p).load().unwrap_err();
        assert!(e.contains("rec"), "{e}");
    }
}
