//! The answer of Qdrant's gRPC `Points/Scroll`, decoded by q2z's own prost messages: the hot
//! path of a live export over gRPC (issue 26).
//!
//! The messages are wire-compatible with Qdrant's `ScrollResponse` (lib/api/src/grpc/proto/
//! points.proto) but decode only what the export reads, in the shape it reads it:
//! - a dense vector's packed floats (`DenseVector.data`, filled by Qdrant ≥ 1.16's
//!   `From<VectorInternal> for grpc::VectorOutput`) arrive as one byte string — the same wire
//!   form as `repeated float` packed — copied once into the point's vector, where the client's
//!   structs push every float on its own;
//! - the payload map arrives as its entries in wire order (a protobuf map is a repeated entry
//!   message on the wire), with no hash map built, then sorted by key as REST shows it;
//! - `order_value`, `time` and `usage` are skipped unread.
//!
//! The deprecated flat fields (`data`, `indices`, `vectors_count`), which servers before 1.16
//! fill, are still read.

use crate::error::{Error, Result};
use qdrant_client::qdrant::{
    MultiDenseVector, PointId as GrpcId, ShardKey, SparseIndices, SparseVector, Value as GrpcValue,
};

/// `ScrollResponse`, as far as the export reads it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScrollAnswer {
    /// Where the next page starts (`None`: this was the last).
    #[prost(message, optional, tag = "1")]
    pub next_page_offset: Option<GrpcId>,
    /// The page's points, in id order.
    #[prost(message, repeated, tag = "2")]
    pub result: Vec<Retrieved>,
}

/// `RetrievedPoint` without `order_value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Retrieved {
    /// The point's id.
    #[prost(message, optional, tag = "1")]
    pub id: Option<GrpcId>,
    /// `map<string, Value> payload`, as the entries it is on the wire.
    #[prost(message, repeated, tag = "2")]
    pub payload: Vec<PayloadEntry>,
    /// The point's vectors (`VectorsOutput`).
    #[prost(message, optional, tag = "4")]
    pub vectors: Option<Vectors>,
    /// The shard key of the shard the point lives in (custom sharding).
    #[prost(message, optional, tag = "5")]
    pub shard_key: Option<ShardKey>,
}

/// One entry of the payload map.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PayloadEntry {
    /// The payload key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Its value (absent on the wire: protobuf's default, a `Value` of no kind — null).
    #[prost(message, optional, tag = "2")]
    pub value: Option<GrpcValue>,
}

/// `VectorsOutput`: the unnamed vector, or the named ones (a oneof on the wire: one is set).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Vectors {
    /// `VectorOutput vector = 1`.
    #[prost(message, optional, tag = "1")]
    pub vector: Option<Vector>,
    /// `NamedVectorsOutput vectors = 2`.
    #[prost(message, optional, tag = "2")]
    pub named: Option<NamedVectors>,
}

/// `NamedVectorsOutput`: `map<string, VectorOutput> vectors = 1`, as its entries.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NamedVectors {
    /// The entries, in wire order.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<NamedVector>,
}

/// One entry of [`NamedVectors`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct NamedVector {
    /// The vector's name.
    #[prost(string, tag = "1")]
    pub key: String,
    /// The vector.
    #[prost(message, optional, tag = "2")]
    pub value: Option<Vector>,
}

/// `VectorOutput`: the `vector` oneof (tags 101–103) as three optional fields — a server sets
/// one — beside the deprecated flat fields.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Vector {
    /// Deprecated flat floats (Qdrant's own code declares it `packed = "false"`; either wire
    /// form decodes).
    #[prost(float, repeated, packed = "false", tag = "1")]
    pub data: Vec<f32>,
    /// Deprecated: the indices of a sparse vector whose values are `data`.
    #[prost(message, optional, tag = "2")]
    pub indices: Option<SparseIndices>,
    /// Deprecated: how many vectors a flat multivector `data` holds.
    #[prost(uint32, optional, tag = "3")]
    pub vectors_count: Option<u32>,
    /// `DenseVector dense = 101`.
    #[prost(message, optional, tag = "101")]
    pub dense: Option<PackedFloats>,
    /// `SparseVector sparse = 102`.
    #[prost(message, optional, tag = "102")]
    pub sparse: Option<SparseVector>,
    /// `MultiDenseVector multi_dense = 103`.
    #[prost(message, optional, tag = "103")]
    pub multi_dense: Option<MultiDenseVector>,
}

/// `DenseVector`: `repeated float data = 1`, packed (proto3's default, which Qdrant's encoder
/// follows), read as the little-endian bytes it is on the wire.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PackedFloats {
    /// 4 bytes per float, little-endian: a slice of tonic's receive buffer (prost's `Bytes`
    /// field takes it with `copy_to_bytes`, which tonic's `DecodeBuf` and `BytesMut` answer
    /// without copying).
    #[prost(bytes = "bytes", tag = "1")]
    pub data: bytes::Bytes,
}

impl PackedFloats {
    /// The floats, copied once out of the wire bytes.
    pub fn floats(&self) -> Result<Vec<f32>> {
        if !self.data.len().is_multiple_of(4) {
            return Err(Error::Protocol {
                what: "Qdrant gRPC",
                call: "scroll".into(),
                message: format!(
                    "a dense vector of {} bytes, not whole 4-byte floats; read over REST with --transport rest",
                    self.data.len()
                ),
            });
        }
        let mut floats = vec![0f32; self.data.len() / 4];
        if cfg!(target_endian = "little") {
            // One memcpy: the wire's byte order is the machine's.
            bytemuck::cast_slice_mut::<f32, u8>(&mut floats).copy_from_slice(&self.data);
        } else {
            for (f, b) in floats.iter_mut().zip(self.data.chunks_exact(4)) {
                *f = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        Ok(floats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use qdrant_client::qdrant::vector_output::Vector as ClientVector;
    use qdrant_client::qdrant::vectors_output::VectorsOptions;
    use qdrant_client::qdrant::{
        DenseVector, NamedVectorsOutput, RetrievedPoint, ScrollResponse, VectorOutput,
        VectorsOutput, value::Kind,
    };

    /// What Qdrant 1.19 encodes (its `From<VectorInternal> for grpc::VectorOutput`: the oneof
    /// set, the flat fields empty) decodes to the same floats, payload and ids.
    #[test]
    #[allow(deprecated)]
    fn the_servers_scroll_answer_decodes_into_the_same_values() {
        let out = |v: ClientVector| VectorOutput {
            data: vec![],
            indices: None,
            vectors_count: None,
            vector: Some(v),
        };
        let dense: Vec<f32> = (0..768).map(|i| i as f32 * 0.25 - 7.0).collect();
        let a = RetrievedPoint {
            id: Some(7u64.into()),
            payload: [
                ("b".to_string(), GrpcValue::from(3i64)),
                ("a".to_string(), GrpcValue::from("x")),
            ]
            .into_iter()
            .collect(),
            vectors: Some(VectorsOutput {
                vectors_options: Some(VectorsOptions::Vector(out(ClientVector::Dense(
                    DenseVector {
                        data: dense.clone(),
                    },
                )))),
            }),
            shard_key: None,
            order_value: None,
        };
        let b = RetrievedPoint {
            id: Some("6e0a4cbc-7a64-4f3a-8b3e-2f8b4b5c6d7e".to_string().into()),
            payload: Default::default(),
            vectors: Some(VectorsOutput {
                vectors_options: Some(VectorsOptions::Vectors(NamedVectorsOutput {
                    vectors: [
                        (
                            "s".to_string(),
                            out(ClientVector::Sparse(SparseVector {
                                values: vec![0.5],
                                indices: vec![9],
                            })),
                        ),
                        (
                            "flat".to_string(),
                            VectorOutput {
                                data: vec![1.0, 2.0, 3.0, 4.0],
                                indices: None,
                                vectors_count: Some(2),
                                vector: None,
                            },
                        ),
                    ]
                    .into_iter()
                    .collect(),
                })),
            }),
            shard_key: None,
            order_value: None,
        };
        let wire = ScrollResponse {
            next_page_offset: Some(8u64.into()),
            result: vec![a, b],
            time: 0.5,
            usage: None,
        }
        .encode_to_vec();
        let got = ScrollAnswer::decode(wire.as_slice()).unwrap();
        assert_eq!(got.next_page_offset, Some(8u64.into()));
        assert_eq!(got.result.len(), 2);
        let first = &got.result[0];
        let floats = first.vectors.as_ref().unwrap().vector.as_ref().unwrap();
        assert_eq!(floats.dense.as_ref().unwrap().floats().unwrap(), dense);
        let mut keys: Vec<(&str, &Option<Kind>)> = first
            .payload
            .iter()
            .map(|e| (e.key.as_str(), &e.value.as_ref().unwrap().kind))
            .collect();
        keys.sort_by_key(|k| k.0);
        assert_eq!(
            keys,
            vec![
                ("a", &Some(Kind::StringValue("x".into()))),
                ("b", &Some(Kind::IntegerValue(3)))
            ]
        );
        let named = &got.result[1]
            .vectors
            .as_ref()
            .unwrap()
            .named
            .as_ref()
            .unwrap();
        let by = |n: &str| {
            named
                .entries
                .iter()
                .find(|e| e.key == n)
                .and_then(|e| e.value.clone())
                .unwrap()
        };
        assert_eq!(by("s").sparse.unwrap().indices, vec![9]);
        let flat = by("flat");
        assert_eq!(
            (flat.data, flat.vectors_count),
            (vec![1.0, 2.0, 3.0, 4.0], Some(2))
        );
    }

    #[test]
    fn a_dense_vector_of_broken_floats_is_an_error_naming_rest() {
        let e = PackedFloats {
            data: bytes::Bytes::from(vec![0, 0, 128]),
        }
        .floats()
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("3 bytes") && e.contains("--transport rest"),
            "{e}"
        );
    }
}
