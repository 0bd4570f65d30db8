//! Template conventions shared by the loader (which checks syntax) and the
//! engine (which renders): one environment configuration, the names a
//! template can see, and how a value template is recognised.

use std::sync::LazyLock;

use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, UndefinedBehavior};

/// Fuel for one render: enough for loops over a few thousand rows, small
/// enough that a runaway template stops in milliseconds.
pub const TEMPLATE_FUEL: u64 = 200_000;

/// The largest output one template may produce.
pub const MAX_TEMPLATE_OUTPUT: usize = 4 * 1024 * 1024;

/// Names every template sees; a data table cannot use one of them.
pub const RESERVED_NAMES: &[&str] = &[
    "args", "params", "now", "run", "random", "secrets", "answers", "data", "call", "tool",
];

/// The environment configuration every template runs under: no
/// auto-escaping (outputs are JSON and plain text, not HTML), undefined
/// values fail when printed but can be tested with `is defined` or
/// `default`, a fuel limit so no template can loop forever, and the
/// `contains` test.
pub fn base_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.add_test("contains", contains);
    env
}

/// `value is contains(item)`: a list holds the item, a string the
/// substring, a map the key. The built-in `in` test asks the other way
/// round (`item is in(list)`), so it cannot pick the rows whose list column
/// holds a value: `events | selectattr('attendees', 'contains', 'ana')`.
fn contains(value: &Value, item: &Value) -> bool {
    match value.kind() {
        ValueKind::String => match (value.as_str(), item.as_str()) {
            (Some(text), Some(part)) => text.contains(part),
            _ => false,
        },
        ValueKind::Map => value.get_item(item).is_ok_and(|v| !v.is_undefined()),
        ValueKind::Seq | ValueKind::Iterable => value
            .try_iter()
            .is_ok_and(|mut items| items.any(|v| &v == item)),
        _ => false,
    }
}

/// Whether a string needs rendering at all.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

static SINGLE_EXPRESSION: LazyLock<regex::Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // A fixed pattern, covered by tests.
    regex::Regex::new(r"^\s*\{\{-?\s*(?s)(.+?)\s*-?\}\}\s*$").unwrap()
});

/// If `text` is exactly one `{{ expression }}`, the expression.
pub fn single_expression(text: &str) -> Option<&str> {
    let caps = SINGLE_EXPRESSION.captures(text)?;
    let inner = caps.get(1)?.as_str();
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(inner)
}

/// The template source that evaluates `expression` to JSON text.
pub fn expression_source(expression: &str) -> String {
    format!("{{{{ ({expression}) | tojson }}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_expressions() {
        assert_eq!(
            single_expression("{{ orders[args.id] }}"),
            Some("orders[args.id]")
        );
        assert_eq!(single_expression("  {{x}} "), Some("x"));
        assert_eq!(single_expression("{{ a }} and {{ b }}"), None);
        assert_eq!(single_expression("total: {{ a }}"), None);
        assert_eq!(single_expression("{% if a %}x{% endif %}"), None);
    }

    #[test]
    fn the_contains_test() {
        let env = base_environment();
        let check = |template: &str, expected: &str| {
            let out = env
                .render_str(template, minijinja::context! {})
                .unwrap_or_else(|e| panic!("{template}: {e}"));
            assert_eq!(out, expected, "{template}");
        };
        check("{{ ['ana', 'tom'] is contains('ana') }}", "True");
        check("{{ ['ana', 'tom'] is contains('lee') }}", "False");
        check("{{ [1, 2] is contains(2) }}", "True");
        check("{{ 'standup at nine' is contains('nine') }}", "True");
        check("{{ {'a': 1} is contains('a') }}", "True");
        check("{{ {'a': 1} is contains('b') }}", "False");
        check("{{ 3 is contains(3) }}", "False");
        check(
            "{{ [{'t': 'x', 'who': ['ana']}, {'t': 'y', 'who': ['tom']}] | selectattr('who', 'contains', 'tom') | map(attribute='t') | list }}",
            "['y']",
        );
    }

    #[test]
    fn environment_refuses_runaway_templates() {
        let env = base_environment();
        let err = env
            .render_str(
                "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
                (),
            )
            .expect_err("must run out of fuel");
        assert!(err.to_string().contains("fuel"), "{err}");
    }
}
