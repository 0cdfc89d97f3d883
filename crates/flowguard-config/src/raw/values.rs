//! Scalar value types of the raw model: durations and counts.
//!
//! Both accept a number or a string, because `${VAR}` expansion always yields a string
//! (`port = "${PORT}"` must work), and both check their value while deserializing so the error
//! carries the config path.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, Deserialize, Deserializer, Visitor};

/// A positive duration: integer seconds, or a string of digits with a unit `ms`, `s`, `m` or
/// `h` (`"500ms"`, `"30s"`, `"5m"`, `"6h"`; digits alone are seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DurationValue(pub Duration);

/// A duration where zero means "off": `0`, `"0s"` or `"off"` turn the feature off; anything else
/// is a [`DurationValue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IntervalValue(pub Option<Duration>);

/// A non-negative integer, written as a number or as a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Count(pub u64);

/// Parses `"500ms"`, `"30s"`, `"5m"`, `"6h"` or `"30"` (seconds) into a positive duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(digits_end);
    let expected = "expected integer seconds or a number with a unit ms, s, m or h, \
                    like \"500ms\", \"30s\", \"5m\", \"6h\"";
    let amount: u64 = digits
        .parse()
        .map_err(|_| format!("invalid duration \"{text}\"; {expected}"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("invalid duration unit in \"{text}\"; {expected}")),
    };
    let millis = amount
        .checked_mul(millis_per_unit)
        .ok_or_else(|| format!("duration \"{text}\" is too large"))?;
    if millis == 0 {
        return Err(format!("duration \"{text}\" must be positive"));
    }
    Ok(Duration::from_millis(millis))
}

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = DurationValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration: integer seconds or a string like \"30s\"")
            }
            fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<DurationValue, E> {
                if seconds == 0 {
                    return Err(E::custom("duration must be positive, got 0"));
                }
                Ok(DurationValue(Duration::from_secs(seconds)))
            }
            fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<DurationValue, E> {
                match u64::try_from(seconds) {
                    Ok(seconds) => self.visit_u64(seconds),
                    Err(_) => Err(E::custom(format!(
                        "duration must be positive, got {seconds}"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<DurationValue, E> {
                parse_duration(text).map(DurationValue).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

impl<'de> Deserialize<'de> for IntervalValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IntervalVisitor;
        impl Visitor<'_> for IntervalVisitor {
            type Value = IntervalValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration (integer seconds or a string like \"30s\"), or 0 for off")
            }
            fn visit_u64<E: de::Error>(self, seconds: u64) -> Result<IntervalValue, E> {
                Ok(IntervalValue(
                    (seconds > 0).then(|| Duration::from_secs(seconds)),
                ))
            }
            fn visit_i64<E: de::Error>(self, seconds: i64) -> Result<IntervalValue, E> {
                match u64::try_from(seconds) {
                    Ok(seconds) => self.visit_u64(seconds),
                    Err(_) => Err(E::custom(format!(
                        "duration must not be negative, got {seconds}"
                    ))),
                }
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<IntervalValue, E> {
                let t = text.trim();
                let number = ["ms", "s", "m", "h"]
                    .iter()
                    .find_map(|unit| t.strip_suffix(unit))
                    .unwrap_or(t);
                if t == "off" || (!number.is_empty() && number.bytes().all(|b| b == b'0')) {
                    return Ok(IntervalValue(None));
                }
                parse_duration(text)
                    .map(|d| IntervalValue(Some(d)))
                    .map_err(E::custom)
            }
        }
        deserializer.deserialize_any(IntervalVisitor)
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;
        impl Visitor<'_> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Count, E> {
                Ok(Count(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Count, E> {
                u64::try_from(n)
                    .map(Count)
                    .map_err(|_| E::custom(format!("expected a non-negative integer, got {n}")))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Count, E> {
                text.trim().parse().map(Count).map_err(|_| {
                    E::custom(format!("expected a non-negative integer, got \"{text}\""))
                })
            }
        }
        deserializer.deserialize_any(CountVisitor)
    }
}

impl JsonSchema for DurationValue {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Integer seconds, or a string with a unit: \"500ms\", \"30s\", \"5m\", \"6h\".",
            "anyOf": [
                { "type": "integer", "minimum": 1 },
                { "type": "string" }
            ]
        })
    }
}

impl JsonSchema for IntervalValue {
    fn schema_name() -> Cow<'static, str> {
        "Interval".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Integer seconds, or a string with a unit (\"500ms\", \"30s\", \"5m\"); 0 or \"off\" turns it off.",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string" }
            ]
        })
    }
}

impl JsonSchema for Count {
    fn schema_name() -> Cow<'static, str> {
        "Count".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A non-negative integer (a string of digits is accepted, for ${VAR}).",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "type": "string", "pattern": "^[0-9]+$" }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(21_600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("0s").unwrap_err().contains("positive"));
        assert!(parse_duration("5x").unwrap_err().contains("unit"));
        assert!(parse_duration("1.5s").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }

    #[test]
    fn durations_and_counts_deserialize_from_numbers_and_strings() {
        let d: DurationValue = serde_json::from_value(json!(10)).unwrap();
        assert_eq!(d.0, Duration::from_secs(10));
        let d: DurationValue = serde_json::from_value(json!("250ms")).unwrap();
        assert_eq!(d.0, Duration::from_millis(250));
        assert!(serde_json::from_value::<DurationValue>(json!(0)).is_err());
        assert!(serde_json::from_value::<DurationValue>(json!(-3)).is_err());
        assert!(serde_json::from_value::<DurationValue>(json!(true)).is_err());
        assert_eq!(
            serde_json::from_value::<Count>(json!("8080")).unwrap(),
            Count(8080)
        );
        assert!(serde_json::from_value::<Count>(json!(-1)).is_err());
    }

    #[test]
    fn intervals_take_zero_or_off_as_off() {
        for off in [json!(0), json!("0"), json!("0s"), json!("off")] {
            assert_eq!(
                serde_json::from_value::<IntervalValue>(off).unwrap(),
                IntervalValue(None)
            );
        }
        let i: IntervalValue = serde_json::from_value(json!("15s")).unwrap();
        assert_eq!(i.0, Some(Duration::from_secs(15)));
        assert!(serde_json::from_value::<IntervalValue>(json!("soon")).is_err());
    }
}
