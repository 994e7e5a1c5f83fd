//! YAML as the project's files hold it: a tree in which every value knows its
//! line ([`Yaml`]), so that a value of the wrong shape is reported with its file
//! and line, and invalid YAML with the parser's position.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};
use serde_saphyr::Spanned;

use crate::error::{Error, Result};

/// A YAML value and the line it starts on (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Yaml {
    pub(crate) value: YamlValue,
    pub(crate) line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum YamlValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Yaml>),
    /// Entries in file order; each key with its own line.
    Map(Vec<(String, usize, Yaml)>),
}

impl Yaml {
    fn new(value: YamlValue, line: usize) -> Yaml {
        Yaml { value, line }
    }

    /// An empty mapping (what an empty file holds).
    pub(crate) fn empty_map() -> Yaml {
        Yaml::new(YamlValue::Map(Vec::new()), 0)
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Yaml> {
        match &self.value {
            YamlValue::Map(entries) => entries.iter().find(|(k, _, _)| k == key).map(|e| &e.2),
            _ => None,
        }
    }

    pub(crate) fn entries(&self) -> &[(String, usize, Yaml)] {
        match &self.value {
            YamlValue::Map(entries) => entries,
            _ => &[],
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            YamlValue::Str(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        self.value == YamlValue::Null
    }

    /// What kind of value this is, for messages: "a string", "a list"…
    pub(crate) fn kind(&self) -> &'static str {
        match &self.value {
            YamlValue::Null => "null",
            YamlValue::Bool(_) => "a boolean",
            YamlValue::Int(_) | YamlValue::Float(_) => "a number",
            YamlValue::Str(_) => "a string",
            YamlValue::Seq(_) => "a list",
            YamlValue::Map(_) => "a mapping",
        }
    }

    /// The same value as JSON (mappings keep their order).
    pub(crate) fn to_json(&self) -> Json {
        match &self.value {
            YamlValue::Null => Json::Null,
            YamlValue::Bool(b) => Json::Bool(*b),
            YamlValue::Int(i) => Json::from(*i),
            YamlValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Json::Number)
                .unwrap_or(Json::Null),
            YamlValue::Str(s) => Json::String(s.clone()),
            YamlValue::Seq(items) => Json::Array(items.iter().map(Yaml::to_json).collect()),
            YamlValue::Map(entries) => {
                let mut m = Map::new();
                for (k, _, v) in entries {
                    m.insert(k.clone(), v.to_json());
                }
                Json::Object(m)
            }
        }
    }
}

/// Where YAML lives, for messages: a file and a line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    pub(crate) file: &'a str,
    pub(crate) line: usize,
}

impl At<'_> {
    /// A usage error at this place.
    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error::usage(message).at(self.file, (self.line > 0).then_some(self.line))
    }
}

impl Yaml {
    /// This value's place in `file`.
    pub(crate) fn at<'a>(&self, file: &'a str) -> At<'a> {
        At {
            file,
            line: self.line,
        }
    }
}

/// A JSON value as YAML without lines (configs merged from several places).
pub(crate) fn from_json(v: &Json) -> Yaml {
    let value = match v {
        Json::Null => YamlValue::Null,
        Json::Bool(b) => YamlValue::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => YamlValue::Int(i),
            None => YamlValue::Float(n.as_f64().unwrap_or(0.0)),
        },
        Json::String(s) => YamlValue::Str(s.clone()),
        Json::Array(a) => YamlValue::Seq(a.iter().map(from_json).collect()),
        Json::Object(o) => YamlValue::Map(
            o.iter()
                .map(|(k, v)| (k.clone(), 0, from_json(v)))
                .collect(),
        ),
    };
    Yaml::new(value, 0)
}

/// Parses a YAML file's text; an empty file is an empty mapping.
pub(crate) fn parse(text: &str, file: &str) -> Result<Yaml> {
    if text.trim().is_empty() {
        return Ok(Yaml::empty_map());
    }
    let root: Spanned<YamlValue> = serde_saphyr::from_str(text).map_err(|e| invalid(&e, file))?;
    let y = Yaml::new(root.value, root.referenced.line() as usize);
    Ok(if y.is_null() { Yaml::empty_map() } else { y })
}

/// Parses YAML into JSON values, with errors naming the file and line.
pub(crate) fn parse_yaml(text: &str, file: &str) -> Result<Json> {
    parse(text, file).map(|y| y.to_json())
}

fn invalid(e: &impl fmt::Display, file: &str) -> Error {
    let msg = e.to_string();
    let first = msg
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid YAML")
        .trim();
    let first = first.strip_prefix("error:").unwrap_or(first).trim();
    let at = msg
        .lines()
        .find_map(|l| {
            let l = l.trim();
            let pos = l.find("line ")?;
            Some(format!(" ({})", &l[pos..]))
        })
        .unwrap_or_default();
    let at = if first.contains("line ") {
        String::new()
    } else {
        at
    };
    Error::in_file(file, format!("invalid YAML: {first}{at}; fix the file"))
}

impl<'de> Deserialize<'de> for YamlValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<YamlValue, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

fn spanned(s: Spanned<YamlValue>) -> Yaml {
    Yaml::new(s.value, s.referenced.line() as usize)
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = YamlValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<YamlValue, E> {
        Ok(YamlValue::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<YamlValue, E> {
        Ok(YamlValue::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<YamlValue, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => YamlValue::Int(i),
            Err(_) => YamlValue::Float(v as f64),
        })
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<YamlValue, E> {
        Ok(YamlValue::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<YamlValue, E> {
        Ok(YamlValue::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<YamlValue, E> {
        Ok(YamlValue::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> std::result::Result<YamlValue, E> {
        Ok(YamlValue::Null)
    }

    fn visit_none<E: de::Error>(self) -> std::result::Result<YamlValue, E> {
        Ok(YamlValue::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<YamlValue, D::Error> {
        YamlValue::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<YamlValue, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<YamlValue>>()? {
            items.push(spanned(item));
        }
        Ok(YamlValue::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<YamlValue, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<YamlValue>>()? {
            let line = key.referenced.line() as usize;
            let key = match key.value {
                YamlValue::Str(s) => s,
                YamlValue::Bool(b) => b.to_string(),
                YamlValue::Int(i) => i.to_string(),
                YamlValue::Float(f) => f.to_string(),
                YamlValue::Null => "null".to_string(),
                _ => return Err(de::Error::custom("a mapping key must be a scalar")),
            };
            let value: Spanned<YamlValue> = map.next_value()?;
            entries.push((key, line, spanned(value)));
        }
        Ok(YamlValue::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_know_their_lines() {
        let y = parse(
            "name: p\nmodels:\n  p:\n    +materialized: table\n    tags: [a, b]\n",
            "x.yml",
        )
        .unwrap();
        assert_eq!(y.get("name").unwrap().line, 1);
        let p = y.get("models").unwrap().get("p").unwrap();
        assert_eq!(p.get("+materialized").unwrap().line, 4);
        assert_eq!(p.entries()[1].1, 5);
        assert_eq!(
            y.to_json(),
            serde_json::json!({"name": "p", "models": {"p": {"+materialized": "table", "tags": ["a", "b"]}}})
        );
    }
}
