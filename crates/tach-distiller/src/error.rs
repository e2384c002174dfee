//! Errors: [`DefinitionError`] for definition files (fatal at start-up) and
//! [`NotificationError`] for notifications that cannot be distilled (poison messages).

use std::fmt;
use std::path::PathBuf;

/// A definition file that cannot be loaded; the message names the file, the definition
/// (0-based, with its `event_type`), the trait and the line where it can.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    /// The file could not be read.
    #[error("cannot read event definitions from {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML.
    #[error("{}: invalid YAML: {message} (line {line}, column {column})", origin.display())]
    Syntax {
        /// The file (or the name given to the text).
        origin: PathBuf,
        /// What the YAML parser said.
        message: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
    },
    /// The document as a whole is wrong (not a list of definitions).
    #[error("{}: {message}{}", origin.display(), At(*line))]
    File {
        /// The file.
        origin: PathBuf,
        /// What is wrong.
        message: String,
        /// 1-based line, 0 when unknown.
        line: u64,
    },
    /// One definition is wrong outside its traits.
    #[error("{}: definition #{index}{}: {message}{}", origin.display(), EventTypeNote(event_type), At(*line))]
    Definition {
        /// The file.
        origin: PathBuf,
        /// 0-based position of the definition in the file.
        index: usize,
        /// The definition's `event_type` as written, if it has a readable one.
        event_type: Option<String>,
        /// What is wrong.
        message: String,
        /// 1-based line, 0 when unknown.
        line: u64,
    },
    /// One trait of a definition is wrong.
    #[error(
        "{}: definition #{index}{}: trait `{trait_name}`: {message}{}",
        origin.display(), EventTypeNote(event_type), At(*line)
    )]
    Trait {
        /// The file.
        origin: PathBuf,
        /// 0-based position of the definition in the file.
        index: usize,
        /// The definition's `event_type` as written, if it has a readable one.
        event_type: Option<String>,
        /// The trait's name.
        trait_name: String,
        /// What is wrong.
        message: String,
        /// 1-based line, 0 when unknown.
        line: u64,
    },
}

/// Renders ` (line N)` for known lines.
struct At(u64);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0 {
            write!(f, " (line {})", self.0)
        } else {
            Ok(())
        }
    }
}

/// Renders ` (event_type X)` when known.
struct EventTypeNote<'a>(&'a Option<String>);

impl fmt::Display for EventTypeNote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(event_type) => write!(f, " (event_type {event_type})"),
            None => Ok(()),
        }
    }
}

/// A notification that cannot be distilled: a poison message, never silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// The bytes are not JSON.
    #[error("not valid JSON: {0}")]
    InvalidJson(String),
    /// The JSON is not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// No `event_type` key.
    #[error("no event_type")]
    NoEventType,
    /// `event_type` is not a string.
    #[error("event_type is not a string")]
    EventTypeNotString,
    /// No `message_id` key.
    #[error("no message_id")]
    NoMessageId,
    /// `message_id` is not a string.
    #[error("message_id is not a string")]
    MessageIdNotString,
    /// An oslo.messaging envelope whose version is not 2.0.
    #[error("unsupported oslo.version {0} (expected 2.0)")]
    EnvelopeVersion(String),
    /// An oslo.messaging envelope whose `oslo.message` is not a string.
    #[error("oslo.message is not a JSON string")]
    EnvelopeNotString,
    /// An oslo.messaging envelope whose `oslo.message` string is not JSON.
    #[error("oslo.message is not valid JSON: {0}")]
    EnvelopeInvalidJson(String),
    /// An oslo.messaging envelope whose `oslo.message` is not a JSON object.
    #[error("oslo.message is not a JSON object")]
    EnvelopeNotAnObject,
    /// JSON nested deeper than the distiller accepts.
    #[error("nested deeper than {0} levels")]
    TooDeep(usize),
    /// A flat event without `timestamp`.
    #[error("no timestamp")]
    NoTimestamp,
    /// A flat event whose `timestamp` is not a datetime.
    #[error("timestamp {0} is not a datetime")]
    BadTimestamp(String),
    /// A flat event with a trait that is neither a string nor a number.
    #[error("trait `{0}` is neither a string nor a number")]
    BadTraitValue(String),
}
