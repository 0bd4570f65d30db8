//! Name patterns as scenario authors write them: `*` stands for any run of
//! characters (none included), `?` for exactly one character, and every
//! other character for itself. Policies match tool names with them; token
//! scopes reuse them.
//!
//! There is deliberately no escape, no character class and no `**`: tool
//! names are letters, digits, `_`, `-` and `.`, so two metacharacters cover
//! what an author needs, and a pattern reads the same to everyone.

use std::fmt;
use std::str::FromStr;

/// A compiled name pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    source: String,
    /// `None` when the pattern has no metacharacter: it matches itself only.
    tokens: Option<Vec<Token>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Token {
    /// `*`: any run of characters.
    AnyRun,
    /// `?`: one character.
    AnyOne,
    /// Itself.
    Char(char),
}

impl Glob {
    /// Parses a pattern. The only error is an empty one, which would match
    /// nothing a caller could name.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err(
                "the pattern is empty; write a name, or use `*` (any run of characters) and `?` (one character)"
                    .to_owned(),
            );
        }
        let tokens = if pattern.contains(['*', '?']) {
            let mut tokens: Vec<Token> = Vec::with_capacity(pattern.len());
            for c in pattern.chars() {
                let token = match c {
                    '*' => Token::AnyRun,
                    '?' => Token::AnyOne,
                    other => Token::Char(other),
                };
                // `**` means what `*` means; keeping one makes matching cheaper.
                if !(token == Token::AnyRun && tokens.last() == Some(&Token::AnyRun)) {
                    tokens.push(token);
                }
            }
            Some(tokens)
        } else {
            None
        };
        Ok(Glob {
            source: pattern.to_owned(),
            tokens,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern has no metacharacter (it matches one name).
    pub fn is_literal(&self) -> bool {
        self.tokens.is_none()
    }

    /// Whether `name` matches the whole pattern.
    pub fn matches(&self, name: &str) -> bool {
        let Some(tokens) = &self.tokens else {
            return self.source == name;
        };
        // The classic greedy match with one backtrack point: on a mismatch,
        // the last `*` takes one more character. Linear for patterns with a
        // single `*`, and at worst pattern × name long, never exponential.
        let (mut p, mut t) = (0usize, 0usize);
        let mut backtrack: Option<(usize, usize)> = None;
        loop {
            let next = name[t..].chars().next();
            let advanced = match (tokens.get(p), next) {
                (Some(Token::AnyRun), _) => {
                    backtrack = Some((p + 1, t));
                    p += 1;
                    true
                }
                (Some(Token::AnyOne), Some(c)) => {
                    p += 1;
                    t += c.len_utf8();
                    true
                }
                (Some(Token::Char(want)), Some(c)) if *want == c => {
                    p += 1;
                    t += c.len_utf8();
                    true
                }
                (None, None) => return true,
                _ => false,
            };
            if advanced {
                continue;
            }
            match backtrack {
                Some((after_star, from)) => match name[from..].chars().next() {
                    Some(c) => {
                        let from = from + c.len_utf8();
                        backtrack = Some((after_star, from));
                        p = after_star;
                        t = from;
                    }
                    None => return false,
                },
                None => return false,
            }
        }
    }
}

impl FromStr for Glob {
    type Err = String;
    fn from_str(pattern: &str) -> Result<Glob, String> {
        Glob::new(pattern)
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(pattern: &str, name: &str, expected: bool) {
        let glob = Glob::new(pattern).expect("valid pattern");
        assert_eq!(glob.matches(name), expected, "{pattern:?} against {name:?}");
    }

    #[test]
    fn matching() {
        check("issue_refund", "issue_refund", true);
        check("issue_refund", "issue_refunds", false);
        check("issue_refund", "issue", false);
        check("*", "", true);
        check("*", "anything", true);
        check("send_*", "send_email", true);
        check("send_*", "send_", true);
        check("send_*", "resend_email", false);
        check("*_order", "lookup_order", true);
        check("*_order", "lookup_orders", false);
        check("a*b*c", "abc", true);
        check("a*b*c", "axxbyyc", true);
        check("a*b*c", "axxbyycd", false);
        check("a*b*c", "acb", false);
        check("a**c", "abc", true);
        check("?", "a", true);
        check("?", "", false);
        check("?", "ab", false);
        check("lookup_?", "lookup_1", true);
        check("v?.*", "v1.get", true);
        check("v?.*", "v12.get", false);
        check(
            "*a*a*a*b",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            false,
        );
        // `?` is one character, not one byte.
        check("caf?", "café", true);
        check("?", "é", true);
        check("*é", "café", true);
    }

    #[test]
    fn empty_patterns_are_refused() {
        let err = Glob::new("").expect_err("empty");
        assert!(err.contains("empty"), "{err}");
    }

    #[test]
    fn literal_and_display() {
        let glob: Glob = "send_*".parse().expect("valid");
        assert!(!glob.is_literal());
        assert_eq!(glob.to_string(), "send_*");
        assert!(Glob::new("send").expect("valid").is_literal());
    }

    proptest! {
        #[test]
        fn a_name_without_metacharacters_matches_only_itself(
            name in "[a-zA-Z0-9_.é-]{1,12}",
            other in "[a-zA-Z0-9_.é-]{0,12}",
        ) {
            let glob = Glob::new(&name).expect("valid");
            prop_assert!(glob.matches(&name));
            prop_assert_eq!(glob.matches(&other), other == name);
        }

        #[test]
        fn a_star_matches_what_its_prefix_and_suffix_allow(
            prefix in "[a-c]{0,4}",
            middle in "[a-c*?]{0,4}",
            suffix in "[a-c]{0,4}",
        ) {
            let name = format!("{prefix}{middle}{suffix}");
            let glob = Glob::new(&format!("{prefix}*{suffix}")).expect("valid");
            prop_assert!(glob.matches(&name));
        }
    }
}
