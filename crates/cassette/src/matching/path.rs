//! Field paths: where in a JSON value a match rule applies, and where a
//! difference was found.
//!
//! The syntax: keys separated by dots (`a.b`), array indices in brackets
//! (`items[0]`), `[*]` (or a bare `*`) for every element of an array or every
//! value of an object (`items[*].id`), and `["..."]` with a JSON string for
//! keys that hold dots, brackets, spaces or quotes (`headers["x.trace"]`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSegment {
    /// An object's key.
    Key(String),
    /// An array's element.
    Index(usize),
    /// Every element of an array, or every value of an object.
    Any,
}

impl PathSegment {
    /// Whether this (pattern) segment matches a concrete one.
    fn matches(&self, concrete: &PathSegment) -> bool {
        match (self, concrete) {
            (PathSegment::Any, _) => true,
            (PathSegment::Key(a), PathSegment::Key(b)) => a == b,
            (PathSegment::Index(a), PathSegment::Index(b)) => a == b,
            _ => false,
        }
    }
}

/// A path into a JSON value: `a.b`, `items[*].id`, `items[0]`,
/// `["key with.dots"]`. Never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath {
    segments: Vec<PathSegment>,
}

impl FieldPath {
    /// A path made of `segments`; `None` when there are none.
    pub fn from_segments(segments: Vec<PathSegment>) -> Option<FieldPath> {
        if segments.is_empty() {
            None
        } else {
            Some(FieldPath { segments })
        }
    }

    /// The path's steps, first to last.
    pub fn segments(&self) -> &[PathSegment] {
        &self.segments
    }

    /// Whether this path, taken from `base`, names the `concrete` location
    /// (a path of keys and indices from the root).
    pub(crate) fn matches_at(&self, base: &[PathSegment], concrete: &[PathSegment]) -> bool {
        concrete.len() == base.len() + self.segments.len()
            && concrete[..base.len()] == *base
            && self
                .segments
                .iter()
                .zip(&concrete[base.len()..])
                .all(|(pattern, step)| pattern.matches(step))
    }
}

impl FromStr for FieldPath {
    type Err = String;

    fn from_str(text: &str) -> Result<FieldPath, String> {
        let segments = Parser { text, pos: 0 }.path().map_err(|(why, pos)| {
            let column = text[..pos.min(text.len())].chars().count() + 1;
            format!("invalid field path {text:?}: {why} (at character {column})")
        })?;
        Ok(FieldPath { segments })
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&render(&self.segments))
    }
}

impl Serialize for FieldPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FieldPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A path written in the syntax above; the empty path (the root) is "".
pub(crate) fn render(segments: &[PathSegment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            PathSegment::Key(key) if is_bare(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            PathSegment::Key(key) => {
                out.push('[');
                out.push_str(&serde_json::to_string(key).unwrap_or_else(|_| format!("{key:?}")));
                out.push(']');
            }
            PathSegment::Index(index) => {
                out.push('[');
                out.push_str(&index.to_string());
                out.push(']');
            }
            PathSegment::Any => out.push_str("[*]"),
        }
    }
    out
}

/// Keys shown without quotes: letters, digits, `_`, `-` and `$`.
fn is_bare(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '$'))
}

/// Characters that end a bare key.
fn ends_bare(c: char) -> bool {
    matches!(c, '.' | '[' | ']' | '"') || c.is_whitespace()
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

type Failure = (String, usize);

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn path(mut self) -> Result<Vec<PathSegment>, Failure> {
        if self.text.is_empty() {
            return Err(("the path is empty".to_owned(), 0));
        }
        let mut segments = Vec::new();
        match self.peek() {
            Some('[') => {}
            _ => segments.push(self.bare("at the start")?),
        }
        while let Some(c) = self.peek() {
            match c {
                '.' => {
                    self.bump();
                    segments.push(self.bare("after `.`")?);
                }
                '[' => {
                    self.bump();
                    segments.push(self.bracket()?);
                }
                other => {
                    let hint = if other.is_whitespace() || other == '"' {
                        "; write keys with spaces, dots or quotes as [\"...\"]"
                    } else {
                        ""
                    };
                    return Err((
                        format!(
                            "unexpected `{other}`; expected `.`, `[` or the end of the path{hint}"
                        ),
                        self.pos,
                    ));
                }
            }
        }
        Ok(segments)
    }

    fn bare(&mut self, place: &str) -> Result<PathSegment, Failure> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if ends_bare(c) {
                break;
            }
            self.bump();
        }
        let key = &self.text[start..self.pos];
        if key.is_empty() {
            let why = match self.peek() {
                Some(c) if c.is_whitespace() || c == '"' => format!(
                    "expected a field name {place}; write keys with spaces, dots or quotes as [\"...\"]"
                ),
                _ => format!("expected a field name {place}"),
            };
            return Err((why, self.pos));
        }
        Ok(if key == "*" {
            PathSegment::Any
        } else {
            PathSegment::Key(key.to_owned())
        })
    }

    fn bracket(&mut self) -> Result<PathSegment, Failure> {
        let start = self.pos;
        let segment = match self.peek() {
            Some('*') => {
                self.bump();
                PathSegment::Any
            }
            Some('0'..='9') => {
                while matches!(self.peek(), Some('0'..='9')) {
                    self.bump();
                }
                let digits = &self.text[start..self.pos];
                let index = digits
                    .parse::<usize>()
                    .map_err(|_| (format!("index {digits} is too large"), start))?;
                PathSegment::Index(index)
            }
            Some('"') => PathSegment::Key(self.quoted()?),
            _ => {
                return Err((
                    "expected `*`, an index or a quoted key after `[`".to_owned(),
                    self.pos,
                ));
            }
        };
        if self.bump() != Some(']') {
            return Err(("expected `]`".to_owned(), self.pos));
        }
        Ok(segment)
    }

    /// A JSON string starting at the current `"`.
    fn quoted(&mut self) -> Result<String, Failure> {
        let start = self.pos;
        self.bump();
        let mut escaped = false;
        loop {
            match self.bump() {
                None => return Err(("unterminated quoted key".to_owned(), start)),
                Some('\\') if !escaped => escaped = true,
                Some('"') if !escaped => break,
                Some(_) => escaped = false,
            }
        }
        serde_json::from_str(&self.text[start..self.pos]).map_err(|_| {
            (
                "invalid quoted key; write it as a JSON string".to_owned(),
                start,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::PathSegment::{Any, Index, Key};
    use super::*;

    fn key(k: &str) -> PathSegment {
        Key(k.to_owned())
    }

    #[track_caller]
    fn check(input: &str, expect: Result<(&[PathSegment], &str), &str>) {
        let parsed: Result<FieldPath, String> = input.parse();
        match (parsed, expect) {
            (Ok(path), Ok((segments, shown))) => {
                assert_eq!(path.segments(), segments, "{input}");
                assert_eq!(path.to_string(), shown, "{input}");
                assert_eq!(shown.parse::<FieldPath>().as_ref(), Ok(&path));
            }
            (Err(message), Err(fragment)) => {
                assert!(message.contains(fragment), "{message}\nlacks: {fragment}");
            }
            (got, expect) => panic!("{input}: got {got:?}, expected {expect:?}"),
        }
    }

    #[test]
    fn parsing_and_display() {
        check("a", Ok((&[key("a")], "a")));
        check("a.b", Ok((&[key("a"), key("b")], "a.b")));
        check(
            "items[*].id",
            Ok((&[key("items"), Any, key("id")], "items[*].id")),
        );
        check("items[0]", Ok((&[key("items"), Index(0)], "items[0]")));
        check(
            "items.*.id",
            Ok((&[key("items"), Any, key("id")], "items[*].id")),
        );
        check("[*]", Ok((&[Any], "[*]")));
        check("[3][4]", Ok((&[Index(3), Index(4)], "[3][4]")));
        check(
            r#"["key with.dots"]"#,
            Ok((&[key("key with.dots")], r#"["key with.dots"]"#)),
        );
        check(r#"a["b"]"#, Ok((&[key("a"), key("b")], "a.b")));
        check(
            r#"a["q\"uote"].c"#,
            Ok((&[key("a"), key("q\"uote"), key("c")], r#"a["q\"uote"].c"#)),
        );
        check(r#"["*"]"#, Ok((&[key("*")], r#"["*"]"#)));
        check(r#"[""]"#, Ok((&[key("")], r#"[""]"#)));
        check("a.0", Ok((&[key("a"), key("0")], "a.0")));
        check(
            "héllo.wörld",
            Ok((&[key("héllo"), key("wörld")], "héllo.wörld")),
        );
        check("$ref", Ok((&[key("$ref")], "$ref")));
        check("a:b", Ok((&[key("a:b")], r#"["a:b"]"#)));

        check("", Err("the path is empty"));
        check(
            "a..b",
            Err("expected a field name after `.` (at character 3)"),
        );
        check(".a", Err("expected a field name at the start"));
        check("a.", Err("expected a field name after `.`"));
        check("a b", Err("write keys with spaces"));
        check(
            "a[",
            Err("expected `*`, an index or a quoted key after `[`"),
        );
        check("a[x]", Err("expected `*`, an index or a quoted key"));
        check("a[1", Err("expected `]`"));
        check("a[*", Err("expected `]`"));
        check("a]", Err("unexpected `]`"));
        check(r#"a["b]"#, Err("unterminated quoted key"));
        check(r#"a["\q"]"#, Err("invalid quoted key"));
        check("a[99999999999999999999999]", Err("is too large"));
        check("a[1]b", Err("unexpected `b`"));
    }

    #[test]
    fn matching_concrete_paths() {
        let path: FieldPath = match "items[*].id".parse() {
            Ok(path) => path,
            Err(e) => panic!("{e}"),
        };
        let base = [key("arguments")];
        assert!(path.matches_at(
            &base,
            &[key("arguments"), key("items"), Index(2), key("id")]
        ));
        assert!(path.matches_at(
            &base,
            &[key("arguments"), key("items"), key("x"), key("id")]
        ));
        assert!(!path.matches_at(&base, &[key("items"), Index(2), key("id")]));
        assert!(!path.matches_at(&[], &[key("items"), Index(2)]));
        assert!(path.matches_at(&[], &[key("items"), Index(2), key("id")]));
    }

    #[test]
    fn serde_as_a_string() {
        let path: Result<FieldPath, _> = serde_json::from_str(r#""a[*].b""#);
        let path = path.map_err(|e| e.to_string());
        assert_eq!(
            path.as_ref().map(ToString::to_string),
            Ok("a[*].b".to_owned())
        );
        assert_eq!(
            path.ok()
                .and_then(|p| serde_json::to_string(&p).ok())
                .as_deref(),
            Some(r#""a[*].b""#)
        );
        let bad: Result<FieldPath, _> = serde_json::from_str(r#""a..b""#);
        assert!(bad.is_err());
    }
}
