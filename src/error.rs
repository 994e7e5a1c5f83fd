//! The error of a command: what went wrong ([`ErrorKind`], which decides the exit
//! code), where ([`Location`]: file, line, node, as data) and a one-line message
//! that says what to do. Its `Display` is the line the user sees:
//! `models/a.sql line 3: unknown function 'x'; define the macro …`.
//!
//! Failures of single nodes while a job runs are not errors of the command: they
//! are [`crate::results::NodeFailure`]s, recorded per node.

use std::fmt;

/// What went wrong, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// Bad command line, settings or project (exit 2, nothing was run).
    Usage,
    /// The run could not complete: database unreachable, authentication failed, a
    /// file could not be written (exit 1).
    Runtime,
    /// SIGINT or SIGTERM stopped the command (exit 1).
    Interrupted,
}

/// Where an error is: a file of the project (or a settings file), optionally a
/// line of it and the node it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) file: String,
    pub(crate) line: Option<usize>,
    pub(crate) node: Option<String>,
}

/// A user-facing error.
#[derive(Debug, Clone)]
pub(crate) struct Error {
    pub(crate) kind: ErrorKind,
    /// What went wrong and what to do, without the location.
    pub(crate) message: String,
    pub(crate) location: Option<Location>,
}

impl Error {
    /// A settings, project or template error (exit code 2).
    pub(crate) fn usage(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Usage,
            message: message.into(),
            location: None,
        }
    }

    /// A failure while running against the database or the file system (exit 1).
    pub(crate) fn runtime(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Runtime,
            message: message.into(),
            location: None,
        }
    }

    /// The command was stopped by a signal during `phase` (exit 1).
    pub(crate) fn interrupted(phase: &str) -> Error {
        Error {
            kind: ErrorKind::Interrupted,
            message: format!("interrupted {phase}"),
            location: None,
        }
    }

    /// A usage error in `file` (exit code 2).
    pub(crate) fn in_file(file: impl Into<String>, message: impl Into<String>) -> Error {
        Error::usage(message).at(file, None)
    }

    /// The same error, located at `file` (and `line`).
    pub(crate) fn at(mut self, file: impl Into<String>, line: Option<usize>) -> Error {
        self.location = Some(Location {
            file: file.into(),
            line,
            node: None,
        });
        self
    }

    /// The same error, attributed to node `unique_id` as well.
    pub(crate) fn for_node(mut self, unique_id: &str) -> Error {
        if let Some(l) = &mut self.location {
            l.node = Some(unique_id.to_string());
        }
        self
    }

    /// The process exit code for this error: 2 for usage, 1 otherwise.
    pub(crate) fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Usage => 2,
            ErrorKind::Runtime | ErrorKind::Interrupted => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = &self.location {
            f.write_str(&l.file)?;
            if let Some(line) = l.line {
                write!(f, " line {line}")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;
