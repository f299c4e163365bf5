//! The Qdrant → Milvus mapping of one collection: defaults from the Qdrant config (docs/design.md §5),
//! overridable through the editable TOML mapping file.

use crate::error::{Error, Result};
use crate::model::{CollectionConfig, Datatype, Distance, UNNAMED_VECTOR};
use crate::transform::scalars::{ScalarField, ScalarFrom, ScalarKind, ScalarType};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Milvus type of the primary key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdKind {
    /// All ids are integers ≤ 2^63−1.
    Int64,
    /// Some id is a UUID or an integer above 2^63−1 (integers become decimal text).
    VarChar,
}

/// Milvus type of a vector field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VectorKind {
    /// `FloatVector` (Qdrant float32 and uint8).
    FloatVector,
    /// `Float16Vector`, staged as raw little-endian bytes.
    Float16Vector,
    /// `SparseFloatVector`, staged as JSON text.
    SparseFloatVector,
    /// A Qdrant multivector kept whole: an Array of Structs field whose one `FloatVector`
    /// sub-field [`EMBEDDING`] holds each point's vectors, searched by MaxSim (Milvus 3.0+ over
    /// REST); staged as `list<struct<v: list<float32>>>`.
    EmbeddingList,
}

/// The sub-field of an [`VectorKind::EmbeddingList`] struct that holds the vectors.
pub const EMBEDDING: &str = "v";

/// Most vectors a point's multivector may hold in an Array of Structs field (`max_capacity`
/// of Milvus arrays: at most 4096).
pub const MAX_EMBEDDINGS: usize = 4096;

impl VectorKind {
    /// The Milvus REST `dataType` name.
    pub fn milvus_name(self) -> &'static str {
        match self {
            VectorKind::FloatVector => "FloatVector",
            VectorKind::Float16Vector => "Float16Vector",
            VectorKind::SparseFloatVector => "SparseFloatVector",
            VectorKind::EmbeddingList => "ArrayOfStruct",
        }
    }
}

/// What to stage for a point that lacks a vector the collection defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MissingVector {
    /// Zeros for a dense vector, an empty sparse vector (`{}`); the point is kept. Default.
    #[default]
    Zeros,
    /// Stop the export and name the point.
    Error,
}

/// How a Qdrant multivector is staged (Milvus before 2.6 has no equivalent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum MultivectorPolicy {
    /// Refuse to export until the user chooses. Default.
    #[default]
    Ask,
    /// Keep the first vector of each multivector.
    First,
    /// Leave the multivector out.
    Skip,
    /// Keep every vector: an Array of Structs field with a MAX_SIM index (Milvus 3.0+).
    Struct,
}

/// What happens to `null` payload values inside `$meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum NullPolicy {
    /// Kept as JSON `null` (lossless). Default.
    #[default]
    Keep,
    /// Left out of `$meta` (as Milvus's insert API does anyway).
    Drop,
}

/// What happens to a point whose `$meta` JSON exceeds Milvus's 64 KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OversizePolicy {
    /// Stop the export and name the points. Default.
    #[default]
    Error,
    /// Stage the point whole, as Qdrant JSON, in the collection's `set-aside-*.jsonl` files
    /// instead of the Parquet chunks; counts and verification account for it.
    SetAside,
}

/// What happens to a point holding a value Milvus refuses (a NaN or infinite vector value, a
/// negative sparse value, a sparse index of 2^32-1 or a repeated one, an id over the key
/// length): see [`crate::transform::checks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum InvalidPolicy {
    /// Stop the export and name the points and the value. Default.
    #[default]
    Error,
    /// Stage the point whole, as Qdrant JSON, in the set-aside files (with the reason).
    SetAside,
}

/// One Milvus vector field and where its data comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorField {
    /// Qdrant vector name (`""` for the unnamed vector).
    pub source: String,
    /// Milvus field name.
    pub field: String,
    /// Milvus type.
    pub kind: VectorKind,
    /// Dimension (dense only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// Milvus metric: COSINE, IP or L2.
    pub metric: String,
    /// Milvus index type: HNSW, AUTOINDEX or SPARSE_INVERTED_INDEX.
    pub index_type: String,
    /// Index build params (e.g. `M`, `efConstruction`).
    #[serde(default)]
    pub index_params: BTreeMap<String, u64>,
    /// Qdrant multivector config present: how to stage it.
    #[serde(default, skip_serializing_if = "is_default_mv")]
    pub multivector: MultivectorPolicy,
    /// The Qdrant vector is a multivector.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_multivector: bool,
}

fn is_default_mv(p: &MultivectorPolicy) -> bool {
    *p == MultivectorPolicy::Ask
}

/// The whole mapping of one collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectionMapping {
    /// Qdrant collection name.
    pub source: String,
    /// Milvus collection name.
    pub target: String,
    /// Milvus collection description.
    #[serde(default)]
    pub description: String,
    /// Primary key field name.
    pub id_field: String,
    /// Primary key type (decided from a full id scan).
    pub id_kind: IdKind,
    /// VarChar max_length when `id_kind` is VarChar.
    #[serde(default = "default_id_len")]
    pub id_max_length: u32,
    /// Vector fields, in schema order.
    pub vectors: Vec<VectorField>,
    /// Qdrant vectors left out on purpose.
    #[serde(default)]
    pub excluded_vectors: Vec<String>,
    /// Policy for points that lack one of the vectors.
    #[serde(default)]
    pub missing_vector: MissingVector,
    /// Milvus vector-field limit this mapping is checked against.
    #[serde(default = "default_max_vectors")]
    pub max_vector_fields: usize,
    /// `null` payload values inside `$meta`: `keep` or `drop`.
    #[serde(default)]
    pub null_values: NullPolicy,
    /// Points whose `$meta` exceeds 64 KiB: `error` or `set-aside`.
    #[serde(default)]
    pub oversize_payload: OversizePolicy,
    /// Points holding a value Milvus refuses: `error` or `set-aside`.
    #[serde(default)]
    pub invalid_values: InvalidPolicy,
    /// Partitions of a partition-key collection (Milvus default 16 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions_num: Option<u32>,
    /// Payload keys staged as typed fields instead of inside `$meta`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scalars: Vec<ScalarField>,
    /// JSON-path indexes on keys left in `$meta` (Qdrant indexed them; Milvus ≥ 2.5.11).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json_indexes: Vec<super::json_index::MetaIndex>,
    /// What the collection's Qdrant settings suggest for the target (tenant and principal
    /// keys, quantization, on-disk vectors): not applied, for the user to decide by editing
    /// this mapping (or the flags each names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hints: Vec<String>,
}

fn default_id_len() -> u32 {
    64
}

fn default_max_vectors() -> usize {
    4
}

/// Dynamic-field column name.
pub const META: &str = "$meta";

/// Options the user gives on the command line that shape the default mapping.
#[derive(Debug, Clone, Default)]
pub struct MappingOptions {
    /// Qdrant vectors to leave out.
    pub exclude_vectors: Vec<String>,
    /// Metric to use for Manhattan vectors (Milvus has none): `L2`, `IP` or `COSINE`.
    pub manhattan_as: Option<String>,
    /// Multivector policy.
    pub multivector: MultivectorPolicy,
    /// Vector field limit (4 on Milvus ≤ 2.6.17 and Zilliz Serverless, 10 on Dedicated / ≥ 2.6.18).
    pub max_vector_fields: Option<usize>,
    /// Use AUTOINDEX instead of HNSW (Zilliz Cloud).
    pub autoindex: bool,
    /// Prefix for the target collection name.
    pub target_prefix: String,
    /// Payload keys to promote: (key, type, element type); no type: from Qdrant's payload index.
    pub promote: Vec<(String, Option<ScalarType>)>,
    /// Payload key (promoted) that becomes the partition key.
    pub partition_key: Option<String>,
    /// Null policy for `$meta`.
    pub null_values: NullPolicy,
    /// Oversized-payload policy.
    pub oversize_payload: OversizePolicy,
    /// Policy for values Milvus refuses.
    pub invalid_values: InvalidPolicy,
}

/// The Milvus metric of a Qdrant distance (Manhattan only as `--manhattan-as` says).
fn metric_of(
    distance: Distance,
    label: &str,
    name: &str,
    opts: &MappingOptions,
    warnings: &mut Vec<String>,
) -> std::result::Result<String, String> {
    Ok(match distance {
        Distance::Cosine => "COSINE".to_string(),
        Distance::Dot => "IP".to_string(),
        Distance::Euclid => "L2".to_string(),
        Distance::Manhattan => match &opts.manhattan_as {
            Some(m) => {
                warnings.push(format!("vector {label}: Manhattan distance has no Milvus metric; using {m} as asked (search results will rank differently)"));
                m.to_uppercase()
            }
            None => {
                return Err(format!(
                    "vector {label} uses Manhattan distance, which Milvus does not have. Choose a metric with --manhattan-as L2|IP|COSINE, or leave it out with --exclude-vector {}",
                    if name.is_empty() { "vector" } else { name }
                ));
            }
        },
    })
}

/// The Milvus field of one dense Qdrant vector (`None`: left out as asked); `Err` carries the
/// message.
fn dense_field(
    cfg: &CollectionConfig,
    name: &String,
    p: &crate::model::DenseParams,
    opts: &MappingOptions,
    used: &mut std::collections::BTreeSet<String>,
    warnings: &mut Vec<String>,
) -> std::result::Result<Option<VectorField>, String> {
    if opts
        .exclude_vectors
        .iter()
        .any(|e| e == name || (name.is_empty() && e == "vector"))
    {
        return Ok(None);
    }
    let label = if name.is_empty() {
        "(unnamed)"
    } else {
        name.as_str()
    };
    let metric = metric_of(p.distance, label, name, opts, warnings)?;
    let kind = match p.datatype {
        Datatype::Float32 => VectorKind::FloatVector,
        Datatype::Float16 => VectorKind::Float16Vector,
        Datatype::Uint8 => {
            warnings.push(format!("vector {label}: uint8 values are staged as FloatVector (Milvus Int8Vector is signed); values are exact"));
            VectorKind::FloatVector
        }
    };
    if !(2..=32768).contains(&p.size) {
        return Err(format!(
            "vector {label} has dimension {}; Milvus accepts 2..32768. Leave it out with --exclude-vector",
            p.size
        ));
    }
    let is_mv = p.multivector.is_some();
    if is_mv {
        match opts.multivector {
            MultivectorPolicy::Ask => {
                return Err(format!(
                    "vector {label} is a multivector. Choose --multivector struct (every vector kept, searched by MaxSim: Milvus 3.0+), --multivector first (keep each point's first vector) or --multivector skip (leave the field out)"
                ));
            }
            MultivectorPolicy::Skip => {
                warnings.push(format!("vector {label}: multivector left out as asked"));
                return Ok(None);
            }
            MultivectorPolicy::First => warnings.push(format!(
                "vector {label}: multivector reduced to each point's first vector as asked (lossy)"
            )),
            MultivectorPolicy::Struct => {}
        }
    }
    let embedding_list = is_mv && opts.multivector == MultivectorPolicy::Struct;
    if embedding_list && p.datatype != Datatype::Float32 {
        return Err(format!(
            "vector {label} is a multivector of {:?} values; q2z keeps multivectors whole (--multivector struct) for float32 ones only. Choose --multivector first or skip",
            p.datatype
        ));
    }
    let field = unique_field(
        if name.is_empty() { "vector" } else { name },
        used,
        warnings,
    );
    let (mut index_type, mut index_params) =
        dense_index(cfg, p.hnsw_m, p.hnsw_ef_construct, opts.autoindex);
    if embedding_list && index_type != "HNSW" {
        // MAX_SIM metrics are built by HNSW (Milvus docs, array-of-structs.md).
        (index_type, index_params) = dense_index(cfg, p.hnsw_m, p.hnsw_ef_construct, false);
    }
    Ok(Some(VectorField {
        source: name.clone(),
        field,
        kind: if embedding_list {
            VectorKind::EmbeddingList
        } else {
            kind
        },
        dim: Some(p.size),
        metric,
        index_type,
        index_params,
        multivector: if is_mv {
            opts.multivector
        } else {
            MultivectorPolicy::Ask
        },
        is_multivector: is_mv,
    }))
}

/// The target collection name of a Qdrant collection without a mapping-file entry.
pub fn default_target(name: &str, opts: &MappingOptions) -> String {
    sanitize_name(&format!("{}{}", opts.target_prefix, name))
}

/// Makes a name valid for Milvus (`^[A-Za-z_][A-Za-z0-9_]*$`, at most 255 chars).
pub fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.as_bytes()[0].is_ascii_digit() {
        out.insert(0, '_');
    }
    out.truncate(255);
    out
}

/// Builds the default mapping of a collection, given the id kind found by the id scan.
/// Returns the mapping and the warnings to show in the plan.
pub fn default_mapping(
    cfg: &CollectionConfig,
    id_kind: IdKind,
    opts: &MappingOptions,
) -> Result<(CollectionMapping, Vec<String>)> {
    let err = |m: String| Error::Mapping {
        collection: cfg.name.clone(),
        message: m,
    };
    let mut warnings = Vec::new();
    let target = default_target(&cfg.name, opts);
    if target != format!("{}{}", opts.target_prefix, cfg.name) {
        warnings.push(format!("collection name '{}' is not valid in Milvus; the target is '{target}' (set `target` in the mapping file to choose)", cfg.name));
    }
    let mut vectors = Vec::new();
    let mut used = std::collections::BTreeSet::from(["id".to_string(), META.to_string()]);
    for (name, p) in &cfg.dense {
        if let Some(v) = dense_field(cfg, name, p, opts, &mut used, &mut warnings).map_err(err)? {
            vectors.push(v);
        }
    }
    for (name, p) in &cfg.sparse {
        if opts.exclude_vectors.iter().any(|e| e == name) {
            continue;
        }
        if p.modifier.as_deref() == Some("idf") {
            warnings.push(format!("sparse vector {name}: Qdrant applies an IDF modifier at query time; Milvus IP search on the stored values will not (store BM25-style weights or apply IDF in the client)"));
        }
        let field = unique_field(name, &mut used, &mut warnings);
        vectors.push(VectorField {
            source: name.clone(),
            field,
            kind: VectorKind::SparseFloatVector,
            dim: None,
            metric: "IP".into(),
            index_type: "SPARSE_INVERTED_INDEX".into(),
            index_params: BTreeMap::new(),
            multivector: MultivectorPolicy::Ask,
            is_multivector: false,
        });
    }
    if vectors.is_empty() {
        return Err(err("no vector is left to migrate; Milvus needs at least one vector field (drop an --exclude-vector)".into()));
    }
    let max = opts.max_vector_fields.unwrap_or(4);
    if vectors.len() > max {
        let names: Vec<_> = vectors.iter().map(|v| v.source.as_str()).collect();
        return Err(err(format!(
            "{} vector fields ({}) exceed the target's limit of {max} (Milvus ≤ 2.6.17 and Zilliz Serverless: 4; Zilliz Dedicated and Milvus ≥ 2.6.18: 10). Leave some out with --exclude-vector NAME, or raise the limit with --max-vector-fields 10 if the target allows it",
            vectors.len(),
            names.join(", ")
        )));
    }
    let mut scalars = promoted_fields(cfg, opts, &mut used, &mut warnings).map_err(err)?;
    scalars.extend(shard_key_field(cfg, &scalars, &mut used, &mut warnings));
    suggest_promotions(cfg, opts, &mut warnings);
    let json_indexes = super::json_index::meta_indexes(cfg, &scalars, &mut warnings);
    let hints = super::hints::suggestions(cfg, opts.partition_key.as_deref());
    let mapping = CollectionMapping {
        source: cfg.name.clone(),
        target,
        description: format!("Migrated from Qdrant collection '{}' by q2z", cfg.name),
        id_field: "id".into(),
        id_kind,
        id_max_length: default_id_len(),
        vectors,
        excluded_vectors: opts.exclude_vectors.clone(),
        missing_vector: MissingVector::Zeros,
        max_vector_fields: max,
        null_values: opts.null_values,
        oversize_payload: opts.oversize_payload,
        invalid_values: opts.invalid_values,
        partitions_num: None,
        scalars,
        json_indexes,
        hints,
    };
    Ok((mapping, warnings))
}

/// The typed fields the user asked for with `--promote` / `--partition-key`.
fn promoted_fields(
    cfg: &CollectionConfig,
    opts: &MappingOptions,
    used: &mut std::collections::BTreeSet<String>,
    warnings: &mut Vec<String>,
) -> std::result::Result<Vec<ScalarField>, String> {
    let mut out: Vec<ScalarField> = Vec::new();
    let mut wanted = opts.promote.clone();
    if let Some(pk) = &opts.partition_key
        && !wanted.iter().any(|(k, _)| k == pk)
    {
        wanted.push((pk.clone(), None));
    }
    for (key, ty) in wanted {
        if out.iter().any(|f| f.key == key) {
            continue;
        }
        let (kind, elem) = match ty {
            Some(t) => t,
            None => match cfg
                .payload_schema
                .get(&key)
                .and_then(|d| ScalarKind::from_qdrant_index(d))
            {
                Some(k) => (k, None),
                None => {
                    return Err(format!(
                        "payload key '{key}' has no payload index in Qdrant to take its type from; give one: --promote {key}:VarChar (or Int64, Double, Bool, JSON, Array<VarChar>, Geometry, Timestamptz)"
                    ));
                }
            },
        };
        let field = {
            let mut f = sanitize_name(&key);
            while used.contains(&f) {
                f.push('_');
            }
            if f != key {
                warnings.push(format!("payload key '{key}' becomes Milvus field '{f}'"));
            }
            used.insert(f.clone());
            f
        };
        let mut sf = ScalarField::new(&key, field, kind, elem);
        // What Qdrant indexed for filtering gets Milvus's general-purpose scalar index.
        // (RTREE for geo points, STL_SORT for instants: what those types take).
        if cfg.payload_schema.contains_key(&key) && kind != ScalarKind::Json {
            let ix = match kind {
                ScalarKind::Geometry => "RTREE",
                ScalarKind::Timestamptz => "STL_SORT",
                _ => "INVERTED",
            };
            sf.index = Some(ix.into());
        }
        if kind == ScalarKind::Timestamptz {
            warnings.push(format!("payload key '{key}' becomes a Timestamptz field: each value is kept as its instant in UTC to the microsecond (an offset or digits past the microsecond in the text are not kept; promote it as VarChar to keep the text)"));
        }
        if opts.partition_key.as_deref() == Some(key.as_str()) {
            sf.partition_key = true;
            sf.nullable = false;
        }
        sf.check()?;
        out.push(sf);
    }
    if !out.is_empty() {
        let geo = match (
            out.iter().any(|f| f.kind == ScalarKind::Geometry),
            out.iter().any(|f| f.kind == ScalarKind::Timestamptz),
        ) {
            (_, true) => " (≥ 2.6.6 for Timestamptz, 2.6.4 for Geometry fields)",
            (true, false) => " (≥ 2.6.4 for Geometry fields)",
            _ => "",
        };
        warnings.push(format!("promoted payload keys ({}) become nullable typed fields: the target must be Milvus ≥ 2.5{geo} or Zilliz Cloud", out.iter().map(|f| f.key.as_str()).collect::<Vec<_>>().join(", ")));
    }
    Ok(out)
}

/// Custom sharding: each point's shard key becomes field `shard_key`, the partition key unless
/// another field is, so the tenant isolation of shard keys survives (Milvus hashes partition
/// key values into the collection's partitions and prunes them in filtered searches).
fn shard_key_field(
    cfg: &CollectionConfig,
    scalars: &[ScalarField],
    used: &mut std::collections::BTreeSet<String>,
    warnings: &mut Vec<String>,
) -> Option<ScalarField> {
    if cfg.shard_keys.is_empty() {
        return None;
    }
    let mut name = "shard_key".to_string();
    while used.contains(&name) {
        name.push('_');
    }
    used.insert(name.clone());
    let mut f = ScalarField::shard_key(name, &cfg.shard_keys);
    f.partition_key = !scalars.iter().any(|s| s.partition_key);
    warnings.push(format!(
        "custom sharding: the {} shard keys become the {} field '{}'{}; filter on it (e.g. {} == …) where Qdrant searches took a shard_key. For one Milvus partition per key instead, create them and import per key (not done by q2z)",
        cfg.shard_keys.len(),
        f.kind.milvus_name(),
        f.field,
        if f.partition_key {
            ", the collection's partition key"
        } else {
            " (another field is the partition key)"
        },
        f.field
    ));
    Some(f)
}

/// Points the user at payload keys Qdrant indexes, which usually deserve a typed field.
fn suggest_promotions(cfg: &CollectionConfig, opts: &MappingOptions, warnings: &mut Vec<String>) {
    for (key, dt) in &cfg.payload_schema {
        let promoted = opts.promote.iter().any(|(k, _)| k == key)
            || opts.partition_key.as_deref() == Some(key.as_str());
        if let (false, Some(kind)) = (promoted, ScalarKind::from_qdrant_index(dt)) {
            let needs = match (kind, dt.as_str()) {
                (ScalarKind::Geometry, _) => " (Milvus ≥ 2.6.4: RTREE index, ST_* filters)".into(),
                (_, "datetime") => format!(
                    "; `--promote {key}:Timestamptz` a Timestamptz field instead (Milvus ≥ 2.6.6: the instant, STL_SORT)"
                ),
                _ => String::new(),
            };
            warnings.push(format!("payload key '{key}' is indexed in Qdrant ({dt}); it stays in $meta. `--promote {key}` makes it a {} field Milvus can index and filter fast{needs}", kind.milvus_name()));
        }
    }
}

fn dense_index(
    cfg: &CollectionConfig,
    m: Option<u64>,
    ef: Option<u64>,
    autoindex: bool,
) -> (String, BTreeMap<String, u64>) {
    if autoindex {
        return ("AUTOINDEX".into(), BTreeMap::new());
    }
    let mut p = BTreeMap::new();
    p.insert(
        "M".to_string(),
        m.or(cfg.hnsw_m).unwrap_or(16).clamp(2, 2048),
    );
    p.insert(
        "efConstruction".to_string(),
        ef.or(cfg.hnsw_ef_construct).unwrap_or(100).max(1),
    );
    ("HNSW".into(), p)
}

fn unique_field(
    name: &str,
    used: &mut std::collections::BTreeSet<String>,
    warnings: &mut Vec<String>,
) -> String {
    let mut f = sanitize_name(name);
    while used.contains(&f) {
        f.push('_');
    }
    if f != name {
        warnings.push(format!("vector '{name}' becomes Milvus field '{f}'"));
    }
    used.insert(f.clone());
    f
}

impl CollectionMapping {
    /// Names of the static (schema) fields; `$meta` keys equal to one of them are escaped.
    pub fn static_fields(&self) -> Vec<&str> {
        let mut v = vec![self.id_field.as_str()];
        v.extend(self.vectors.iter().map(|f| f.field.as_str()));
        v.extend(self.scalars.iter().map(|f| f.field.as_str()));
        v
    }

    /// Checks a mapping read from a file against the collection config.
    pub fn validate(&self, cfg: &CollectionConfig) -> Result<()> {
        let err = |m: String| Error::Mapping {
            collection: cfg.name.clone(),
            message: format!("mapping file: {m}"),
        };
        if sanitize_name(&self.target) != self.target {
            return Err(err(format!(
                "target name '{}' is not valid in Milvus (letters, digits, '_'; not starting with a digit)",
                self.target
            )));
        }
        self.check_limits().map_err(err)?;
        for v in &self.vectors {
            let known = cfg.dense.contains_key(&v.source) || cfg.sparse.contains_key(&v.source);
            if let (Some(d), Some(p)) = (v.dim, cfg.dense.get(&v.source))
                && d != p.size
            {
                return Err(err(format!(
                    "vector '{}' has dim = {d}, but the Qdrant collection stores {} values per vector; set dim = {}",
                    v.source, p.size, p.size
                )));
            }
            if !known {
                return Err(err(format!(
                    "vector '{}' does not exist in the Qdrant collection",
                    v.source
                )));
            }
            let mv = cfg.dense.get(&v.source).filter(|p| p.multivector.is_some());
            if v.kind == VectorKind::EmbeddingList
                && mv.is_none_or(|p| p.datatype != Datatype::Float32)
            {
                return Err(err(format!(
                    "vector '{}' has kind EmbeddingList, which holds a float32 Qdrant multivector only; set kind = FloatVector (or the kind its config asks)",
                    v.source
                )));
            }
            if v.kind != VectorKind::EmbeddingList
                && mv.is_some()
                && v.multivector == MultivectorPolicy::Struct
            {
                return Err(err(format!(
                    "vector '{}' has multivector = struct but kind {:?}: set kind = EmbeddingList (or multivector = first / skip)",
                    v.source, v.kind
                )));
            }
            if sanitize_name(&v.field) != v.field {
                return Err(err(format!(
                    "field name '{}' is not valid in Milvus",
                    v.field
                )));
            }
        }
        let mut names = std::collections::BTreeSet::from([self.id_field.as_str(), META]);
        for f in self
            .vectors
            .iter()
            .map(|v| &v.field)
            .chain(self.scalars.iter().map(|s| &s.field))
        {
            if !names.insert(f.as_str()) {
                return Err(err(format!("field name '{f}' is used twice")));
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        for s in &self.scalars {
            if sanitize_name(&s.field) != s.field {
                return Err(err(format!(
                    "field name '{}' is not valid in Milvus",
                    s.field
                )));
            }
            if s.from == ScalarFrom::Payload && !keys.insert(s.key.as_str()) {
                return Err(err(format!("payload key '{}' is promoted twice", s.key)));
            }
            s.check().map_err(err)?;
        }
        if self.scalars.iter().filter(|s| s.partition_key).count() > 1 {
            return Err(err("only one field can be the partition key".into()));
        }
        if self.vectors.len() > self.max_vector_fields {
            return Err(err(format!(
                "{} vector fields exceed max_vector_fields = {}",
                self.vectors.len(),
                self.max_vector_fields
            )));
        }
        let _ = UNNAMED_VECTOR;
        Ok(())
    }

    /// Checks the values Milvus bounds (dims, key length, partitions), so an edited mapping
    /// file is refused with the limit instead of failing later (or allocating without bound).
    pub fn check_limits(&self) -> std::result::Result<(), String> {
        for v in &self.vectors {
            match (v.kind, v.dim) {
                (VectorKind::SparseFloatVector, _) => {}
                (_, Some(d)) if (MIN_DIM..=MAX_DIM).contains(&d) => {}
                (_, d) => {
                    return Err(format!(
                        "vector field '{}' has dim = {}; Milvus takes {MIN_DIM}..={MAX_DIM}",
                        v.field,
                        d.map_or("none".into(), |d| d.to_string())
                    ));
                }
            }
        }
        if !(1..=65_535).contains(&self.id_max_length) {
            return Err(format!(
                "id_max_length = {} is outside 1..=65535",
                self.id_max_length
            ));
        }
        if let Some(n) = self.partitions_num
            && !(1..=4096).contains(&n)
        {
            return Err(format!("partitions_num = {n} is outside 1..=4096"));
        }
        for s in &self.scalars {
            s.check()?;
        }
        Ok(())
    }
}

/// Smallest dense dimension Milvus accepts.
pub const MIN_DIM: usize = 2;
/// Largest dense dimension Milvus accepts (`proxy.maxDimension`).
pub const MAX_DIM: usize = 32_768;

/// A mapping for unit tests: dense vector `d` (2 dims, `distance`) and sparse vector `s`.
#[cfg(test)]
pub(crate) fn test_mapping(distance: crate::model::Distance, id_kind: IdKind) -> CollectionMapping {
    use crate::model::{DenseParams, SparseParams};
    let mut dense = BTreeMap::new();
    dense.insert(
        "d".to_string(),
        DenseParams {
            size: 2,
            distance,
            datatype: Default::default(),
            multivector: None,
            hnsw_m: None,
            hnsw_ef_construct: None,
        },
    );
    let mut sparse = BTreeMap::new();
    sparse.insert("s".to_string(), SparseParams { modifier: None });
    let cfg = CollectionConfig::of_vectors("c", dense, sparse);
    default_mapping(&cfg, id_kind, &MappingOptions::default())
        .expect("test mapping")
        .0
}
