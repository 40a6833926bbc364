//! One error type for the whole core; the binding maps each variant to a Python exception.

use std::fmt;

/// Where in the catalog a problem sits, so the loader can point at the YAML line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Catalog,
    Feature(String),
    Channel(String),
    Placement(String),
    Offer(String),
    /// An entry of the catalog's `events:` section, by event type.
    Event(String),
    /// The catalog's `profiles:` section.
    Profiles,
    Trigger(String),
}

impl Location {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Catalog => "catalog",
            Self::Feature(_) => "feature",
            Self::Channel(_) => "channel",
            Self::Placement(_) => "placement",
            Self::Offer(_) => "offer",
            Self::Event(_) => "event",
            Self::Profiles => "profiles",
            Self::Trigger(_) => "trigger",
        }
    }

    pub fn item(&self) -> Option<&str> {
        match self {
            Self::Catalog | Self::Profiles => None,
            Self::Feature(s)
            | Self::Channel(s)
            | Self::Placement(s)
            | Self::Offer(s)
            | Self::Event(s)
            | Self::Trigger(s) => Some(s),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.item() {
            Some(item) => write!(f, "{} '{item}'", self.kind()),
            None => f.write_str(self.kind()),
        }
    }
}

/// A 1-based line and column inside a rule's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RulePosition {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{location}: {detail}")]
    Catalog { location: Location, detail: String },

    #[error("{location}: rule {}:{}: {detail}", position.line, position.column)]
    Rule { location: Location, position: RulePosition, detail: String },

    #[error("{0}")]
    InvalidInput(String),

    #[error("unknown placement '{0}'")]
    UnknownPlacement(String),

    #[error("unknown offer '{0}'")]
    UnknownOffer(String),

    #[error("unknown profile '{0}' (never written, deleted, or let go after its idle time)")]
    UnknownProfile(String),

    #[error("unknown decision id {0} (never issued, already settled, or it showed no offer)")]
    UnknownDecision(u64),

    #[error("outcome for offer '{offer}' of decision {decision_id} was already reported")]
    AlreadyReported { decision_id: u64, offer: String },

    #[error("decision {0} is settled: every offer it showed has its outcome, or it was released")]
    AlreadySettled(u64),

    /// Reading or writing the engine's state failed (disk full, permissions, a damaged
    /// file): the server's fault, not the request's.
    #[error("{0}")]
    Storage(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A storage error naming what was being done to which file.
/// A storage error naming the file: "{what} {path}: {err}".
pub fn io_error(path: &std::path::Path, what: &str, err: std::io::Error) -> Error {
    Error::Storage(format!("{what} {}: {err}", path.display()))
}

pub(crate) fn catalog_error(location: Location, detail: impl Into<String>) -> Error {
    Error::Catalog { location, detail: detail.into() }
}
