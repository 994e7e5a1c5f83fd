//! The one error type of the crate. Every user-facing failure is an [`Error`]: a
//! one-line message that names the file, line or setting at fault and says what to
//! do, plus the [`ErrorKind`] that decides the process exit code (dbt's codes).

use std::fmt;

/// What went wrong, which decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad command line, settings or project (exit 2, nothing was run).
    Usage,
    /// The run could not complete: database unreachable, authentication failed,
    /// interrupted, a node failed (exit 1).
    Runtime,
}

/// A user-facing error: a kind and a one-line message.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    /// A settings, project or template error (exit code 2).
    pub fn usage(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Usage,
            message: message.into(),
        }
    }

    /// A failure while running against the database (exit code 1).
    pub fn runtime(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Runtime,
            message: message.into(),
        }
    }

    /// The process exit code for this error: 2 for usage, 1 for runtime.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Usage => 2,
            ErrorKind::Runtime => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
