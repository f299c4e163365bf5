//! The JSON q2z sends to Milvus's REST layer, written so the server reads back the same values.
//! Milvus's Go REST layer (internal/distributed/proxy/httpserver/utils.go, `checkAndSetData`,
//! parsing the row with gjson) reads a top-level dynamic-field number whose raw text has no `.`
//! with `cast.ToInt64(mapValue.String())`, errors discarded (`1e-6`, `1e21` and integers above
//! i64::MAX become 0), one with a `.` with `cast.ToFloat64(raw)`, an object or array value with
//! gjson's `Value()` (every number a float64: integers beyond 2^53 rounded), and skips `null`
//! values. Floats are therefore always written with a `.` ([`to_vec`]), and rows holding values
//! the layer cannot carry exactly are found by [`inexact_value`] so they go through bulk import.

use crate::transform::mapping::{CollectionMapping, META, VectorKind};
use base64::Engine;
use serde_json::{Map, Value};
use std::io::Write;

/// serde_json's formatter, except that a float always has a `.` (`1e21` → `1000000000000000000000.0`,
/// `1e-6` → `0.000001`): Rust's shortest round-trip decimal, never an exponent.
#[derive(Default)]
struct FloatsWithPoint {
    buf: String,
}

impl serde_json::ser::Formatter for FloatsWithPoint {
    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> std::io::Result<()> {
        use std::fmt::Write as _;
        self.buf.clear();
        let _ = write!(self.buf, "{value}");
        if !self.buf.contains('.') {
            self.buf.push_str(".0");
        }
        w.write_all(self.buf.as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> std::io::Result<()> {
        self.write_f64(w, f64::from(value))
    }
}

/// A request body as bytes, floats written with a `.`.
pub fn to_vec(body: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, FloatsWithPoint::default());
    serde::Serialize::serialize(body, &mut ser).expect("a JSON value always serializes");
    out
}

/// Largest integer float64 holds exactly.
const EXACT_IN_F64: u64 = 1 << 53;

/// Why a REST row's dynamic (`$meta`) values would not reach the target exactly, if one would
/// not: an integer above i64::MAX at the top of a key (read by `cast.ToInt64`), or an integer
/// beyond ±2^53 inside a key's object or array (read through float64).
pub fn inexact_value(meta: &serde_json::Map<String, Value>) -> Option<String> {
    fn nested(key: &str, v: &Value) -> Option<String> {
        match v {
            Value::Number(n) => {
                let big = n.as_u64().is_some_and(|u| u > EXACT_IN_F64)
                    || n.as_i64().is_some_and(|i| i.unsigned_abs() > EXACT_IN_F64);
                big.then(|| format!("payload key '{key}' holds the integer {n} inside an object or array, which Milvus's REST layer reads as a float64 (rounded above 2^53)"))
            }
            Value::Array(a) => a.iter().find_map(|x| nested(key, x)),
            Value::Object(o) => o.values().find_map(|x| nested(key, x)),
            _ => None,
        }
    }
    meta.iter().find_map(|(k, v)| match v {
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => Some(format!(
            "payload key '{k}' holds {n}, above the largest Int64, which Milvus's REST layer turns into 0"
        )),
        Value::Array(_) | Value::Object(_) => nested(k, v),
        _ => None,
    })
}

/// A staged row as Milvus's REST insert/upsert takes it: `$meta` keys go to the top level (the
/// dynamic field); float16 vectors as base64 of their little-endian bytes, the one form every
/// line reads (utils.go `checkAndSetData`: 2.4 takes only base64, 2.5+ also float arrays), and
/// exact (the staged floats are the float16 values, so the bytes are the staged ones).
pub fn rest_row(mut r: Map<String, Value>, m: &CollectionMapping) -> Map<String, Value> {
    if let Some(Value::Object(meta)) = r.remove(META) {
        for (k, v) in meta {
            r.insert(k, v);
        }
    }
    for v in m
        .vectors
        .iter()
        .filter(|v| v.kind == VectorKind::Float16Vector)
    {
        if let Some(Value::Array(xs)) = r.get(&v.field) {
            let bytes: Vec<u8> = xs
                .iter()
                .flat_map(|x| half::f16::from_f64(x.as_f64().unwrap_or(f64::NAN)).to_le_bytes())
                .collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            r.insert(v.field.clone(), Value::String(b64));
        }
    }
    r
}

/// Why a staged row cannot go over REST unchanged (see [`inexact_value`]), with its id.
pub fn rest_refusal(r: &Map<String, Value>, m: &CollectionMapping) -> Option<String> {
    let meta = r.get(META)?.as_object()?;
    inexact_value(meta).map(|why| format!("point {}: {why}", r[&m.id_field]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_keep_a_point_and_their_value() {
        let body = json!({"a": 1e21, "b": 1e-6, "c": 0.5, "d": 3.0, "e": -2.5e-300, "i": 7, "u": u64::MAX});
        let text = String::from_utf8(to_vec(&body)).unwrap();
        assert!(text.contains("\"a\":1000000000000000000000.0"), "{text}");
        assert!(text.contains("\"b\":0.000001"), "{text}");
        assert!(
            text.contains("\"c\":0.5") && text.contains("\"d\":3.0"),
            "{text}"
        );
        assert!(
            text.contains("\"i\":7,") && text.contains("\"u\":18446744073709551615"),
            "{text}"
        );
        let back: Value = serde_json::from_slice(text.as_bytes()).unwrap();
        assert_eq!(back, body, "every value reads back the same");
    }

    #[test]
    fn float16_vectors_go_as_base64_of_their_bytes_and_meta_to_the_top() {
        use crate::transform::mapping::{IdKind, test_mapping};
        let mut m = test_mapping(crate::model::Distance::Cosine, IdKind::Int64);
        m.vectors[0].kind = VectorKind::Float16Vector;
        let field = m.vectors[0].field.clone();
        let halves = [0.1f32, -65504.0, 3.0e-5];
        let staged: Vec<f32> = halves
            .iter()
            .map(|x| half::f16::from_f32(*x).to_f32())
            .collect();
        let mut row = Map::new();
        row.insert(field.clone(), json!(staged));
        row.insert(META.into(), json!({"k": 1}));
        let out = rest_row(row, &m);
        let b64 = out[&field].as_str().expect("base64 text");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let want: Vec<u8> = halves
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect();
        assert_eq!(bytes, want, "the staged float16 values, byte for byte");
        assert_eq!(out["k"], 1);
        assert!(!out.contains_key(META));
    }

    #[test]
    fn values_the_rest_layer_changes_are_named() {
        let m = |v: Value| v.as_object().unwrap().clone();
        assert!(inexact_value(&m(json!({"a": 1, "b": i64::MAX, "c": -5, "f": 1e21}))).is_none());
        assert!(
            inexact_value(&m(json!({"big": 9_223_372_036_854_775_808u64})))
                .unwrap()
                .contains("'big'")
        );
        assert!(
            inexact_value(&m(json!({"n": {"x": [9_007_199_254_740_993u64]}})))
                .unwrap()
                .contains("float64")
        );
        assert!(
            inexact_value(&m(
                json!({"n": {"x": [9_007_199_254_740_992u64, -9_007_199_254_740_992i64]}})
            ))
            .is_none()
        );
        assert!(inexact_value(&m(json!({"n": [-9_007_199_254_740_993i64]}))).is_some());
    }
}
