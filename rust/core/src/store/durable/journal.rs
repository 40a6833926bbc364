//! An append-only file of framed records: `[length u32 LE][crc32 u32 LE][payload]`.
//!
//! A record is acknowledged once `append` returns: its bytes are in the kernel's page cache,
//! which survives the process being killed (`kill -9`). Surviving a power cut needs an
//! fsync: after every record (`Fsync::Always`), from a background thread every N ms
//! (`Fsync::Interval`), or never (left to the OS). A crash mid-write leaves a torn last
//! record; reading stops at the first frame that is incomplete or fails its checksum.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{Result, io_error};

const HEADER: usize = 8;
/// A frame claiming more than this is corrupt, not a record (1 GiB).
const MAX_RECORD: usize = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fsync {
    Always,
    Interval(Duration),
    Never,
}

pub struct Journal {
    file: Arc<Mutex<File>>,
    fsync: Fsync,
    stop: Arc<AtomicBool>,
    syncer: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Journal {
    /// Opens `path` for appending (creating it).
    pub fn open(path: &Path, fsync: Fsync) -> Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(|e| io_error(path, "open", e))?;
        let file = Arc::new(Mutex::new(file));
        let stop = Arc::new(AtomicBool::new(false));
        let syncer = match fsync {
            Fsync::Interval(every) => {
                let (file, stop) = (Arc::clone(&file), Arc::clone(&stop));
                Some(std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(every);
                        // A clone of the handle, so appends do not wait for the disk.
                        let handle = file.lock().unwrap_or_else(PoisonError::into_inner).try_clone();
                        if let Ok(handle) = handle {
                            let _ = handle.sync_data();
                        }
                    }
                }))
            }
            _ => None,
        };
        Ok(Self { file, fsync, stop, syncer, path: path.to_owned() })
    }

    /// Writes one record in a single `write` call; fsyncs first under `Fsync::Always`.
    pub fn append(&self, payload: &[u8]) -> Result<()> {
        let mut frame = Vec::with_capacity(HEADER + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        frame.extend_from_slice(payload);
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        file.write_all(&frame).map_err(|e| io_error(&self.path, "write to journal", e))?;
        if self.fsync == Fsync::Always {
            file.sync_data().map_err(|e| io_error(&self.path, "fsync journal", e))?;
        }
        Ok(())
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(syncer) = self.syncer.take() {
            let _ = syncer.join();
        }
        let _ = self.file.lock().unwrap_or_else(PoisonError::into_inner).sync_data();
    }
}

/// The records of a journal file, and what was wrong with its tail, if anything.
pub struct JournalRead {
    pub records: Vec<Vec<u8>>,
    /// Bytes after the last good record (a torn or corrupt tail), cut off the file.
    pub discarded: usize,
    pub warning: Option<String>,
}

/// Reads every good record of `path` (none if it does not exist) and truncates a torn tail
/// so later appends follow the last good record.
pub fn read_and_repair(path: &Path) -> Result<JournalRead> {
    let mut bytes = Vec::new();
    match File::open(path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes).map_err(|e| io_error(path, "read", e))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(path, "open", e)),
    }
    let mut records = Vec::new();
    let mut at = 0;
    let mut warning = None;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER {
            warning = Some(format!("torn record header at byte {at} ({} bytes)", rest.len()));
            break;
        }
        let length = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
        if length > MAX_RECORD || rest.len() < HEADER + length {
            warning =
                Some(format!("torn record at byte {at}: {length} bytes announced, {} present", rest.len() - HEADER));
            break;
        }
        let payload = &rest[HEADER..HEADER + length];
        if crc32fast::hash(payload) != crc {
            warning = Some(format!("record at byte {at} fails its checksum"));
            break;
        }
        records.push(payload.to_vec());
        at += HEADER + length;
    }
    let discarded = bytes.len() - at;
    if discarded > 0 {
        let file = OpenOptions::new().write(true).open(path).map_err(|e| io_error(path, "open", e))?;
        file.set_len(at as u64).map_err(|e| io_error(path, "truncate", e))?;
        file.sync_all().map_err(|e| io_error(path, "fsync", e))?;
    }
    Ok(JournalRead { records, discarded, warning })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_tail_is_cut_and_earlier_records_kept() {
        let dir = std::env::temp_dir().join(format!("journal-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("j.log");
        let _ = std::fs::remove_file(&path);
        {
            let journal = Journal::open(&path, Fsync::Never).unwrap();
            journal.append(b"first").unwrap();
            journal.append(b"second").unwrap();
        }
        let full = std::fs::read(&path).unwrap();
        // A crash in the middle of writing a third record.
        let mut torn = full.clone();
        torn.extend_from_slice(&[9, 0, 0, 0, 1, 2, 3, 4, b't']);
        std::fs::write(&path, &torn).unwrap();
        let read = read_and_repair(&path).unwrap();
        assert_eq!(read.records, [b"first".to_vec(), b"second".to_vec()]);
        assert_eq!(read.discarded, 9);
        assert!(read.warning.unwrap().contains("torn record"));
        assert_eq!(std::fs::read(&path).unwrap(), full, "the tail is cut off");
        // A flipped bit in the last record fails its checksum.
        let mut corrupt = full.clone();
        *corrupt.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &corrupt).unwrap();
        let read = read_and_repair(&path).unwrap();
        assert_eq!(read.records, [b"first".to_vec()]);
        assert!(read.warning.unwrap().contains("checksum"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
