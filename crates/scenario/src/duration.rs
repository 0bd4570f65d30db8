//! Durations as scenario authors write them: `50ms`, `2s`, `1.5s`, `3m`,
//! `1h`, or a bare number of milliseconds.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The longest duration a scenario may ask for. Anything longer is almost
/// certainly a unit mistake (`2000s` for `2000ms`) and would make a run look
/// hung.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A parsed duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationSpec(pub Duration);

/// A duration as people write it, and as [`parse_duration`] reads the
/// whole-unit forms: `250ms`, `3s`, `2m`, `1h30m` (whole seconds above one
/// second).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// Parses `50ms`, `2s`, `1.5s`, `3m`, `1h` or a plain number of milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| {
        format!("`{text}` is not a duration (expected e.g. 50ms, 2s, 1.5s, 3m, 1h)")
    })?;
    let millis_per_unit = match unit.trim() {
        "" | "ms" => 1.0,
        "s" => 1_000.0,
        "m" | "min" => 60_000.0,
        "h" => 3_600_000.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in `{text}` (expected ms, s, m or h)"
            ));
        }
    };
    let millis = value * millis_per_unit;
    if !millis.is_finite() || millis < 0.0 {
        return Err(format!("`{text}` is not a valid duration"));
    }
    let duration = Duration::from_micros((millis * 1000.0).round() as u64);
    if duration > MAX_DURATION {
        return Err(format!("`{text}` is longer than the 24h limit"));
    }
    Ok(duration)
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a duration such as 50ms, 2s, 1.5s, 3m, 1h, or a number of milliseconds",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DurationSpec, E> {
                let d = Duration::from_millis(v);
                if d > MAX_DURATION {
                    return Err(E::custom(format!("{v}ms is longer than the 24h limit")));
                }
                Ok(DurationSpec(d))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DurationSpec, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom("a duration cannot be negative"))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DurationSpec, E> {
                parse_duration(&v.to_string())
                    .map(DurationSpec)
                    .map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DurationSpec, E> {
                parse_duration(v).map(DurationSpec).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

impl JsonSchema for DurationSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: 50ms, 2s, 1.5s, 3m, 1h, or a number of milliseconds.",
            "anyOf": [
                {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?\\s*(ms|s|m|min|h)?$"},
                {"type": "integer", "minimum": 0}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_they_are_written() {
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_secs(3)), "3s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        for text in ["250ms", "3s", "2m", "1h"] {
            assert_eq!(
                format_duration(parse_duration(text).unwrap_or_default()),
                text
            );
        }
    }

    fn check(input: &str, expected: Result<u64, &str>) {
        let got = parse_duration(input).map(|d| d.as_micros() as u64);
        match expected {
            Ok(micros) => assert_eq!(got, Ok(micros), "input {input:?}"),
            Err(fragment) => {
                let err = got.expect_err(input);
                assert!(err.contains(fragment), "{input:?}: {err}");
            }
        }
    }

    #[test]
    fn durations() {
        check("50ms", Ok(50_000));
        check("50", Ok(50_000));
        check("2s", Ok(2_000_000));
        check("1.5s", Ok(1_500_000));
        check("3m", Ok(180_000_000));
        check("1h", Ok(3_600_000_000));
        check(" 10 ms ", Ok(10_000));
        check("0", Ok(0));
        check("2d", Err("unknown duration unit"));
        check("fast", Err("not a duration"));
        check("25h", Err("24h limit"));
        check("", Err("not a duration"));
    }
}
