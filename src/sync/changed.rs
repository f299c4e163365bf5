//! `sync --changed-since-field F`: the Qdrant filter that reads only the points an application
//! marked as changed (a datetime or integer payload field it updates on every write), and the
//! bound it starts from.

use crate::error::{Error, Result};
use crate::source::CollectionSource;
use serde_json::{Value, json};

/// What the change field holds, which decides the filter's bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// RFC 3339 text (`2026-11-30T08:00:00Z`), or a Qdrant `datetime` index.
    Datetime,
    /// A number: Unix seconds unless `--since` says otherwise (a version counter, ms).
    Integer,
}

/// Where a change-field pass starts, as a value of the field.
pub fn bound(kind: FieldKind, unix_secs: u64) -> Value {
    match kind {
        FieldKind::Integer => json!(unix_secs),
        FieldKind::Datetime => {
            let t = chrono::DateTime::from_timestamp(unix_secs as i64, 0).unwrap_or_default();
            json!(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        }
    }
}

/// The bound of a pass given no `--since`: a counter's is the largest value the last pass
/// read, less `margin`; a time's is the start of the last pass, or of the export, less
/// `margin` seconds. An error says what to give as `--since` when neither is known (a counter
/// no pass has read yet; snapshot files, whose time q2z cannot know).
pub fn next_bound(
    field: &str,
    kind: FieldKind,
    margin: u64,
    pass: &crate::stage::sync_state::PassState,
    export_taken_at: Option<u64>,
) -> std::result::Result<Value, String> {
    let from = pass.last_started_at.or(export_taken_at);
    match kind {
        FieldKind::Integer => match &pass.last_max_seen {
            Some(max) => Ok(minus(max, margin)),
            None => Err(format!(
                "--changed-since-field {field} holds numbers, and no sync pass has read it yet: give --since with the value it held when the export began (a version counter's value then{})",
                from.map_or(String::new(), |t| format!(
                    "; for Unix seconds: --since {}",
                    t.saturating_sub(margin)
                ))
            )),
        },
        FieldKind::Datetime => from.map(|t| bound(kind, t.saturating_sub(margin))).ok_or_else(|| {
            "it was exported from snapshot files, whose time q2z cannot know, and has not been synced since: give --since with the time the snapshot was taken (RFC 3339, e.g. 2026-11-30T08:00:00Z), or run this first sync without --changed-since-field (the digest diff)".to_string()
        }),
    }
}

/// A number less `margin`, in the number's own kind (an integer stays an integer).
fn minus(v: &Value, margin: u64) -> Value {
    if let Some(i) = v.as_i64() {
        return json!(i.saturating_sub(i64::try_from(margin).unwrap_or(i64::MAX)));
    }
    if let Some(u) = v.as_u64() {
        return json!(u.saturating_sub(margin));
    }
    json!(v.as_f64().unwrap_or(0.0) - margin as f64)
}

/// The larger of two numbers of a counter field (`None` is smaller than any).
pub fn larger(a: Option<Value>, b: Option<Value>) -> Option<Value> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if number_lt(&a, &b) { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// `a < b` for JSON numbers, exact for integers.
fn number_lt(a: &Value, b: &Value) -> bool {
    match (a.as_i64(), b.as_i64(), a.as_u64(), b.as_u64()) {
        (Some(x), Some(y), _, _) => x < y,
        (_, _, Some(x), Some(y)) => x < y,
        _ => a.as_f64().unwrap_or(f64::MIN) < b.as_f64().unwrap_or(f64::MIN),
    }
}

/// The number a point holds in a counter field (`None`: absent, or not a number).
pub fn counter_value(payload: &serde_json::Map<String, Value>, field: &str) -> Option<Value> {
    at_path(payload, field).filter(|v| v.is_number()).cloned()
}

/// Whether text is a time Qdrant's `datetime` index takes.
pub fn is_datetime(s: &str) -> bool {
    crate::transform::instant::parse_qdrant(s).is_some()
}

/// Parses `--since`: a number (Int field) or an RFC 3339 time (datetime field).
pub fn parse_since(s: &str) -> std::result::Result<Value, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        return Ok(json!(n));
    }
    if let Ok(n) = s.parse::<f64>()
        && n.is_finite()
    {
        return Ok(json!(n));
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|_| json!(s))
        .map_err(|e| {
            format!(
                "'{s}' is neither a number nor an RFC 3339 time like 2026-11-30T08:00:00Z ({e})"
            )
        })
}

/// The filter of the points to read again: the field at or after `since`, or missing / empty
/// (such points cannot say when they changed, so they are read on every pass).
pub fn changed_filter(field: &str, since: &Value) -> Value {
    json!({"should": [
        {"key": field, "range": {"gte": since}},
        {"is_empty": {"key": field}},
    ]})
}

/// The value at a dotted payload path (`meta.updated_at`).
pub fn at_path<'a>(payload: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = payload.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut v = payload.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

/// What the field holds: the type of its Qdrant payload index, else the value in one point
/// that has it.
pub fn field_kind(src: &dyn CollectionSource, field: &str) -> Result<FieldKind> {
    let name = &src.config().name;
    match src.config().payload_schema.get(field).map(String::as_str) {
        Some("datetime") => return Ok(FieldKind::Datetime),
        Some("integer" | "float") => return Ok(FieldKind::Integer),
        Some(other) => {
            return Err(Error::Other(format!(
                "--changed-since-field {field}: collection {name} indexes it as {other}; the change field must hold a datetime or an integer (updated on every write). Use the digest diff (leave the flag out)"
            )));
        }
        None => {}
    }
    let has = json!({"must_not": [{"is_empty": {"key": field}}]});
    let (pts, _) = src.scroll_where(None, 1, true, &has)?;
    let Some(p) = pts.first() else {
        return Err(Error::Other(format!(
            "--changed-since-field {field}: no point of collection {name} has payload field '{field}'; check the name, or use the digest diff (leave the flag out)"
        )));
    };
    match at_path(&p.payload, field) {
        Some(Value::Number(_)) => Ok(FieldKind::Integer),
        Some(Value::String(s)) if is_datetime(s) => Ok(FieldKind::Datetime),
        other => Err(Error::Other(format!(
            "--changed-since-field {field}: point {} of collection {name} holds {} there; the change field must hold a datetime or an integer. Use the digest diff (leave the flag out)",
            p.id,
            other.map_or("nothing".to_string(), |v| v.to_string())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_the_fields_own_units() {
        assert_eq!(
            bound(FieldKind::Integer, 1_764_489_600),
            json!(1_764_489_600u64)
        );
        assert_eq!(
            bound(FieldKind::Datetime, 1_764_489_600),
            json!("2025-11-30T08:00:00Z")
        );
    }

    #[test]
    fn a_counters_next_bound_is_the_largest_value_read_not_a_time() {
        let mut pass = crate::stage::sync_state::PassState {
            last_started_at: Some(1_764_489_600),
            ..Default::default()
        };
        // No pass has read the counter yet: --since is asked for, never a time guessed.
        let e = next_bound("rev", FieldKind::Integer, 0, &pass, None).unwrap_err();
        assert!(e.contains("--since 1764489600"), "{e}");
        pass.last_max_seen = Some(json!(42));
        assert_eq!(
            next_bound("rev", FieldKind::Integer, 5, &pass, None),
            Ok(json!(37))
        );
        assert_eq!(
            next_bound("rev", FieldKind::Integer, 50, &pass, None),
            Ok(json!(-8))
        );
        // A datetime field keeps its time bound.
        assert_eq!(
            next_bound("t", FieldKind::Datetime, 0, &pass, None),
            Ok(json!("2025-11-30T08:00:00Z"))
        );
        assert!(next_bound("t", FieldKind::Datetime, 0, &Default::default(), None).is_err());
        assert_eq!(larger(Some(json!(3)), Some(json!(10))), Some(json!(10)));
        assert_eq!(larger(None, Some(json!(-1))), Some(json!(-1)));
        assert_eq!(
            larger(Some(json!(u64::MAX)), Some(json!(1))),
            Some(json!(u64::MAX))
        );
    }

    #[test]
    fn only_real_times_are_datetimes() {
        for ok in [
            "2026-11-30T08:00:00Z",
            "2026-11-30 08:00:00.5",
            "2026-11-30",
            "2026-11-30T08:00:00.123+01:00",
        ] {
            assert!(is_datetime(ok), "{ok}");
        }
        for bad in ["hello world!", "ABCDEFGHIJKL", "2026-13-40", "12345678901"] {
            assert!(!is_datetime(bad), "{bad}");
        }
    }

    #[test]
    fn since_is_a_number_or_a_time() {
        assert_eq!(parse_since("42").unwrap(), json!(42));
        assert_eq!(
            parse_since("2026-11-30T08:00:00+01:00").unwrap(),
            json!("2026-11-30T08:00:00+01:00")
        );
        assert!(parse_since("yesterday").unwrap_err().contains("RFC 3339"));
    }

    #[test]
    fn the_filter_also_reads_points_without_the_field() {
        let f = changed_filter("updated_at", &json!(7));
        assert_eq!(f["should"][0]["range"]["gte"], 7);
        assert_eq!(f["should"][1]["is_empty"]["key"], "updated_at");
    }

    #[test]
    fn dotted_paths_reach_nested_values() {
        let p: serde_json::Map<String, Value> =
            serde_json::from_value(json!({"meta": {"t": 3}, "a.b": 1})).unwrap();
        assert_eq!(at_path(&p, "meta.t"), Some(&json!(3)));
        assert_eq!(at_path(&p, "a.b"), Some(&json!(1)));
        assert_eq!(at_path(&p, "meta.x"), None);
    }
}
