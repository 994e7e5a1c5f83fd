//! The output formats: PostgreSQL COPY text (tab separated, `\N` for NULL,
//! escaped) built row by row in chunks, and the JSON objects of the `jsonb`
//! columns.

use std::fmt::Write as _;

use super::calendar::{push_date, push_int, push_timestamp};
use super::{Micros, CHUNK_BYTES};

/// Appends `value` to `out` escaped for a field of PostgreSQL's COPY text format:
/// backslash, tab, newline and carriage return become `\\`, `\t`, `\n`, `\r`. (The
/// generator never produces NUL characters, which PostgreSQL text cannot hold.)
pub(super) fn push_copy_escaped(out: &mut String, value: &str) {
    // Fast path: most values need no escaping at all.
    if !value
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
    {
        out.push_str(value);
        return;
    }
    for ch in value.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// Builds COPY text row by row and hands full chunks to the sink.
pub(super) struct CopyWriter<F: FnMut(&str)> {
    buf: String,
    field: usize,
    columns: usize,
    rows: usize,
    sink: F,
}

impl<F: FnMut(&str)> CopyWriter<F> {
    pub(super) fn new(columns: usize, sink: F) -> Self {
        CopyWriter {
            buf: String::with_capacity(CHUNK_BYTES + 64 * 1024),
            field: 0,
            columns,
            rows: 0,
            sink,
        }
    }

    fn sep(&mut self) {
        if self.field > 0 {
            self.buf.push('\t');
        }
        self.field += 1;
    }

    pub(super) fn null(&mut self) {
        self.sep();
        self.buf.push_str("\\N");
    }

    pub(super) fn text(&mut self, s: &str) {
        self.sep();
        push_copy_escaped(&mut self.buf, s);
    }

    pub(super) fn opt_text(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    pub(super) fn int(&mut self, v: i64) {
        self.sep();
        push_int(&mut self.buf, v);
    }

    pub(super) fn opt_int(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int(v),
            None => self.null(),
        }
    }

    pub(super) fn boolean(&mut self, b: bool) {
        self.sep();
        self.buf.push(if b { 't' } else { 'f' });
    }

    pub(super) fn opt_bool(&mut self, b: Option<bool>) {
        match b {
            Some(b) => self.boolean(b),
            None => self.null(),
        }
    }

    pub(super) fn ts(&mut self, t: Micros) {
        self.sep();
        push_timestamp(&mut self.buf, t);
    }

    pub(super) fn opt_ts(&mut self, t: Option<Micros>) {
        match t {
            Some(t) => self.ts(t),
            None => self.null(),
        }
    }

    pub(super) fn date(&mut self, day: i64) {
        self.sep();
        push_date(&mut self.buf, day);
    }

    /// A `numeric` with two decimals from an amount in hundredths.
    pub(super) fn hundredths(&mut self, v: i64) {
        self.sep();
        let sign = if v < 0 { "-" } else { "" };
        let _ = write!(self.buf, "{sign}{}.{:02}", v.abs() / 100, v.abs() % 100);
    }

    pub(super) fn end_row(&mut self) {
        debug_assert_eq!(self.field, self.columns, "wrong number of fields in a row");
        self.buf.push('\n');
        self.field = 0;
        self.rows += 1;
        if self.buf.len() >= CHUNK_BYTES {
            (self.sink)(&self.buf);
            self.buf.clear();
        }
    }

    pub(super) fn finish(mut self) -> usize {
        if !self.buf.is_empty() {
            (self.sink)(&self.buf);
        }
        self.rows
    }
}

/// Appends `s` as a JSON string literal.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    push_json_str_body(out, s);
    out.push('"');
}

/// Appends `s` escaped for the inside of a JSON string literal.
fn push_json_str_body(out: &mut String, s: &str) {
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(s);
        return;
    }
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// A small JSON object builder (keys are trusted literals).
pub(super) struct JsonObject<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> JsonObject<'a> {
    pub(super) fn new(out: &'a mut String) -> Self {
        out.push('{');
        JsonObject { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push_str(", ");
        }
        self.first = false;
        push_json_str(self.out, k);
        self.out.push_str(": ");
    }

    pub(super) fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        push_json_str(self.out, v);
        self
    }

    pub(super) fn int(&mut self, k: &str, v: i64) -> &mut Self {
        self.key(k);
        push_int(self.out, v);
        self
    }

    /// A string value made of a prefix and a number, without allocating.
    pub(super) fn raw_str(&mut self, k: &str, prefix: &str, n: i64) -> &mut Self {
        self.key(k);
        self.out.push('"');
        push_json_str_body(self.out, prefix);
        push_int(self.out, n);
        self.out.push('"');
        self
    }

    pub(super) fn boolean(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.out.push_str(if v { "true" } else { "false" });
        self
    }

    pub(super) fn null(&mut self, k: &str) -> &mut Self {
        self.key(k);
        self.out.push_str("null");
        self
    }

    pub(super) fn close(&mut self) {
        self.out.push('}');
    }
}
