//! Seeds: a CSV file read as dbt reads one, its columns' types inferred by dbt's
//! rules (agate's type tester as dbt-common configures it), and its rows as the
//! text PostgreSQL's `COPY … FROM STDIN` reads. The file is read twice and never
//! held in memory: once to infer the types, once to stream the rows.
//!
//! Types (the first that accepts every value of the column; empty and `null`
//! are NULL for all): a column with no values at all is `integer`; numbers
//! (`7`, `-7.25`, `1,234`, `$5.00`, `1e3`) are `integer` unless one has decimal
//! places, then `float8`; `%Y-%m-%d` dates are `date`; `%Y-%m-%d %H:%M:%S`
//! timestamps, or ISO 8601 ones with a `T`, are `timestamp without time zone`;
//! `true`/`false` are `boolean`; anything else is `text`. `column_types`
//! overrides a column's type and sends its values verbatim.

mod csv;

/// A reader of CSV text with Python's `csv` rules and a `,` delimiter (unit test
/// fixtures).
pub(crate) fn csv_reader<R: std::io::BufRead>(input: R) -> csv::Reader<R> {
    csv::Reader::new(input, ',')
}
mod values;

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::PathBuf;

use values::{
    bool_is_null, date_text, is_null, parse_bool, parse_date, parse_datetime, parse_iso_datetime,
    parse_number, timestamp_text,
};

pub(crate) use values::Decimal;

/// How to read one seed's file.
#[derive(Debug, Clone)]
pub(crate) struct SeedFile {
    pub(crate) path: PathBuf,
    /// Its path in the project, for messages (`seeds/countries.csv`).
    pub(crate) display: String,
    pub(crate) delimiter: char,
    /// `column_types`: column name → PostgreSQL type; those columns are text.
    pub(crate) column_types: BTreeMap<String, String>,
}

/// The type dbt infers for a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inferred {
    /// No value at all (only missing ones): `integer`.
    Integer,
    /// Numbers: `float8` if one has decimal places, else `integer`.
    Number {
        decimals: bool,
    },
    Date,
    /// `%Y-%m-%d %H:%M:%S`.
    DateTime,
    /// ISO 8601 with a `T` (possibly with an offset).
    IsoDateTime,
    Boolean,
    Text,
    /// Named in `column_types`: read as text, sent verbatim.
    Forced,
}

impl Inferred {
    /// The PostgreSQL type dbt creates the column with (`None`: `column_types`').
    pub(crate) fn sql_type(self) -> Option<&'static str> {
        Some(match self {
            Inferred::Integer | Inferred::Number { decimals: false } => "integer",
            Inferred::Number { decimals: true } => "double precision",
            Inferred::Date => "date",
            Inferred::DateTime | Inferred::IsoDateTime => "timestamp without time zone",
            Inferred::Boolean => "boolean",
            Inferred::Text => "text",
            Inferred::Forced => return None,
        })
    }

    /// Whether its values are text to PostgreSQL (read by the column type's
    /// input function whatever that type is, as dbt's string parameters are).
    pub(crate) fn sends_text(self) -> bool {
        matches!(self, Inferred::Text | Inferred::Forced | Inferred::Integer)
    }
}

/// What the first reading found.
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// Column names (empty names and duplicates renamed as agate does).
    pub(crate) columns: Vec<String>,
    pub(crate) types: Vec<Inferred>,
    /// Data rows (an empty line is a row of NULLs).
    pub(crate) rows: u64,
}

/// Candidate types, in agate's order of preference.
const NUMBER: u8 = 1;
const DATE: u8 = 2;
const DATETIME: u8 = 4;
const ISO: u8 = 8;
const BOOLEAN: u8 = 16;
/// Integer survives only a column without values.
const INTEGER: u8 = 32;

struct Guess {
    possible: u8,
    max_whole: i64,
    max_decimals: i64,
}

fn open(file: &SeedFile) -> Result<csv::Reader<BufReader<std::fs::File>>, String> {
    let f = std::fs::File::open(&file.path).map_err(|e| format!("cannot open the file: {e}"))?;
    Ok(csv::Reader::new(
        BufReader::with_capacity(256 * 1024, f),
        file.delimiter,
    ))
}

/// The header row as agate names the columns: an empty name becomes a letter
/// name (`a`, `b`, … `aa`), a repeated one gets `_2`, `_3`.
fn column_names(header: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, h) in header.iter().enumerate() {
        let base = if h.is_empty() {
            let letter = (b'a' + (i % 26) as u8) as char;
            letter.to_string().repeat(i / 26 + 1)
        } else {
            h.clone()
        };
        let mut name = base.clone();
        let mut n = 0;
        while out.contains(&name) {
            name = format!("{base}_{}", n + 2);
            n += 1;
        }
        out.push(name);
    }
    out
}

/// First reading: the columns and their types. `check` is called every few
/// thousand rows (cancellation).
pub(crate) fn infer(file: &SeedFile, check: &dyn Fn() -> bool) -> Result<Shape, String> {
    let mut reader = open(file)?;
    let mut record = Vec::new();
    if !reader.record(&mut record)? {
        return Err("the file is empty; a seed needs a header row".into());
    }
    let columns = column_names(&record);
    let mut guesses: Vec<Guess> = columns
        .iter()
        .map(|_| Guess {
            possible: NUMBER | DATE | DATETIME | ISO | BOOLEAN | INTEGER,
            max_whole: 1,
            max_decimals: 0,
        })
        .collect();
    let forced: Vec<bool> = columns
        .iter()
        .map(|c| file.column_types.contains_key(c))
        .collect();
    let mut rows = 0u64;
    while reader.record(&mut record)? {
        rows += 1;
        if rows % 4096 == 0 && !check() {
            return Err("cancelled".into());
        }
        if record.len() > columns.len() {
            return Err(format!(
                "line {}: the row has {} values but the header names {} columns; fix the row or the header",
                reader.line(),
                record.len(),
                columns.len()
            ));
        }
        for (i, v) in record.iter().enumerate() {
            let g = &mut guesses[i];
            if forced[i] || g.possible == 0 {
                continue;
            }
            g.possible &= !INTEGER;
            if g.possible & NUMBER != 0 {
                if is_null(v) {
                } else if let Some(d) = parse_number(v) {
                    if let Some((whole, decimals)) = d.places() {
                        g.max_whole = g.max_whole.max(whole);
                        g.max_decimals = g.max_decimals.max(decimals);
                    }
                } else {
                    g.possible &= !NUMBER;
                }
            }
            let null = is_null(v);
            if g.possible & DATE != 0 && !null && parse_date(v).is_none() {
                g.possible &= !DATE;
            }
            if g.possible & DATETIME != 0 && !null && parse_datetime(v).is_none() {
                g.possible &= !DATETIME;
            }
            if g.possible & ISO != 0 && !null && parse_iso_datetime(v).is_none() {
                g.possible &= !ISO;
            }
            if g.possible & BOOLEAN != 0 && !bool_is_null(v) && parse_bool(v).is_none() {
                g.possible &= !BOOLEAN;
            }
        }
    }
    let types = guesses
        .iter()
        .zip(&forced)
        .map(|(g, forced)| {
            if *forced {
                Inferred::Forced
            } else if g.possible & INTEGER != 0 {
                Inferred::Integer
            } else if g.possible & NUMBER != 0 {
                // agate's MaxPrecision, capped at Python's 28 digits in all.
                let mut decimals = g.max_decimals;
                if g.max_whole + decimals > 28 {
                    decimals = 28 - g.max_whole;
                }
                Inferred::Number {
                    decimals: decimals != 0,
                }
            } else if g.possible & DATE != 0 {
                Inferred::Date
            } else if g.possible & DATETIME != 0 {
                Inferred::DateTime
            } else if g.possible & ISO != 0 {
                Inferred::IsoDateTime
            } else if g.possible & BOOLEAN != 0 {
                Inferred::Boolean
            } else {
                Inferred::Text
            }
        })
        .collect();
    Ok(Shape {
        columns,
        types,
        rows,
    })
}

/// How a column's values are written for COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// As the inferred type's column reads them (integers as whole numbers).
    Natural,
    /// Numbers as Python prints them, for a `numeric` staging column.
    Numeric,
}

/// Second reading: every row as a line of COPY's text format, handed to `emit`
/// in chunks of about `chunk` bytes; `emit` returns false to stop (the load
/// failed or was cancelled). Returns the number of rows.
pub(crate) fn stream(
    file: &SeedFile,
    shape: &Shape,
    outputs: &[Output],
    chunk: usize,
    emit: &mut dyn FnMut(Vec<u8>) -> bool,
) -> Result<u64, String> {
    let mut reader = open(file)?;
    let mut record = Vec::new();
    reader.record(&mut record)?; // the header
    let mut buf: Vec<u8> = Vec::with_capacity(chunk + 4096);
    let mut rows = 0u64;
    let n = shape.columns.len();
    while reader.record(&mut record)? {
        rows += 1;
        if record.len() > n {
            return Err(format!(
                "line {}: the row has {} values but the header names {n} columns; fix the row or the header",
                reader.line(),
                record.len(),
            ));
        }
        for (i, (t, out)) in shape.types.iter().zip(outputs).enumerate() {
            if i > 0 {
                buf.push(b'\t');
            }
            match record.get(i) {
                None => buf.extend_from_slice(b"\\N"),
                Some(v) => write_value(&mut buf, v, *t, *out)
                    .map_err(|e| format!("line {}: {e}", reader.line()))?,
            }
        }
        buf.push(b'\n');
        if buf.len() >= chunk
            && !emit(std::mem::replace(
                &mut buf,
                Vec::with_capacity(chunk + 4096),
            ))
        {
            return Ok(rows);
        }
    }
    if rows != shape.rows {
        return Err("the file changed while it was being loaded; run the seed again".into());
    }
    if !buf.is_empty() {
        emit(buf);
    }
    Ok(rows)
}

/// One value in COPY's text format (`\N` for NULL, backslash escapes).
fn write_value(buf: &mut Vec<u8>, v: &str, t: Inferred, out: Output) -> Result<(), String> {
    let null = match t {
        Inferred::Boolean => bool_is_null(v),
        _ => is_null(v),
    };
    if null {
        buf.extend_from_slice(b"\\N");
        return Ok(());
    }
    let text: std::borrow::Cow<str> = match t {
        Inferred::Text | Inferred::Forced | Inferred::Integer => v.into(),
        Inferred::Number { decimals } => {
            let d = parse_number(v).unwrap_or(Decimal::NonFinite);
            match (decimals, out) {
                (false, Output::Natural) => d.to_integer_string().into(),
                _ => d.to_python_string().into(),
            }
        }
        Inferred::Date => parse_date(v).map(date_text).unwrap_or_default().into(),
        Inferred::DateTime => parse_datetime(v)
            .map(timestamp_text)
            .unwrap_or_default()
            .into(),
        Inferred::IsoDateTime => match parse_iso_datetime(v) {
            Some(t) => t.utc_text()?.into(),
            None => String::new().into(),
        },
        Inferred::Boolean => match parse_bool(v) {
            Some(true) => "true".into(),
            _ => "false".into(),
        },
    };
    for b in text.bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            _ => buf.push(b),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agate_column_names() {
        let h: Vec<String> = ["id", "", "id", "id", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(column_names(&h), vec!["id", "b", "id_2", "id_3", "e"]);
    }

    fn shape_of(csv: &str) -> Vec<Option<&'static str>> {
        let dir = std::env::temp_dir().join(format!("reluvia-seed-{}", uuid::Uuid::new_v4()));
        std::fs::write(&dir, csv).unwrap();
        let file = SeedFile {
            path: dir.clone(),
            display: "x.csv".into(),
            delimiter: ',',
            column_types: BTreeMap::new(),
        };
        let s = infer(&file, &|| true).unwrap();
        std::fs::remove_file(dir).unwrap();
        s.types.iter().map(|t| t.sql_type()).collect()
    }

    #[test]
    fn inference() {
        assert_eq!(
            shape_of("a,b,c,d,e,f,g,h\n1,1.5,2026-03-01,2026-03-01 10:00:00,2026-03-01T10:00,true,x,\n2,,,null,,FALSE,1,\n"),
            vec![
                Some("integer"),
                Some("double precision"),
                Some("date"),
                Some("timestamp without time zone"),
                Some("timestamp without time zone"),
                Some("boolean"),
                Some("text"),
                Some("integer"),
            ]
        );
        // 1.0 has no decimal places once normalised; mixed formats are text.
        assert_eq!(
            shape_of("a,b\n1.0,2026-03-01 10:00:00\n2.00,2026-03-01T10:00:00\n"),
            vec![Some("integer"), Some("text")]
        );
        assert_eq!(shape_of("a,b\n"), vec![Some("integer"), Some("integer")]);
    }
}
