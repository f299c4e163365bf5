//! Qdrant datetimes as instants: the text forms Qdrant's `datetime` index reads, and the text a
//! Milvus TIMESTAMPTZ field answers with (what q2z stages for it).

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// The instant Qdrant reads from a datetime text (lib/segment/src/types.rs,
/// `DateTimePayloadType::from_str`, in its order): RFC 3339; a date and time with `T` or a space
/// and an offset with or without its colon; without an offset (UTC): seconds with an optional
/// fraction, minutes only, or a date alone. `None`: text Qdrant does not take as a datetime.
pub fn parse_qdrant(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(t) = DateTime::parse_from_str(s, f) {
            return Some(t.with_timezone(&Utc));
        }
    }
    const NAIVE: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .map(|t| t.and_utc())
}

/// The instant as a Milvus TIMESTAMPTZ answers it in UTC (internal/proxy/util.go
/// `timestamptzUTC2IsoStr`: microseconds, RFC 3339 with trailing zeros of the fraction dropped,
/// `Z`); digits past the microsecond are cut, as `UnixMicro` does when Milvus stores it.
pub fn milvus_text(t: DateTime<Utc>) -> String {
    let micros = t.timestamp_subsec_micros();
    let mut s = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    if micros > 0 {
        let frac = format!("{micros:06}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Whether two datetime texts (Qdrant's or Milvus's forms) are the same instant to the
/// microsecond.
pub fn same(a: &str, b: &str) -> bool {
    let micros = |s: &str| parse_qdrant(s).map(|t| t.timestamp_micros());
    micros(a).is_some() && micros(a) == micros(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> String {
        milvus_text(parse_qdrant(s).unwrap())
    }

    #[test]
    fn qdrant_datetimes_become_the_text_milvus_answers() {
        assert_eq!(text("2024-01-01T10:00:00+02:00"), "2024-01-01T08:00:00Z");
        assert_eq!(
            text("2024-01-01T10:00:00.123456789Z"),
            "2024-01-01T10:00:00.123456Z"
        );
        assert_eq!(text("2024-01-01T10:00:00.5Z"), "2024-01-01T10:00:00.5Z");
        assert_eq!(text("2024-03-05 07:08:09"), "2024-03-05T07:08:09Z");
        assert_eq!(text("2024-03-05 07:08:09+0130"), "2024-03-05T05:38:09Z");
        assert_eq!(text("2024-03-05T07:08"), "2024-03-05T07:08:00Z");
        assert_eq!(text("2024-03-05"), "2024-03-05T00:00:00Z");
        assert_eq!(
            text("1969-12-31T23:59:59.9999999Z"),
            "1969-12-31T23:59:59.999999Z",
            "cut toward the earlier instant, as UnixMicro"
        );
        assert_eq!(parse_qdrant("yesterday"), None);
        assert_eq!(parse_qdrant("2024-13-01"), None);
        assert!(same("2024-01-01T10:00:00+02:00", "2024-01-01T08:00:00Z"));
        assert!(!same("2024-01-01T10:00:00Z", "2024-01-01T08:00:00Z"));
    }
}
