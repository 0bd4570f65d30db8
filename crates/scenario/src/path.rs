//! Paths into argument values: `order_id`, `customer.address.city`,
//! `items[0].sku` or `items.0.sku`.

use std::fmt;

use serde_json::Value;

/// One step of an [`ArgPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// `.name`: an object key, or an array index when the segment is all
    /// digits and the value at that point is an array.
    Key(String),
    /// `[n]`: an array index.
    Index(usize),
}

/// A parsed path into a JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgPath {
    segments: Vec<Segment>,
    text: String,
}

impl ArgPath {
    /// Parses a path; errors say what is wrong with it.
    pub fn parse(text: &str) -> Result<ArgPath, String> {
        if text.is_empty() {
            return Err("an argument path cannot be empty".to_owned());
        }
        let mut segments = Vec::new();
        let mut rest = text;
        let mut expect_key = true;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('[') {
                let end = after
                    .find(']')
                    .ok_or_else(|| format!("unclosed `[` in path `{text}`"))?;
                let index: usize = after[..end].trim().parse().map_err(|_| {
                    format!(
                        "`[{}]` in path `{text}` is not an array index",
                        &after[..end]
                    )
                })?;
                segments.push(Segment::Index(index));
                rest = &after[end + 1..];
                expect_key = false;
                continue;
            }
            if !expect_key {
                rest = rest.strip_prefix('.').ok_or_else(|| {
                    format!(
                        "expected `.` or `[` after `{}` in path `{text}`",
                        &text[..text.len() - rest.len()]
                    )
                })?;
            }
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            let key = &rest[..end];
            if key.is_empty() {
                return Err(format!("empty segment in path `{text}`"));
            }
            segments.push(Segment::Key(key.to_owned()));
            rest = &rest[end..];
            expect_key = false;
        }
        Ok(ArgPath {
            segments,
            text: text.to_owned(),
        })
    }

    /// The value at this path, if there is one.
    pub fn lookup<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        let mut current = root;
        for segment in &self.segments {
            current = match (segment, current) {
                (Segment::Key(key), Value::Object(map)) => map.get(key)?,
                (Segment::Key(key), Value::Array(items)) => {
                    items.get(key.parse::<usize>().ok()?)?
                }
                (Segment::Index(index), Value::Array(items)) => items.get(*index)?,
                _ => return None,
            };
        }
        Some(current)
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for ArgPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(path: &str, value: Value, expected: Option<Value>) {
        let parsed = ArgPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(parsed.lookup(&value).cloned(), expected, "path {path}");
    }

    #[test]
    fn lookups() {
        let doc = json!({"a": {"b": [{"c": 1}, {"c": 2}]}, "x": null, "0": "zero"});
        check("a.b[1].c", doc.clone(), Some(json!(2)));
        check("a.b.0.c", doc.clone(), Some(json!(1)));
        check("a.b[5].c", doc.clone(), None);
        check("x", doc.clone(), Some(Value::Null));
        check("0", doc.clone(), Some(json!("zero")));
        check("missing.deeper", doc.clone(), None);
        check("a.b.c", doc, None);
    }

    #[test]
    fn parse_errors() {
        for (bad, fragment) in [
            ("", "cannot be empty"),
            ("a..b", "empty segment"),
            ("a[1", "unclosed"),
            ("a[x]", "not an array index"),
            ("a[0]b", "expected `.`"),
        ] {
            let err = ArgPath::parse(bad).expect_err(bad);
            assert!(err.contains(fragment), "{bad}: {err}");
        }
    }
}
