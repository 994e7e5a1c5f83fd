//! Database errors as the user reads them: one line with the server's message,
//! detail and hint, and where in the compiled SQL it points.

/// A database error as one line: the server's message, detail and hint, and for
/// errors inside a model's SQL the line of the compiled SQL they point at
/// (`statement` is the statement that failed; its first line is a header).
pub(crate) fn describe_db_error(e: &tokio_postgres::Error, statement: &str) -> String {
    let Some(db) = e.as_db_error() else {
        let cause = std::error::Error::source(e)
            .map(|c| c.to_string())
            .unwrap_or_default();
        return if cause.is_empty() {
            e.to_string()
        } else {
            format!("{e}: {cause}")
        };
    };
    let mut msg = db.message().to_string();
    if let Some(tokio_postgres::error::ErrorPosition::Original(pos)) = db.position() {
        let before: String = statement
            .chars()
            .take((*pos as usize).saturating_sub(1))
            .collect();
        let line = before.matches('\n').count(); // statement line minus the header
        if line > 0 {
            msg.push_str(&format!(" (compiled SQL line {line})"));
        }
    }
    if let Some(d) = db.detail() {
        msg.push_str(&format!("; {d}"));
    }
    if let Some(h) = db.hint() {
        msg.push_str(&format!("; hint: {h}"));
    }
    msg.replace('\n', " ")
}

/// A database error of a node's statement as its failure, with the SQLSTATE.
pub(crate) fn sql_failure(
    e: &tokio_postgres::Error,
    statement: &str,
) -> crate::results::NodeFailure {
    crate::results::NodeFailure::Sql {
        sqlstate: e.code().map(|c| c.code().to_string()),
        message: describe_db_error(e, statement),
    }
}
