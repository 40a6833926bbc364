//! The embedded store's files: a journal of state changes and periodic snapshots in one
//! directory. The engine writes and replays them (`engine/durable.rs`); this module knows
//! the formats and the files.
//!
//! Layout: `snapshot.bin` (the state when journal generation G began) and `journal-G.log`
//! (every change since). A snapshot is written to a temporary file, fsynced and renamed, then
//! generation G+1 starts and G's journal is deleted; a crash anywhere in between leaves a
//! snapshot and the journal that continues it.

mod journal;
mod records;

pub use journal::{Fsync, Journal, read_and_repair};
pub use records::{PendingRecord, Record, SNAPSHOT_FORMAT, SNAPSHOT_VERSION, Snapshot, encode};

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io_error};

/// Marks a snapshot file, before the version and the postcard body.
const MAGIC: &[u8; 8] = b"DESNAP\x00\x01";

#[derive(Debug, Clone)]
pub struct DurableOptions {
    pub dir: PathBuf,
    pub fsync: Fsync,
    /// Journal records between snapshots.
    pub snapshot_every: u64,
}

/// What recovery found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecoveryReport {
    pub snapshot_loaded: bool,
    pub generation: u64,
    pub replayed: usize,
    /// Journal records that no longer apply (e.g. an offer removed from the catalog).
    pub skipped: usize,
    /// Bytes of a torn or corrupt journal tail that were cut off.
    pub discarded_bytes: usize,
    pub warning: Option<String>,
}

pub fn journal_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("journal-{generation}.log"))
}

fn snapshot_path(dir: &Path) -> PathBuf {
    dir.join("snapshot.bin")
}

/// Writes a snapshot atomically (temporary file, fsync, rename, fsync of the directory).
pub fn write_snapshot(dir: &Path, snapshot: &Snapshot) -> Result<()> {
    let path = snapshot_path(dir);
    let tmp = dir.join("snapshot.tmp");
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&encode(snapshot));
    let mut file = File::create(&tmp).map_err(|e| io_error(&tmp, "create", e))?;
    file.write_all(&bytes).and_then(|()| file.sync_all()).map_err(|e| io_error(&tmp, "write", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, "rename to", e))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, "fsync", e))?;
    Ok(())
}

/// The snapshot in `dir`, if there is one.
pub fn read_snapshot(dir: &Path) -> Result<Option<Snapshot>> {
    let path = snapshot_path(dir);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&path, "read", e)),
    };
    if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Error::InvalidInput(format!("{} is not a decision-engine snapshot", path.display())));
    }
    let version = u32::from_le_bytes(bytes[MAGIC.len()..MAGIC.len() + 4].try_into().expect("4 bytes"));
    let body = &bytes[MAGIC.len() + 4..];
    let damaged = |e: postcard::Error| Error::Storage(format!("{} is damaged: {e}", path.display()));
    match version {
        SNAPSHOT_VERSION => Ok(Some(postcard::from_bytes::<Snapshot>(body).map_err(damaged)?)),
        1 => Ok(Some(postcard::from_bytes::<records::SnapshotV1>(body).map_err(damaged)?.into())),
        _ => Err(Error::Storage(format!(
            "{} is snapshot version {version}; this build reads versions 1 to {SNAPSHOT_VERSION}",
            path.display()
        ))),
    }
}

/// Deletes journals of generations other than `keep`.
pub fn remove_old_journals(dir: &Path, keep: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let generation = name.strip_prefix("journal-").and_then(|n| n.strip_suffix(".log"));
        if generation.and_then(|g| g.parse::<u64>().ok()).is_some_and(|g| g != keep) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
