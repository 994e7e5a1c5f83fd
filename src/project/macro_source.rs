//! The text of one macro in its file, as dbt's `manifest.json` records it
//! (`macro_sql`: from `{% macro name(…) %}` to its `{% endmacro %}`; a
//! `{% test name %}` block for the generic test macro `test_name`), and the
//! other macros its text calls — what `state:modified.macros` compares.

/// The block defining `name` in `content`, if the file defines it.
pub(crate) fn macro_sql(content: &str, name: &str) -> Option<String> {
    let (keyword, wanted, end) = match name.strip_prefix("test_") {
        Some(test) => [("macro", name, "endmacro"), ("test", test, "endtest")]
            .into_iter()
            .find(|(k, n, _)| find_block(content, k, n).is_some())?,
        None => ("macro", name, "endmacro"),
    };
    let start = find_block(content, keyword, wanted)?;
    let rest = &content[start..];
    let close = rest.find(end)?;
    let tail = &rest[close..];
    let stop = tail.find("%}").map(|i| close + i + 2).unwrap_or(rest.len());
    Some(rest[..stop].to_string())
}

/// The byte offset of the `{%` that opens `{% keyword name(`.
fn find_block(content: &str, keyword: &str, name: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = content[from..].find("{%") {
        let open = from + i;
        let after = content[open + 2..].trim_start_matches('-').trim_start();
        if let Some(rest) = after.strip_prefix(keyword) {
            let rest = rest.trim_start();
            if let Some(tail) = rest.strip_prefix(name) {
                if tail.trim_start().starts_with('(') {
                    return Some(open);
                }
            }
        }
        from = open + 2;
    }
    None
}

/// Which of `names` the text calls (`name(`), but itself.
pub(crate) fn calls<'a>(
    sql: &str,
    own: &str,
    names: impl Iterator<Item = &'a String>,
) -> Vec<String> {
    names
        .filter(|n| n.as_str() != own)
        .filter(|n| {
            sql.match_indices(n.as_str()).any(|(i, _)| {
                let before = sql[..i].chars().next_back();
                let after = sql[i + n.len()..].trim_start();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    && after.starts_with('(')
            })
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_macro_and_test_blocks() {
        let text = "{% macro a(x) %}{{ b(x) }}{% endmacro %}\n{%- test positive(model, column_name) -%}\nselect 1\n{%- endtest %}";
        assert_eq!(
            macro_sql(text, "a").as_deref(),
            Some("{% macro a(x) %}{{ b(x) }}{% endmacro %}")
        );
        assert!(macro_sql(text, "test_positive")
            .unwrap()
            .ends_with("endtest %}"));
        assert_eq!(macro_sql(text, "c"), None);
        let names = ["a".to_string(), "b".to_string(), "ab".to_string()];
        assert_eq!(calls("{{ b(x) }} {{ xab }}", "a", names.iter()), vec!["b"]);
    }
}
