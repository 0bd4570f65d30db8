//! Evaluates a rule's conditions against a call's arguments.

use serde_json::Value;

use sandbar_scenario::{Condition, Test};

use crate::twin::Twin;

/// Whether every condition holds for `args`.
pub fn all_hold(conditions: &[Condition], args: &Value, twin: &Twin) -> bool {
    conditions.iter().all(|c| holds(c, args, twin))
}

fn holds(condition: &Condition, args: &Value, twin: &Twin) -> bool {
    let value = condition.path.lookup(args);
    match (&condition.test, value) {
        (Test::Present(want), v) => v.is_some() == *want,
        (_, None) => {
            matches!(condition.test, Test::NotEquals(_))
                || matches!(condition.test, Test::NoneOf(_))
        }
        (Test::Equals(expected), Some(v)) => loosely_equal(v, expected),
        (Test::NotEquals(expected), Some(v)) => !loosely_equal(v, expected),
        (Test::Regex(re), Some(Value::String(s))) => re.is_match(s),
        (Test::Regex(re), Some(v @ (Value::Number(_) | Value::Bool(_)))) => {
            re.is_match(&v.to_string())
        }
        (Test::Regex(_), Some(_)) => false,
        (Test::GreaterThan(b), Some(v)) => number(v).is_some_and(|n| n > *b),
        (Test::AtLeast(b), Some(v)) => number(v).is_some_and(|n| n >= *b),
        (Test::LessThan(b), Some(v)) => number(v).is_some_and(|n| n < *b),
        (Test::AtMost(b), Some(v)) => number(v).is_some_and(|n| n <= *b),
        (Test::OneOf(options), Some(v)) => options.iter().any(|o| loosely_equal(v, o)),
        (Test::NoneOf(options), Some(v)) => !options.iter().any(|o| loosely_equal(v, o)),
        (Test::InTable { table, column }, Some(v)) => {
            twin.table(table).is_some_and(|t| t.contains(column, v))
        }
        (Test::Contains(needle), Some(Value::String(s))) => match needle {
            Value::String(n) => s.contains(n.as_str()),
            other => s.contains(&other.to_string()),
        },
        (Test::Contains(needle), Some(Value::Array(items))) => {
            items.iter().any(|i| loosely_equal(i, needle))
        }
        (Test::Contains(_), Some(_)) => false,
        (Test::StartsWith(p), Some(Value::String(s))) => s.starts_with(p.as_str()),
        (Test::EndsWith(p), Some(Value::String(s))) => s.ends_with(p.as_str()),
        (Test::StartsWith(_) | Test::EndsWith(_), Some(_)) => false,
    }
}

/// Equality that treats `1` and `1.0` as equal, as JSON does.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Numbers, and strings that hold a number (agents often send "42").
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandbar_scenario::load_str;
    use serde_json::json;

    /// Loads a one-tool scenario whose single rule has `when`, and checks
    /// whether it matches `args`.
    fn check(when: &str, args: Value, expected: bool) {
        let source = format!(
            "version: 1\nname: t\ndata:\n  orders:\n    - {{id: o1, total: 10}}\n    - {{id: o2, total: 20}}\ntools:\n  - name: t\n    respond:\n      - when: {when}\n        text: yes\n"
        );
        let scenario =
            load_str(&source, "test.yaml", None).unwrap_or_else(|e| panic!("{when}: {e}"));
        let twin = Twin::from_seed(&scenario.tables);
        let conditions = &scenario.tools[0].rules[0].conditions;
        assert_eq!(
            all_hold(conditions, &args, &twin),
            expected,
            "when {when} with {args}"
        );
    }

    #[test]
    fn conditions() {
        check("{a: 1}", json!({"a": 1}), true);
        check("{a: 1}", json!({"a": 1.0}), true);
        check("{a: 1}", json!({"a": "1"}), false);
        check("{a: {ne: 1}}", json!({}), true);
        check("{a: {regex: '^o[0-9]+$'}}", json!({"a": "o12"}), true);
        check("{a: {regex: '^o[0-9]+$'}}", json!({"a": "x12"}), false);
        check("{a: {regex: '^[0-9]+$'}}", json!({"a": 12}), true);
        check("{a: {gt: 500}}", json!({"a": 501}), true);
        check("{a: {gt: 500}}", json!({"a": "501"}), true);
        check("{a: {gt: 500}}", json!({"a": 500}), false);
        check("{a: {gte: 1, lte: 3}}", json!({"a": 3}), true);
        check("{a: {gte: 1, lte: 3}}", json!({"a": 4}), false);
        check("{a: {lt: 0}}", json!({"a": "abc"}), false);
        check("{a: {in: [x, y]}}", json!({"a": "y"}), true);
        check("{a: {not_in: [x, y]}}", json!({"a": "z"}), true);
        check("{a: {present: true}}", json!({"a": null}), true);
        check("{a: {present: false}}", json!({"b": 1}), true);
        check("{a: {present: false}}", json!({"a": 1}), false);
        check(
            "{order_id: {in_table: orders.id}}",
            json!({"order_id": "o2"}),
            true,
        );
        check(
            "{order_id: {in_table: orders.id}}",
            json!({"order_id": "o3"}),
            false,
        );
        check("{t: {in_table: orders.total}}", json!({"t": 20}), true);
        check("{a: {contains: lo}}", json!({"a": "hello"}), true);
        check("{a: {contains: 2}}", json!({"a": [1, 2]}), true);
        check(
            "{a: {starts_with: he, ends_with: lo}}",
            json!({"a": "hello"}),
            true,
        );
        check(
            "{'customer.address.city': Paris}",
            json!({"customer": {"address": {"city": "Paris"}}}),
            true,
        );
        check(
            "{'items[1].sku': B}",
            json!({"items": [{"sku": "A"}, {"sku": "B"}]}),
            true,
        );
        check(
            "{'items[2].sku': B}",
            json!({"items": [{"sku": "A"}, {"sku": "B"}]}),
            false,
        );
        check("{a: 1, b: 2}", json!({"a": 1, "b": 3}), false);
        check("{a: [1, 2]}", json!({"a": [1, 2]}), true);
        check("{a: null}", json!({"a": null}), true);
        check("{a: {gt: 1}}", json!({}), false);
    }
}
