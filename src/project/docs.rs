//! Docs blocks: `{% docs name %}…{% enddocs %}` in the `.md` files of the
//! project's docs paths (by default every resource path, as dbt), which
//! descriptions reach through `{{ doc('name') }}`.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

use super::files::SqlFile;

/// A docs block: its text (as written between the tags) and where it is.
#[derive(Debug, Clone)]
pub(crate) struct DocBlock {
    pub(crate) contents: String,
    pub(crate) file: String,
}

/// Adds the docs blocks of `f` to `docs`; a name defined twice is an error.
pub(crate) fn read(f: &SqlFile, docs: &mut BTreeMap<String, DocBlock>) -> Result<()> {
    let text = &f.content;
    let mut rest = text.as_str();
    let mut offset = 0;
    while let Some(open) = find_tag(rest, "docs") {
        let (tag_start, tag_end, name) = open;
        let line = text[..offset + tag_start].matches('\n').count() + 1;
        let name = name.ok_or_else(|| {
            Error::usage("a docs block has no name; write {% docs name %}")
                .at(&f.original_file_path, Some(line))
        })?;
        let after = &rest[tag_end..];
        let Some((close_start, close_end, _)) = find_tag(after, "enddocs") else {
            return Err(Error::usage(format!(
                "docs block '{name}' is not closed; end it with {{% enddocs %}}"
            ))
            .at(&f.original_file_path, Some(line)));
        };
        let contents = after[..close_start].to_string();
        if let Some(prev) = docs.insert(
            name.clone(),
            DocBlock {
                contents,
                file: f.original_file_path.clone(),
            },
        ) {
            return Err(Error::usage(format!(
                "docs block '{name}' is also defined in {}; rename one of them",
                prev.file
            ))
            .at(&f.original_file_path, Some(line)));
        }
        offset += tag_end + close_end;
        rest = &after[close_end..];
    }
    Ok(())
}

/// The next `{% word [name] %}` tag (with optional `-` whitespace control):
/// (start, end, name).
fn find_tag(s: &str, word: &str) -> Option<(usize, usize, Option<String>)> {
    let mut from = 0;
    while let Some(i) = s[from..].find("{%") {
        let start = from + i;
        let end = start + s[start..].find("%}")? + 2;
        let inner = s[start + 2..end - 2]
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let mut parts = inner.split_whitespace();
        if parts.next() == Some(word) {
            return Some((start, end, parts.next().map(str::to_string)));
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_with_their_text() {
        let f = SqlFile {
            name: "d".into(),
            original_file_path: "models/d.md".into(),
            path: "d.md".into(),
            content: "intro\n{% docs orders %}\nOne row per order.\n{% enddocs %}\n{%- docs ids -%}ID{%- enddocs -%}\n".into(),
        };
        let mut docs = BTreeMap::new();
        read(&f, &mut docs).unwrap();
        assert_eq!(docs["orders"].contents, "\nOne row per order.\n");
        assert_eq!(docs["ids"].contents, "ID");
        let err = read(&f, &mut docs).unwrap_err();
        assert_eq!(err.location.unwrap().line, Some(2));
    }
}
