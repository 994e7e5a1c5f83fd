//! Database errors as the user reads them: one line with the server's message,
//! detail and hint, where in the compiled SQL it points, and for a missing
//! privilege the grant that gives it.

use tokio_postgres::error::SqlState;

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

/// Who ran a statement that was refused a privilege, and the schema it builds in.
pub(crate) struct Privilege<'a> {
    pub(crate) role: &'a str,
    pub(crate) builds_in: &'a str,
}

/// A database error of a node's statement as its failure, with the SQLSTATE and,
/// for a missing privilege, the grant that fixes it.
pub(crate) fn sql_failure(
    e: &tokio_postgres::Error,
    statement: &str,
    privilege: Option<&Privilege<'_>>,
) -> crate::results::NodeFailure {
    let mut message = describe_db_error(e, statement);
    if let Some(grant) = privilege.and_then(|p| missing_grant(e, p)) {
        message.push_str(&format!("; {grant}"));
    }
    crate::results::NodeFailure::Sql {
        sqlstate: e.code().map(|c| c.code().to_string()),
        message,
    }
}

/// For `permission denied for schema x`: the grant, naming the role, that the
/// schema's owner or a superuser runs to give the missing privilege (CREATE too
/// when the model is built in that schema).
pub(crate) fn missing_grant(e: &tokio_postgres::Error, p: &Privilege<'_>) -> Option<String> {
    let db = e.as_db_error()?;
    if *db.code() != SqlState::INSUFFICIENT_PRIVILEGE {
        return None;
    }
    let role = ident(p.role);
    let message = db.message();
    if let Some(schema) = message.strip_prefix("permission denied for schema ") {
        let what = if schema == p.builds_in {
            "usage, create"
        } else {
            "usage"
        };
        return Some(format!(
            "role {role} lacks a privilege on schema {schema}: have its owner or a superuser run `grant {what} on schema {} to {role}`",
            ident(schema)
        ));
    }
    None
}

/// An identifier as SQL needs it: bare when it is a plain lower-case name, else
/// double-quoted.
fn ident(name: &str) -> String {
    let plain = name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        crate::manifest::quote_ident(name)
    }
}
