//! Payload keys promoted to typed, nullable Milvus scalar fields (docs/design.md §5): their types, their
//! Arrow columns, and the checks that name the points whose values do not fit.

use crate::error::{Error, Result};
use crate::model::Point;
use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, StringBuilder,
};
use arrow::datatypes::{DataType, Field};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// A promoted field's type: the kind and, for an `Array`, the element kind.
pub type ScalarType = (ScalarKind, Option<ScalarKind>);

/// Milvus type of a promoted payload key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScalarKind {
    /// Integers in −2^63..2^63−1.
    Int64,
    /// Any JSON number.
    Double,
    /// `true` / `false`.
    Bool,
    /// Strings of at most `max_length` UTF-8 bytes.
    VarChar,
    /// Any JSON value, kept as JSON.
    #[serde(rename = "JSON")]
    Json,
    /// A JSON array of `element_type` values without nulls.
    Array,
    /// A Qdrant geo point (`{"lon", "lat"}`, or a list of them) as WKT: `POINT (lon lat)` /
    /// `MULTIPOINT ((lon lat), …)` (Milvus 2.6.4+; RTREE index).
    Geometry,
    /// A Qdrant datetime as its instant, to the microsecond, in UTC (Milvus 2.6.6+; STL_SORT).
    Timestamptz,
}

impl ScalarKind {
    /// Parses `Int64`, `Double`, `Bool`, `VarChar`, `JSON` or `Array<Elem>` (case-insensitive).
    pub fn parse(s: &str) -> Option<ScalarType> {
        let lower = s.to_ascii_lowercase();
        if let Some(inner) = lower
            .strip_prefix("array<")
            .and_then(|r| r.strip_suffix('>'))
        {
            let (e, _) = ScalarKind::parse(inner)?;
            return matches!(
                e,
                ScalarKind::Int64 | ScalarKind::Double | ScalarKind::Bool | ScalarKind::VarChar
            )
            .then_some((ScalarKind::Array, Some(e)));
        }
        Some((
            match lower.as_str() {
                "int64" | "int" | "integer" => ScalarKind::Int64,
                "double" | "float" => ScalarKind::Double,
                "bool" | "boolean" => ScalarKind::Bool,
                "varchar" | "string" | "keyword" => ScalarKind::VarChar,
                "json" => ScalarKind::Json,
                "geometry" | "geo" => ScalarKind::Geometry,
                "timestamptz" => ScalarKind::Timestamptz,
                _ => return None,
            },
            None,
        ))
    }

    /// The type Qdrant's payload index `data_type` suggests, if any.
    pub fn from_qdrant_index(data_type: &str) -> Option<ScalarKind> {
        Some(match data_type {
            "integer" => ScalarKind::Int64,
            "float" => ScalarKind::Double,
            "bool" => ScalarKind::Bool,
            "keyword" | "uuid" | "text" | "datetime" => ScalarKind::VarChar,
            "geo" => ScalarKind::Geometry,
            _ => return None,
        })
    }

    /// The Milvus REST `dataType` name.
    pub fn milvus_name(self) -> &'static str {
        match self {
            ScalarKind::Int64 => "Int64",
            ScalarKind::Double => "Double",
            ScalarKind::Bool => "Bool",
            ScalarKind::VarChar => "VarChar",
            ScalarKind::Json => "JSON",
            ScalarKind::Array => "Array",
            ScalarKind::Geometry => "Geometry",
            ScalarKind::Timestamptz => "Timestamptz",
        }
    }
}

/// Largest VarChar Milvus allows (`proxy.maxVarCharLength`).
pub const MAX_VARCHAR: u32 = 65_535;
/// Largest Array capacity Milvus allows.
pub const MAX_CAPACITY: u32 = 4096;

/// Where a scalar field's values come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScalarFrom {
    /// A top-level payload key (`key`).
    #[default]
    Payload,
    /// The shard key of the point's shard (custom sharding; `key` is unused).
    ShardKey,
}

fn is_payload(f: &ScalarFrom) -> bool {
    *f == ScalarFrom::Payload
}

/// One payload key (or the shard key) staged as its own Milvus field instead of inside `$meta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScalarField {
    /// Top-level payload key in Qdrant (empty for the shard key).
    #[serde(default)]
    pub key: String,
    /// Where the values come from (default: the payload key).
    #[serde(default, skip_serializing_if = "is_payload")]
    pub from: ScalarFrom,
    /// Milvus field name.
    pub field: String,
    /// Milvus type.
    #[serde(rename = "type")]
    pub kind: ScalarKind,
    /// Element type of an `Array`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub element_type: Option<ScalarKind>,
    /// Byte limit of a VarChar (or of the VarChar elements of an Array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Element limit of an Array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<u32>,
    /// Points without the key (or with `null`) get a null cell (Milvus ≥ 2.5). With `false`,
    /// such a point stops the export and is named.
    #[serde(default = "yes")]
    pub nullable: bool,
    /// The field is the collection's partition key (Int64 or VarChar, not nullable).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub partition_key: bool,
    /// Scalar index built in Milvus (`INVERTED`, `STL_SORT`, `TRIE`, `BITMAP`, `AUTOINDEX`);
    /// by default INVERTED where Qdrant had a payload index on the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
}

fn yes() -> bool {
    true
}

impl ScalarField {
    /// A promoted key with the defaults for its type.
    pub fn new(key: &str, field: String, kind: ScalarKind, element: Option<ScalarKind>) -> Self {
        let texts = kind == ScalarKind::VarChar || element == Some(ScalarKind::VarChar);
        ScalarField {
            key: key.to_string(),
            field,
            kind,
            element_type: element,
            max_length: texts.then_some(MAX_VARCHAR),
            max_capacity: (kind == ScalarKind::Array).then_some(MAX_CAPACITY),
            nullable: true,
            partition_key: false,
            from: ScalarFrom::Payload,
            index: None,
        }
    }

    /// The field holding each point's shard key (custom sharding): not nullable, VarChar if
    /// any key is a string (integer keys then staged as their decimal text), else Int64.
    pub fn shard_key(field: String, keys: &[Value]) -> Self {
        let kind = if keys.iter().all(|k| k.is_i64()) {
            ScalarKind::Int64
        } else {
            ScalarKind::VarChar
        };
        ScalarField {
            key: String::new(),
            from: ScalarFrom::ShardKey,
            nullable: false,
            ..ScalarField::new("", field, kind, None)
        }
    }

    /// Whether the field takes payload key `k` out of `$meta`.
    pub fn takes_payload_key(&self, k: &str) -> bool {
        self.from == ScalarFrom::Payload && self.key == k
    }

    /// Arrow type of the staged column (pymilvus's bulk-writer types).
    pub fn arrow_type(&self) -> DataType {
        fn prim(k: ScalarKind) -> DataType {
            match k {
                ScalarKind::Int64 => DataType::Int64,
                ScalarKind::Double => DataType::Float64,
                ScalarKind::Bool => DataType::Boolean,
                _ => DataType::Utf8,
            }
        }
        match self.kind {
            ScalarKind::Array => DataType::List(Arc::new(Field::new(
                "item",
                prim(self.element_type.unwrap_or(ScalarKind::VarChar)),
                true,
            ))),
            k => prim(k),
        }
    }

    /// The field of the `collections/create` schema.
    pub fn milvus_field(&self) -> Value {
        let mut f =
            serde_json::json!({"fieldName": self.field, "dataType": self.kind.milvus_name()});
        let mut params = serde_json::Map::new();
        if let Some(l) = self.max_length {
            params.insert("max_length".into(), l.into());
        }
        if let Some(c) = self.max_capacity {
            params.insert("max_capacity".into(), c.into());
        }
        if let Some(e) = self.element_type {
            f["elementDataType"] = e.milvus_name().into();
        }
        if !params.is_empty() {
            f["elementTypeParams"] = Value::Object(params);
        }
        if self.nullable {
            f["nullable"] = true.into();
        }
        if self.partition_key {
            f["isPartitionKey"] = true.into();
        }
        f
    }

    /// Checks the field's own settings; `Err` carries the message.
    pub fn check(&self) -> std::result::Result<(), String> {
        let name = &self.field;
        if self.kind == ScalarKind::Array {
            match self.element_type {
                Some(
                    ScalarKind::Int64 | ScalarKind::Double | ScalarKind::Bool | ScalarKind::VarChar,
                ) => {}
                _ => {
                    return Err(format!(
                        "field '{name}': an Array needs element_type Int64, Double, Bool or VarChar"
                    ));
                }
            }
            if !self
                .max_capacity
                .is_some_and(|c| (1..=MAX_CAPACITY).contains(&c))
            {
                return Err(format!(
                    "field '{name}': max_capacity must be 1..={MAX_CAPACITY}"
                ));
            }
        }
        let texts =
            self.kind == ScalarKind::VarChar || self.element_type == Some(ScalarKind::VarChar);
        if texts
            && !self
                .max_length
                .is_some_and(|l| (1..=MAX_VARCHAR).contains(&l))
        {
            return Err(format!(
                "field '{name}': max_length must be 1..={MAX_VARCHAR}"
            ));
        }
        if let Some(ix) = &self.index {
            let numeric = matches!(self.kind, ScalarKind::Int64 | ScalarKind::Double);
            // indexparamcheck: RTREE only on geometry (rtree_checker.go); a timestamptz takes
            // STL_SORT only (stl_sort_checker.go; INVERTED and BITMAP refuse it).
            let geo = self.kind == ScalarKind::Geometry;
            let time = self.kind == ScalarKind::Timestamptz;
            let fits = match ix.as_str() {
                "RTREE" => geo,
                "AUTOINDEX" => self.kind != ScalarKind::Json,
                "STL_SORT" => numeric || time,
                _ if geo || time => false,
                "INVERTED" => self.kind != ScalarKind::Json,
                "TRIE" => self.kind == ScalarKind::VarChar,
                "BITMAP" => !matches!(self.kind, ScalarKind::Double | ScalarKind::Json),
                _ => false,
            };
            if !fits {
                return Err(format!(
                    "field '{name}': index '{ix}' does not fit a {} field (INVERTED or AUTOINDEX fit every type but JSON, Geometry and Timestamptz; STL_SORT numbers and Timestamptz; TRIE VarChar; BITMAP all but Double and JSON; RTREE Geometry only)",
                    self.kind.milvus_name()
                ));
            }
        }
        if self.partition_key {
            if !matches!(self.kind, ScalarKind::Int64 | ScalarKind::VarChar) {
                return Err(format!(
                    "field '{name}': a partition key must be Int64 or VarChar"
                ));
            }
            if self.nullable {
                return Err(format!(
                    "field '{name}': Milvus does not allow a nullable partition key; set nullable = false (points without the key are then reported)"
                ));
            }
        }
        Ok(())
    }
}

/// The value staged for a payload value, or why it does not fit its field: a geo point as its
/// WKT, a datetime as the instant's text Milvus answers, anything else as it is.
fn staged(f: &ScalarField, v: &Value) -> std::result::Result<Value, String> {
    match (f.kind, v) {
        (ScalarKind::Geometry, v) => crate::transform::wkt::from_geo(v)
            .map(Value::String)
            .map_err(|why| format!("{why}: not a Qdrant geo point")),
        (ScalarKind::Timestamptz, Value::String(t)) => crate::transform::instant::parse_qdrant(t)
            .map(|i| Value::String(crate::transform::instant::milvus_text(i)))
            .ok_or_else(|| "text that is no datetime Qdrant reads".into()),
        (ScalarKind::Timestamptz, x) => Err(format!("{} is not a datetime text", kind_of(x))),
        _ => misfit(f, v).map_or_else(|| Ok(v.clone()), Err),
    }
}

/// Why a payload value does not fit its field.
fn misfit(f: &ScalarField, v: &Value) -> Option<String> {
    let elem_ok = |k: ScalarKind, x: &Value| -> Option<String> {
        match (k, x) {
            (ScalarKind::Int64, Value::Number(n)) if n.is_i64() => None,
            (ScalarKind::Double, Value::Number(_)) => None,
            (ScalarKind::Bool, Value::Bool(_)) => None,
            (ScalarKind::VarChar, Value::String(s)) => {
                let max = f.max_length.unwrap_or(MAX_VARCHAR) as usize;
                (s.len() > max).then(|| format!("a {}-byte string, over max_length {max}", s.len()))
            }
            (ScalarKind::Json, _) => None,
            (_, x) => Some(format!("{} is not {}", kind_of(x), k.milvus_name())),
        }
    };
    match (f.kind, v) {
        (ScalarKind::Array, Value::Array(items)) => {
            let cap = f.max_capacity.unwrap_or(MAX_CAPACITY) as usize;
            if items.len() > cap {
                return Some(format!("{} elements, over max_capacity {cap}", items.len()));
            }
            let e = f.element_type.unwrap_or(ScalarKind::VarChar);
            items.iter().find_map(|x| {
                if x.is_null() {
                    Some("an array with a null element (Milvus rejects them)".into())
                } else {
                    elem_ok(e, x).map(|m| format!("an element: {m}"))
                }
            })
        }
        (ScalarKind::Array, x) => Some(format!("{} is not an array", kind_of(x))),
        (k, x) => elem_ok(k, x),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(n) if n.is_f64() => "a float",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Builds the column of one promoted field; a value that does not fit stops the batch with an
/// error naming up to ten points and the fix.
pub fn scalar_column(collection: &str, f: &ScalarField, points: &[&Point]) -> Result<ArrayRef> {
    let mut bad: Vec<String> = Vec::new();
    let mut value_of = |p: &Point| -> Option<Value> {
        let v = match f.from {
            ScalarFrom::Payload => p.payload.get(&f.key).cloned(),
            ScalarFrom::ShardKey => p.shard_key.as_ref().map(|k| match k {
                Value::Number(n) if f.kind == ScalarKind::VarChar => Value::from(n.to_string()),
                k => k.clone(),
            }),
        };
        match v.as_ref() {
            None | Some(Value::Null) => {
                if !f.nullable {
                    bad.push(format!("{} (no value)", p.id));
                }
                None
            }
            Some(v) => match staged(f, v) {
                Err(why) => {
                    bad.push(format!("{} ({why})", p.id));
                    None
                }
                Ok(v) => Some(v),
            },
        }
    };
    let what = match f.from {
        ScalarFrom::Payload => format!("payload key '{}'", f.key),
        ScalarFrom::ShardKey => "the shard key".to_string(),
    };
    let col: ArrayRef = match f.kind {
        ScalarKind::Int64 => {
            let mut b = Int64Builder::with_capacity(points.len());
            points
                .iter()
                .for_each(|p| b.append_option(value_of(p).and_then(|v| v.as_i64())));
            Arc::new(b.finish())
        }
        ScalarKind::Double => {
            let mut b = Float64Builder::with_capacity(points.len());
            points
                .iter()
                .for_each(|p| b.append_option(value_of(p).and_then(|v| v.as_f64())));
            Arc::new(b.finish())
        }
        ScalarKind::Bool => {
            let mut b = BooleanBuilder::with_capacity(points.len());
            points
                .iter()
                .for_each(|p| b.append_option(value_of(p).and_then(|v| v.as_bool())));
            Arc::new(b.finish())
        }
        // Geo points and datetimes are staged as their text (`staged`).
        ScalarKind::VarChar | ScalarKind::Geometry | ScalarKind::Timestamptz => {
            let mut b = StringBuilder::new();
            for p in points {
                b.append_option(value_of(p).as_ref().and_then(Value::as_str));
            }
            Arc::new(b.finish())
        }
        ScalarKind::Json => {
            let mut b = StringBuilder::new();
            for p in points {
                b.append_option(value_of(p).map(|v| v.to_string()));
            }
            Arc::new(b.finish())
        }
        ScalarKind::Array => array_column(f, points, &mut value_of),
    };
    if !bad.is_empty() {
        let n = bad.len();
        bad.truncate(10);
        return Err(Error::Mapping {
            collection: collection.to_string(),
            message: format!(
                "{what} promoted to {} field '{}' does not fit {n} of {} points in one page; the first: {}. Change its type in the mapping file (JSON takes any value{}), or stop promoting it",
                f.kind.milvus_name(),
                f.field,
                points.len(),
                bad.join(", "),
                if f.nullable {
                    ""
                } else {
                    "; nullable = true accepts points without it"
                }
            ),
        });
    }
    Ok(col)
}

fn array_column(
    f: &ScalarField,
    points: &[&Point],
    value_of: &mut dyn FnMut(&Point) -> Option<Value>,
) -> ArrayRef {
    fn fill<B: arrow::array::ArrayBuilder>(
        mut lb: ListBuilder<B>,
        points: &[&Point],
        value_of: &mut dyn FnMut(&Point) -> Option<Value>,
        mut push: impl FnMut(&mut B, &Value),
    ) -> ArrayRef {
        for p in points {
            match value_of(p) {
                Some(Value::Array(items)) => {
                    items.iter().for_each(|x| push(lb.values(), x));
                    lb.append(true);
                }
                _ => lb.append(false),
            }
        }
        Arc::new(lb.finish())
    }
    let item = match f.arrow_type() {
        DataType::List(item) => item,
        _ => unreachable!("Array fields are lists"),
    };
    match f.element_type.unwrap_or(ScalarKind::VarChar) {
        ScalarKind::Int64 => fill(
            ListBuilder::new(Int64Builder::new()).with_field(item),
            points,
            value_of,
            |b, x| b.append_option(x.as_i64()),
        ),
        ScalarKind::Double => fill(
            ListBuilder::new(Float64Builder::new()).with_field(item),
            points,
            value_of,
            |b, x| b.append_option(x.as_f64()),
        ),
        ScalarKind::Bool => fill(
            ListBuilder::new(BooleanBuilder::new()).with_field(item),
            points,
            value_of,
            |b, x| b.append_option(x.as_bool()),
        ),
        _ => fill(
            ListBuilder::new(StringBuilder::new()).with_field(item),
            points,
            value_of,
            |b, x| b.append_option(x.as_str()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PointId;

    fn pt(id: u64, payload: Value) -> Point {
        Point {
            id: PointId::Num(id),
            vectors: Default::default(),
            payload: payload.as_object().cloned().unwrap_or_default(),
            shard_key: None,
        }
    }

    #[test]
    fn parses_type_names() {
        assert_eq!(
            ScalarKind::parse("varchar"),
            Some((ScalarKind::VarChar, None))
        );
        assert_eq!(
            ScalarKind::parse("Array<Int64>"),
            Some((ScalarKind::Array, Some(ScalarKind::Int64)))
        );
        assert_eq!(ScalarKind::parse("Array<JSON>"), None);
        assert_eq!(ScalarKind::parse("decimal"), None);
    }

    #[test]
    fn misfits_name_the_points() {
        let f = ScalarField::new("n", "n".into(), ScalarKind::Int64, None);
        let pts = [
            pt(1, serde_json::json!({"n": 5})),
            pt(2, serde_json::json!({"n": "five"})),
            pt(3, serde_json::json!({})),
            pt(4, serde_json::json!({"n": 2.5})),
        ];
        let pts: Vec<&Point> = pts.iter().collect();
        let e = scalar_column("c", &f, &pts).unwrap_err().to_string();
        assert!(
            e.contains("does not fit 2 of 4 points") && e.contains("2 (a string is not Int64)"),
            "{e}"
        );
        assert!(e.contains("4 (a float is not Int64)"), "{e}");
        let ok = scalar_column("c", &f, &pts[..1]).unwrap();
        assert_eq!(ok.len(), 1);
        let nulls = scalar_column("c", &f, &pts[2..3]).unwrap();
        assert_eq!(nulls.null_count(), 1);
    }

    #[test]
    fn arrays_reject_null_elements_and_overflow() {
        let mut f = ScalarField::new(
            "t",
            "t".into(),
            ScalarKind::Array,
            Some(ScalarKind::VarChar),
        );
        f.max_capacity = Some(2);
        let pts = [
            pt(1, serde_json::json!({"t": ["a", "b"]})),
            pt(2, serde_json::json!({"t": ["a", null]})),
            pt(3, serde_json::json!({"t": ["a", "b", "c"]})),
        ];
        let pts: Vec<&Point> = pts.iter().collect();
        let e = scalar_column("c", &f, &pts).unwrap_err().to_string();
        assert!(e.contains("2 (an array with a null element"), "{e}");
        assert!(e.contains("3 (3 elements, over max_capacity 2)"), "{e}");
        let col = scalar_column("c", &f, &pts[..1]).unwrap();
        assert_eq!(col.len(), 1);
    }

    #[test]
    fn partition_key_must_not_be_nullable() {
        let mut f = ScalarField::new("k", "k".into(), ScalarKind::VarChar, None);
        f.partition_key = true;
        assert!(f.check().unwrap_err().contains("nullable"));
        f.nullable = false;
        assert!(f.check().is_ok());
        assert_eq!(f.milvus_field()["isPartitionKey"], true);
    }
}
