//! Typed parsing of Qdrant's scroll answer straight from the response bytes: vectors go into
//! `Vec<f32>` without a `serde_json::Value` per float (the hot path of a live export).

use crate::error::{Error, Result};
use crate::model::{Point, PointId, UNNAMED_VECTOR, VectorValue};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Deserialize)]
struct Envelope {
    result: Page,
}

#[derive(Deserialize)]
struct Page {
    points: Vec<RawPoint>,
    #[serde(default)]
    next_page_offset: Option<Value>,
}

#[derive(Deserialize)]
struct RawPoint {
    id: Value,
    #[serde(default)]
    payload: Option<Map<String, Value>>,
    #[serde(default)]
    vector: Option<RawVectors>,
    /// Custom sharding: the point's shard key (a string or an integer).
    #[serde(default)]
    shard_key: Option<Value>,
}

/// `vector` of a point: one unnamed vector, or vectors by name.
enum RawVectors {
    Unnamed(VectorValue),
    Named(BTreeMap<String, VectorValue>),
}

/// One vector: dense `[..]`, multi `[[..],..]` or sparse `{"indices","values"}`.
struct AnyVector(VectorValue);

/// First element of a vector array: a number (dense) or an array (multivector).
enum Head {
    Num(f32),
    Row(Vec<f32>),
}

impl<'de> Deserialize<'de> for Head {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Head;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number or an array of numbers")
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> std::result::Result<Head, E> {
                Ok(Head::Num(x as f32))
            }
            fn visit_u64<E: de::Error>(self, x: u64) -> std::result::Result<Head, E> {
                Ok(Head::Num(x as f32))
            }
            fn visit_i64<E: de::Error>(self, x: i64) -> std::result::Result<Head, E> {
                Ok(Head::Num(x as f32))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> std::result::Result<Head, A::Error> {
                let mut row = Vec::with_capacity(s.size_hint().unwrap_or(128));
                while let Some(x) = s.next_element::<f32>()? {
                    row.push(x);
                }
                Ok(Head::Row(row))
            }
        }
        d.deserialize_any(V)
    }
}

fn vector_from_seq<'de, A: SeqAccess<'de>>(mut s: A) -> std::result::Result<VectorValue, A::Error> {
    match s.next_element::<Head>()? {
        None => Ok(VectorValue::Dense(Vec::new())),
        Some(Head::Num(first)) => {
            let mut v = Vec::with_capacity(1024);
            v.push(first);
            while let Some(x) = s.next_element::<f32>()? {
                v.push(x);
            }
            v.shrink_to_fit();
            Ok(VectorValue::Dense(v))
        }
        Some(Head::Row(first)) => {
            let mut rows = vec![first];
            while let Some(r) = s.next_element::<Vec<f32>>()? {
                rows.push(r);
            }
            Ok(VectorValue::Multi(rows))
        }
    }
}

impl<'de> Deserialize<'de> for AnyVector {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyVector;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a dense, multi or sparse vector")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                s: A,
            ) -> std::result::Result<AnyVector, A::Error> {
                vector_from_seq(s).map(AnyVector)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<AnyVector, A::Error> {
                let (mut indices, mut values) = (None, None);
                while let Some(k) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                    match k.as_ref() {
                        "indices" => indices = Some(m.next_value::<Vec<u32>>()?),
                        "values" => values = Some(m.next_value::<Vec<f32>>()?),
                        _ => {
                            m.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                match (indices, values) {
                    (Some(indices), Some(values)) if indices.len() == values.len() => {
                        Ok(AnyVector(VectorValue::Sparse { indices, values }))
                    }
                    _ => Err(de::Error::custom(
                        "a sparse vector needs indices and values of equal length",
                    )),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for RawVectors {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawVectors;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a vector or a map of named vectors")
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                s: A,
            ) -> std::result::Result<RawVectors, A::Error> {
                vector_from_seq(s).map(RawVectors::Unnamed)
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut m: A,
            ) -> std::result::Result<RawVectors, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<String, AnyVector>()? {
                    out.insert(k, v.0);
                }
                Ok(RawVectors::Named(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a whole scroll answer (`{"result": {"points": [...], "next_page_offset": ..}}`).
pub fn parse_scroll_bytes(collection: &str, bytes: &[u8]) -> Result<(Vec<Point>, Option<PointId>)> {
    let bad = |m: String| Error::Protocol {
        what: "Qdrant",
        call: format!("scroll of {collection}"),
        message: m,
    };
    let env: Envelope =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("unexpected answer ({e})")))?;
    let next = match env.result.next_page_offset {
        None | Some(Value::Null) => None,
        Some(v) => {
            Some(PointId::from_json(&v).ok_or_else(|| bad(format!("bad next_page_offset {v}")))?)
        }
    };
    let points = env
        .result
        .points
        .into_iter()
        .map(|p| {
            let id =
                PointId::from_json(&p.id).ok_or_else(|| bad(format!("bad point id {}", p.id)))?;
            let vectors = match p.vector {
                None => BTreeMap::new(),
                Some(RawVectors::Named(m)) => m,
                Some(RawVectors::Unnamed(v)) => BTreeMap::from([(UNNAMED_VECTOR.to_string(), v)]),
            };
            Ok(Point {
                id,
                vectors,
                payload: p.payload.unwrap_or_default(),
                shard_key: p.shard_key.filter(|k| !k.is_null()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((points, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_vector_shape() {
        let text = br#"{"result":{"points":[
            {"id":1,"payload":{"a":null},"vector":[0.5,-1,2]},
            {"id":"6f1c3e4a-0000-4000-8000-000000000001","vector":{"d":[1.5,2],"s":{"indices":[3,9],"values":[0.25,1]},"m":[[1,2],[3,4]]}},
            {"id":18446744073709551615}
        ],"next_page_offset":7},"status":"ok","time":0.1}"#;
        let (pts, next) = parse_scroll_bytes("c", text).unwrap();
        assert_eq!(next, Some(PointId::Num(7)));
        assert_eq!(pts.len(), 3);
        assert_eq!(
            pts[0].vectors[UNNAMED_VECTOR],
            VectorValue::Dense(vec![0.5, -1.0, 2.0])
        );
        assert_eq!(pts[0].payload["a"], Value::Null);
        assert_eq!(pts[1].vectors["d"], VectorValue::Dense(vec![1.5, 2.0]));
        assert_eq!(
            pts[1].vectors["s"],
            VectorValue::Sparse {
                indices: vec![3, 9],
                values: vec![0.25, 1.0]
            }
        );
        assert_eq!(
            pts[1].vectors["m"],
            VectorValue::Multi(vec![vec![1.0, 2.0], vec![3.0, 4.0]])
        );
        assert_eq!(pts[2].id, PointId::Num(u64::MAX));
        assert!(pts[2].vectors.is_empty());
        assert!(parse_scroll_bytes("c", br#"{"result":{"points":[{"id":true}]}}"#).is_err());
    }
}
