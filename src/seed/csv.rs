//! CSV records as dbt reads a seed: the file decoded as UTF-8 (a leading BOM
//! skipped), `\r\n` and lone `\r` read as `\n`, then split into records with the
//! quoting rules of Python's `csv` module in its default dialect (what agate
//! uses): `"` quotes a field, `""` inside quotes is one quote, a quote inside an
//! unquoted field is an ordinary character, characters after a closing quote
//! join the field, a newline inside quotes belongs to the field, and an empty
//! line is a record with no fields. A field may not exceed 131072 characters.
//! Written for this purpose rather than taken from a crate so that those rules
//! are exactly Python's (a CSV crate reads blank lines and quote quirks its own
//! way); it streams, holding one record at a time.

use std::io::BufRead;

/// Python's default `csv.field_size_limit()`.
const FIELD_LIMIT: usize = 131_072;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuotedField,
    QuoteInQuotedField,
    EatNewline,
}

/// Reads records one at a time.
pub(crate) struct Reader<R> {
    input: R,
    delimiter: char,
    raw: Vec<u8>,
    /// Physical lines read so far (1-based line of the last one).
    line: u64,
    first: bool,
    eof: bool,
    /// Lines (ending in `\n`) waiting to be parsed, split at lone `\r`.
    pending: std::collections::VecDeque<String>,
}

impl<R: BufRead> Reader<R> {
    pub(crate) fn new(input: R, delimiter: char) -> Reader<R> {
        Reader {
            input,
            delimiter,
            raw: Vec::new(),
            line: 0,
            first: true,
            eof: false,
            pending: Default::default(),
        }
    }

    /// The line the reader has reached (for messages).
    pub(crate) fn line(&self) -> u64 {
        self.line
    }

    /// The next logical line (ending in `\n` unless it is the file's last).
    fn next_line(&mut self) -> Result<Option<String>, String> {
        if let Some(l) = self.pending.pop_front() {
            self.line += 1;
            return Ok(Some(l));
        }
        if self.eof {
            return Ok(None);
        }
        self.raw.clear();
        let n = self
            .input
            .read_until(b'\n', &mut self.raw)
            .map_err(|e| format!("cannot read the file: {e}"))?;
        if n == 0 {
            self.eof = true;
            return Ok(None);
        }
        let mut text = String::from_utf8(std::mem::take(&mut self.raw)).map_err(|e| {
            format!(
                "line {}: the file is not valid UTF-8 (byte {} of the line); save it as UTF-8",
                self.line + 1,
                e.utf8_error().valid_up_to() + 1
            )
        })?;
        if self.first {
            self.first = false;
            if let Some(rest) = text.strip_prefix('\u{feff}') {
                text = rest.to_string();
            }
        }
        if !text.contains('\r') {
            self.line += 1;
            return Ok(Some(text));
        }
        // Universal newlines: `\r\n` and a lone `\r` both end a line.
        let mut current = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\r' {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                current.push('\n');
                self.pending.push_back(std::mem::take(&mut current));
            } else {
                current.push(c);
            }
        }
        if !current.is_empty() {
            self.pending.push_back(current);
        }
        self.next_line()
    }

    /// Reads the next record into `fields`; false at the end of the file.
    pub(crate) fn record(&mut self, fields: &mut Vec<String>) -> Result<bool, String> {
        fields.clear();
        let mut field = String::new();
        let mut len = 0usize;
        let mut state = State::StartRecord;
        let d = self.delimiter;
        loop {
            let Some(line) = self.next_line()? else {
                if state == State::StartRecord && fields.is_empty() {
                    return Ok(false);
                }
                // End of data inside a record (an unclosed quote): keep what is there.
                if len != 0 || state == State::InQuotedField {
                    fields.push(std::mem::take(&mut field));
                }
                return Ok(true);
            };
            for c in line.chars() {
                let mut save = false;
                let mut add = None;
                match state {
                    State::StartRecord | State::StartField => {
                        if c == '\n' {
                            if state == State::StartField {
                                save = true;
                            }
                            state = State::EatNewline;
                        } else if c == '"' {
                            state = State::InQuotedField;
                        } else if c == d {
                            save = true;
                            state = State::StartField;
                        } else {
                            add = Some(c);
                            state = State::InField;
                        }
                    }
                    State::InField => {
                        if c == '\n' {
                            save = true;
                            state = State::EatNewline;
                        } else if c == d {
                            save = true;
                            state = State::StartField;
                        } else {
                            add = Some(c);
                        }
                    }
                    State::InQuotedField => {
                        if c == '"' {
                            state = State::QuoteInQuotedField;
                        } else {
                            add = Some(c);
                        }
                    }
                    State::QuoteInQuotedField => {
                        if c == '"' {
                            add = Some(c);
                            state = State::InQuotedField;
                        } else if c == d {
                            save = true;
                            state = State::StartField;
                        } else if c == '\n' {
                            save = true;
                            state = State::EatNewline;
                        } else {
                            add = Some(c);
                            state = State::InField;
                        }
                    }
                    State::EatNewline => {}
                }
                if let Some(c) = add {
                    if len >= FIELD_LIMIT {
                        return Err(format!(
                            "line {}: a field is longer than {FIELD_LIMIT} characters (dbt's limit); shorten it",
                            self.line
                        ));
                    }
                    field.push(c);
                    len += 1;
                }
                if save {
                    fields.push(std::mem::take(&mut field));
                    len = 0;
                }
            }
            // End of the line.
            match state {
                State::StartRecord | State::EatNewline => return Ok(true),
                State::StartField | State::InField | State::QuoteInQuotedField => {
                    fields.push(std::mem::take(&mut field));
                    return Ok(true);
                }
                State::InQuotedField => {} // the record goes on
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str, d: char) -> Vec<Vec<String>> {
        let mut r = Reader::new(text.as_bytes(), d);
        let mut out = Vec::new();
        let mut f = Vec::new();
        while r.record(&mut f).unwrap() {
            out.push(f.clone());
        }
        out
    }

    #[test]
    fn python_csv_rules() {
        assert_eq!(
            records(
                "\u{feff}a,b\r\n1,\"x, \"\"y\"\"\"\n\n3,\"multi\nline\"\r4\n",
                ','
            ),
            vec![
                vec!["a", "b"],
                vec!["1", "x, \"y\""],
                vec![],
                vec!["3", "multi\nline"],
                vec!["4"],
            ]
        );
        assert_eq!(
            records("a\"b,\"c\"d,\"\",\n", ','),
            vec![vec!["a\"b", "cd", "", ""]]
        );
        assert_eq!(
            records("a;b\n1;2", ';'),
            vec![vec!["a", "b"], vec!["1", "2"]]
        );
        assert_eq!(records("\"open\n", ','), vec![vec!["open\n"]]);
    }
}
