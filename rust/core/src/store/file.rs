//! The header every state file the engine writes starts with: a format name and a version,
//! checked before the rest is read (bandit files, policy state and policy deltas).

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Deserialize)]
struct Header {
    format: String,
    version: u32,
}

/// Checks the header of a state file of `format`, readable up to version `newest`; returns
/// the file's version.
pub(crate) fn check_header(json: &str, format: &str, newest: u32) -> Result<u32> {
    let header: Header = serde_json::from_str(json)
        .map_err(|e| Error::InvalidInput(format!("not a {format} file (no format/version header: {e})")))?;
    if header.format != format {
        return Err(Error::InvalidInput(format!("expected a {format} file, got format '{}'", header.format)));
    }
    if header.version == 0 || header.version > newest {
        return Err(Error::InvalidInput(format!(
            "{format} file version {} is not readable by this build (it reads versions 1 to {newest}); \
             upgrade decision-engine to load it",
            header.version
        )));
    }
    Ok(header.version)
}
