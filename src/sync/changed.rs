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
fn at_path<'a>(payload: &'a serde_json::Map<String, Value>, path: &str) -> Option<&'a Value> {
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
        Some(Value::String(s)) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {
            Ok(FieldKind::Datetime)
        }
        Some(Value::String(s)) if s.len() >= 10 => Ok(FieldKind::Datetime),
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
