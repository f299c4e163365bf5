//! Qdrant geo points as the WKT text a Milvus GEOMETRY field takes (rows over REST, a utf8
//! Parquet column in an import), and WKT read back as coordinates for verification.

use serde_json::Value;

/// A Qdrant geo value as WKT: one point `{"lon": x, "lat": y}` → `POINT (x y)`, a list of them
/// → `MULTIPOINT (x1 y1, x2 y2)`. Written as Milvus writes WKT back (go-geom's encoder:
/// coordinates as the shortest decimal that reads back as the same double, never an exponent),
/// so nothing is rounded and the text round-trips. `Err`: why the value is no geo point.
pub fn from_geo(v: &Value) -> Result<String, String> {
    match v {
        Value::Object(_) => {
            let (x, y) = lon_lat(v)?;
            Ok(format!("POINT ({x} {y})"))
        }
        Value::Array(items) if !items.is_empty() => {
            let pts = items
                .iter()
                .map(|p| lon_lat(p).map(|(x, y)| format!("{x} {y}")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(format!("MULTIPOINT ({})", pts.join(", ")))
        }
        Value::Array(_) => Err("an empty list".into()),
        _ => Err("not an object".into()),
    }
}

/// The two numbers of `{"lon": x, "lat": y}` (no other key), in Qdrant's ranges.
fn lon_lat(v: &Value) -> Result<(f64, f64), String> {
    let o = v.as_object().ok_or("a list member that is not an object")?;
    let num = |k: &str| o.get(k).and_then(Value::as_f64);
    match (num("lon"), num("lat"), o.len()) {
        (Some(x), Some(y), 2) if (-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y) => {
            Ok((x, y))
        }
        (Some(_), Some(_), 2) => Err("lon or lat out of range".into()),
        _ => Err("an object other than {\"lon\": …, \"lat\": …}".into()),
    }
}

/// A POINT or MULTIPOINT as its kind and coordinates, whatever the spacing and either
/// MULTIPOINT form (`((1 2), (3 4))` or `(1 2, 3 4)`); `None` for other text.
pub fn points(wkt: &str) -> Option<(&'static str, Vec<(f64, f64)>)> {
    let t = wkt.trim();
    let upper = t.to_ascii_uppercase();
    let (kind, rest) = if let Some(r) = upper.strip_prefix("MULTIPOINT") {
        ("MULTIPOINT", &t[t.len() - r.len()..])
    } else if let Some(r) = upper.strip_prefix("POINT") {
        ("POINT", &t[t.len() - r.len()..])
    } else {
        return None;
    };
    let body = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    let coords = body
        .split(',')
        .map(|p| {
            let p = p.trim().trim_start_matches('(').trim_end_matches(')');
            let mut it = p.split_whitespace().map(str::parse::<f64>);
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(x)), Some(Ok(y)), None) => Some((x, y)),
                _ => None,
            }
        })
        .collect::<Option<Vec<_>>>()?;
    (kind == "MULTIPOINT" || coords.len() == 1).then_some((kind, coords))
}

/// Whether two WKT texts hold the same points (same kind, coordinates equal as doubles).
pub fn same(a: &str, b: &str) -> bool {
    points(a).is_some_and(|p| Some(p) == points(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn geo_points_become_wkt_that_reads_back_exact() {
        let p = from_geo(&json!({"lon": 13.408223, "lat": 52.516876})).unwrap();
        assert_eq!(p, "POINT (13.408223 52.516876)");
        let fine = json!({"lat": -33.868820000000014, "lon": 151.20929});
        let w = from_geo(&fine).unwrap();
        assert_eq!(
            points(&w).unwrap().1,
            vec![(151.20929, -33.868820000000014)]
        );
        let m = from_geo(&json!([{"lon": 1, "lat": 2}, {"lon": -3.5, "lat": 4.25}])).unwrap();
        assert_eq!(m, "MULTIPOINT (1 2, -3.5 4.25)");
        assert!(same(&m, "MULTIPOINT((1 2),(-3.5 4.25))"));
        let tiny = from_geo(&json!({"lon": 1e-20, "lat": -0.0})).unwrap();
        assert_eq!(
            tiny, "POINT (0.00000000000000000001 -0)",
            "no exponent, as Go's 'f', -1"
        );
        assert!(same("POINT(13.408223 52.516876)", &p));
        assert!(!same("POINT (13.408224 52.516876)", &p));
        assert!(!same("MULTIPOINT ((13.408223 52.516876))", &p));
    }

    #[test]
    fn what_is_no_geo_point_says_why() {
        for bad in [
            json!({"lon": 1}),
            json!({"lon": 1, "lat": 2, "alt": 3}),
            json!({"lon": 181, "lat": 0}),
            json!("POINT (1 2)"),
            json!([]),
            json!([{"lon": 1, "lat": 2}, 5]),
        ] {
            assert!(from_geo(&bad).is_err(), "{bad}");
        }
        assert_eq!(points("LINESTRING (1 2, 3 4)"), None);
        assert_eq!(points("POINT (1 2, 3 4)"), None);
    }
}
