//! Hot paths of the export: a Qdrant scroll page (REST JSON) → points, a gRPC scroll answer
//! decoded (qdrant-client's messages vs q2z's own), points → Arrow batch,
//! Arrow → Parquet (the default: zstd on ids and payloads only; and with zstd vectors), at 128, 768
//! and 1536 dims with ~1 KiB payloads.
//! `cargo bench --bench pipeline`; throughput is reported per point and per input byte.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use q2z::model::{
    CollectionConfig, DenseParams, Distance, Point, PointId, UNNAMED_VECTOR, VectorValue,
};
use q2z::source::scroll_json::parse_scroll_bytes;
use q2z::transform::batch::{arrow_schema, to_batch};
use q2z::transform::mapping::{IdKind, MappingOptions, default_mapping};
use serde_json::json;
use std::collections::BTreeMap;

const POINTS: usize = 256;

fn points(dim: usize) -> Vec<Point> {
    (0..POINTS as u64)
        .map(|i| {
            let v: Vec<f32> = (0..dim).map(|d| ((i as f32) * 0.37 + d as f32 * 0.11).sin()).collect();
            let payload = json!({"title": format!("document {i} — naïve café"), "n": i, "tags": ["a", "b", "c"], "nested": {"x": [1, 2, null], "y": {"z": i}}, "text": "lorem ipsum dolor sit amet ".repeat(32)});
            Point { id: PointId::Num(i + 1), vectors: BTreeMap::from([(UNNAMED_VECTOR.to_string(), VectorValue::Dense(v))]), payload: payload.as_object().unwrap().clone(), shard_key: None }
        })
        .collect()
}

/// A payload value as Qdrant's gRPC sends it (its `json_to_proto`).
fn grpc_value(v: &serde_json::Value) -> qdrant_client::qdrant::Value {
    use qdrant_client::qdrant::{ListValue, Struct, value::Kind};
    use serde_json::Value as J;
    let kind = match v {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => n.as_i64().map_or_else(
            || Kind::DoubleValue(n.as_f64().unwrap()),
            Kind::IntegerValue,
        ),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(a) => Kind::ListValue(ListValue {
            values: a.iter().map(grpc_value).collect(),
        }),
        J::Object(o) => Kind::StructValue(Struct {
            fields: o.iter().map(|(k, v)| (k.clone(), grpc_value(v))).collect(),
        }),
    };
    qdrant_client::qdrant::Value { kind: Some(kind) }
}

/// The page as Qdrant 1.19 encodes a gRPC scroll answer (dense vectors in the `vector` oneof).
#[allow(deprecated)]
fn grpc_page(pts: &[Point]) -> Vec<u8> {
    use prost::Message;
    use qdrant_client::qdrant::{
        DenseVector, RetrievedPoint, ScrollResponse, VectorOutput, VectorsOutput, vector_output,
        vectors_output,
    };
    let result = pts
        .iter()
        .map(|p| {
            let VectorValue::Dense(d) = &p.vectors[UNNAMED_VECTOR] else {
                unreachable!()
            };
            let PointId::Num(id) = p.id else {
                unreachable!()
            };
            RetrievedPoint {
                id: Some(id.into()),
                payload: p
                    .payload
                    .iter()
                    .map(|(k, v)| (k.clone(), grpc_value(v)))
                    .collect(),
                vectors: Some(VectorsOutput {
                    vectors_options: Some(vectors_output::VectorsOptions::Vector(VectorOutput {
                        data: vec![],
                        indices: None,
                        vectors_count: None,
                        vector: Some(vector_output::Vector::Dense(DenseVector {
                            data: d.clone(),
                        })),
                    })),
                }),
                shard_key: None,
                order_value: None,
            }
        })
        .collect();
    ScrollResponse {
        next_page_offset: None,
        result,
        time: 0.01,
        usage: None,
    }
    .encode_to_vec()
}

fn config(dim: usize) -> CollectionConfig {
    CollectionConfig {
        name: "bench".into(),
        dense: BTreeMap::from([(
            UNNAMED_VECTOR.to_string(),
            DenseParams {
                size: dim,
                distance: Distance::Cosine,
                datatype: Default::default(),
                multivector: None,
                hnsw_m: None,
                hnsw_ef_construct: None,
            },
        )]),
        sparse: BTreeMap::new(),
        hnsw_m: Some(16),
        hnsw_ef_construct: Some(100),
        shard_number: 1,
        shard_keys: Vec::new(),
        payload_schema: Default::default(),
        tenant_keys: Vec::new(),
        principal_keys: Vec::new(),
        raw: json!({}),
    }
}

fn bench(c: &mut Criterion) {
    for dim in [128usize, 768, 1536] {
        let pts = points(dim);
        let page = json!({"result": {"points": pts.iter().map(|p| p.to_qdrant_json(true)).collect::<Vec<_>>(), "next_page_offset": null}, "status": "ok"});
        let page_text = serde_json::to_vec(&page).unwrap();
        let (mapping, _) =
            default_mapping(&config(dim), IdKind::Int64, &MappingOptions::default()).unwrap();
        let schema = arrow_schema(&mapping);

        let mut g = c.benchmark_group("rest_page_to_points");
        g.throughput(Throughput::Bytes(page_text.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(dim), &page_text, |b, t| {
            b.iter(|| parse_scroll_bytes("bench", t).unwrap())
        });
        g.finish();

        // The gRPC answer decoded: qdrant-client's generated messages (every float pushed on its
        // own, the payload into a hash map) against q2z's (source/grpc_scroll.rs), floats included.
        let wire = grpc_page(&pts);
        let mut g = c.benchmark_group("grpc_page_decode");
        g.throughput(Throughput::Elements(POINTS as u64));
        g.bench_with_input(BenchmarkId::new("client", dim), &wire, |b, w| {
            b.iter(|| {
                <qdrant_client::qdrant::ScrollResponse as prost::Message>::decode(w.as_slice())
                    .unwrap()
            })
        });
        g.bench_with_input(BenchmarkId::new("q2z", dim), &wire, |b, w| {
            b.iter(|| {
                let a = <q2z::source::grpc_scroll::ScrollAnswer as prost::Message>::decode(
                    w.as_slice(),
                )
                .unwrap();
                a.result
                    .iter()
                    .map(|p| {
                        p.vectors
                            .as_ref()
                            .unwrap()
                            .vector
                            .as_ref()
                            .unwrap()
                            .dense
                            .as_ref()
                            .unwrap()
                            .floats()
                            .unwrap()
                    })
                    .collect::<Vec<_>>()
            })
        });
        g.finish();

        let mut g = c.benchmark_group("points_to_arrow");
        g.throughput(Throughput::Elements(POINTS as u64));
        g.bench_with_input(BenchmarkId::from_parameter(dim), &pts, |b, p| {
            b.iter(|| to_batch(p, &mapping, &schema).unwrap())
        });
        g.finish();

        let batch = to_batch(&pts, &mapping, &schema).unwrap().batch;
        // Ids and payloads are zstd in both; the default leaves the vector columns as they are.
        for (group, compress_vectors) in [
            ("arrow_to_parquet", false),
            ("arrow_to_parquet_zstd_vectors", true),
        ] {
            let mut g = c.benchmark_group(group);
            g.throughput(Throughput::Bytes(batch.get_array_memory_size() as u64));
            g.bench_with_input(BenchmarkId::from_parameter(dim), &batch, |b, batch| {
                b.iter(|| {
                    let dir = tempfile::tempdir().unwrap();
                    let mut w = q2z::stage::writer::ChunkWriter::create(
                        &dir.path().join("x.parquet"),
                        schema.clone(),
                        dim * 4 + 1024,
                        3,
                        compress_vectors,
                    )
                    .unwrap();
                    w.write(batch).unwrap();
                    w.finish().unwrap()
                })
            });
            g.finish();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
