//! How argument values become text under each profile.

use super::Profile;
use crate::args;
use serde_json::Value;
use std::borrow::Cow;

/// mcpgw's text for a value (its `extractArguments`): strings as they are, `null` as "",
/// bools as words, numbers through a Go float64 (an int64 when exact, else `%g`), arrays and
/// objects as JSON text.
pub fn mcpgw_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            // Go's float64 → int64 conversion is exact only inside ±2^63.
            if f.fract() == 0.0 && f.abs() < 9.223_372_036_854_776e18 {
                (f as i64).to_string()
            } else {
                go_g(f)
            }
        }
        other => other.to_string(),
    }
}

/// mcpx's text for a scalar (`strconv.FormatFloat(f, 'f', -1, 64)` for numbers): `None` for
/// objects, arrays and null, which its rules deny.
pub fn mcpx_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        // Rust's shortest `Display` for f64 never uses an exponent, as 'f' with -1.
        Value::Number(n) => Some(format!("{}", n.as_f64().unwrap_or(f64::NAN))),
        _ => None,
    }
}

/// Go's `%g` with the shortest precision: exponent form when the exponent is below -4 or at
/// least 6 (Go's `%v` would use 21; mcpgw formats with `%g`), at least two exponent digits.
pub fn go_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let e = format!("{f:e}"); // shortest digits, e.g. "1.2345675e6", "1e-5"
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

/// The text a rule compares, under `profile`: `None` when the value cannot be compared as text.
/// A string is borrowed, not copied: rules run on every call.
pub fn value_text(profile: Profile, v: &Value) -> Option<Cow<'_, str>> {
    if let Value::String(s) = v {
        return Some(Cow::Borrowed(s));
    }
    match profile {
        Profile::Native => args::canonical(v).map(Cow::Owned),
        Profile::Mcpgw => Some(Cow::Owned(mcpgw_text(v))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_number_text() {
        assert_eq!(mcpgw_text(&json!(3.0)), "3");
        assert_eq!(mcpgw_text(&json!(0.5)), "0.5");
        assert_eq!(mcpgw_text(&json!(1234567.5)), "1.2345675e+06");
        assert_eq!(mcpgw_text(&json!(0.00001)), "1e-05");
        assert_eq!(mcpgw_text(&json!(1e21)), "1e+21");
        assert_eq!(mcpgw_text(&json!(9007199254740993u64)), "9007199254740992");
        assert_eq!(mcpgw_text(&json!(null)), "");
        assert_eq!(mcpgw_text(&json!({"a": 1})), r#"{"a":1}"#);
        assert_eq!(mcpx_text(&json!(1e21)).unwrap(), "1000000000000000000000");
        assert_eq!(mcpx_text(&json!(3.0)).unwrap(), "3");
        assert_eq!(mcpx_text(&json!([1])), None);
    }
}
