//! Qdrant's gRPC API (port 6334) for the calls q2z makes over it — `Points/Scroll`,
//! `Points/Count` and the `Qdrant/HealthCheck` — answered from the same qdrant-edge shards as
//! the REST routes, with Qdrant 1.19's conversions (lib/api/src/conversions): vectors in the
//! `vector` oneof (packed), payload numbers as `integer_value` when they fit an i64 and as
//! `double_value` otherwise, `api-key` metadata checked like the REST header. Every other
//! call answers UNIMPLEMENTED.

use crate::state::AppState;
use ::qdrant_client::qdrant::points_server::{Points, PointsServer};
use ::qdrant_client::qdrant::qdrant_server::{Qdrant, QdrantServer};
use ::qdrant_client::qdrant::value::Kind;
use ::qdrant_client::qdrant::vector_output::Vector;
use ::qdrant_client::qdrant::vectors_output::VectorsOptions;
use ::qdrant_client::qdrant::*;
use q2z::model::{Point, PointId, VectorValue};
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};

/// Qdrant's JSON → gRPC payload value (`json_to_proto`).
fn to_grpc(v: &Json) -> Value {
    let kind = match v {
        Json::Null => Kind::NullValue(0),
        Json::Bool(b) => Kind::BoolValue(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Kind::IntegerValue(i),
            None => Kind::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Kind::StringValue(s.clone()),
        Json::Array(a) => Kind::ListValue(ListValue {
            values: a.iter().map(to_grpc).collect(),
        }),
        Json::Object(o) => Kind::StructValue(Struct {
            fields: o.iter().map(|(k, v)| (k.clone(), to_grpc(v))).collect(),
        }),
    };
    Value { kind: Some(kind) }
}

fn grpc_id(id: &PointId) -> ::qdrant_client::qdrant::PointId {
    match id {
        PointId::Num(n) => (*n).into(),
        PointId::Uuid(s) => s.clone().into(),
    }
}

fn from_grpc_id(id: &::qdrant_client::qdrant::PointId) -> Result<PointId, Status> {
    match &id.point_id_options {
        Some(point_id::PointIdOptions::Num(n)) => Ok(PointId::Num(*n)),
        Some(point_id::PointIdOptions::Uuid(s)) => PointId::from_json(&Json::from(s.as_str()))
            .ok_or_else(|| Status::invalid_argument(format!("Unable to parse UUID: {s}"))),
        None => Err(Status::invalid_argument("Empty ID is not allowed")),
    }
}

#[allow(deprecated)]
fn vector_output(v: &VectorValue) -> VectorOutput {
    let vector = match v {
        VectorValue::Dense(d) => Vector::Dense(DenseVector { data: d.clone() }),
        VectorValue::Sparse { indices, values } => Vector::Sparse(SparseVector {
            values: values.clone(),
            indices: indices.clone(),
        }),
        VectorValue::Multi(m) => Vector::MultiDense(MultiDenseVector {
            vectors: m.iter().map(|d| DenseVector { data: d.clone() }).collect(),
        }),
    };
    VectorOutput {
        data: vec![],
        indices: None,
        vectors_count: None,
        vector: Some(vector),
    }
}

fn retrieved(p: &Point, unnamed: bool, with_payload: bool, with_vectors: bool) -> RetrievedPoint {
    let vectors = with_vectors.then(|| VectorsOutput {
        vectors_options: Some(if unnamed {
            match p.vectors.get("") {
                Some(v) => VectorsOptions::Vector(vector_output(v)),
                None => VectorsOptions::Vectors(NamedVectorsOutput::default()),
            }
        } else {
            VectorsOptions::Vectors(NamedVectorsOutput {
                vectors: p
                    .vectors
                    .iter()
                    .map(|(k, v)| (k.clone(), vector_output(v)))
                    .collect(),
            })
        }),
    });
    RetrievedPoint {
        id: Some(grpc_id(&p.id)),
        payload: if with_payload {
            p.payload
                .iter()
                .map(|(k, v)| (k.clone(), to_grpc(v)))
                .collect()
        } else {
            Default::default()
        },
        vectors,
        shard_key: p.shard_key.as_ref().and_then(|k| match k {
            Json::String(s) => Some(ShardKey {
                key: Some(shard_key::Key::Keyword(s.clone())),
            }),
            Json::Number(n) => n.as_u64().map(|n| ShardKey {
                key: Some(shard_key::Key::Number(n)),
            }),
            _ => None,
        }),
        order_value: None,
    }
}

fn enabled_payload(s: &Option<WithPayloadSelector>) -> bool {
    matches!(
        s.as_ref().and_then(|s| s.selector_options.as_ref()),
        Some(with_payload_selector::SelectorOptions::Enable(true))
    )
}

fn enabled_vectors(s: &Option<WithVectorsSelector>) -> bool {
    matches!(
        s.as_ref().and_then(|s| s.selector_options.as_ref()),
        Some(with_vectors_selector::SelectorOptions::Enable(true))
    )
}

/// The Points service over the stand-in's collections.
pub struct PointsApi(pub Arc<AppState>);

/// Calls the stand-in does not serve, in the shape `#[async_trait]` gives trait methods (the
/// attribute does not see methods a macro writes).
macro_rules! unimplemented_calls {
    ($($name:ident($req:ident) -> $resp:ident;)*) => {$(
        fn $name<'life0, 'async_trait>(
            &'life0 self,
            _: Request<$req>,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<$resp>, Status>> + Send + 'async_trait>>
        where
            'life0: 'async_trait,
            Self: 'async_trait,
        {
            Box::pin(async move {
                Err(Status::unimplemented(concat!("the stand-in serves Scroll and Count only, not ", stringify!($name))))
            })
        }
    )*};
}

#[tonic::async_trait]
impl Points for PointsApi {
    async fn scroll(
        &self,
        request: Request<ScrollPoints>,
    ) -> Result<Response<ScrollResponse>, Status> {
        let t = Instant::now();
        let r = request.into_inner();
        if r.filter.is_some() {
            return Err(Status::unimplemented(
                "the stand-in's gRPC scroll takes no filter",
            ));
        }
        let offset = r.offset.as_ref().map(from_grpc_id).transpose()?;
        let limit = r.limit.unwrap_or(10) as usize;
        let slow = self.0.faults.grpc_slow_ms(&r.collection_name);
        if slow > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
        }
        let (with_payload, with_vectors) = (
            enabled_payload(&r.with_payload),
            enabled_vectors(&r.with_vectors),
        );
        let state = self.0.clone();
        let name = r.collection_name.clone();
        let out = tokio::task::spawn_blocking(move || -> Result<ScrollResponse, Status> {
            let colls = state.colls.read().expect("lock");
            let sv = colls
                .get(&name)
                .ok_or_else(|| Status::not_found(format!("Collection `{name}` doesn't exist!")))?;
            let (pts, next) = sv
                .coll
                .scroll(offset.as_ref(), limit, with_payload || with_vectors)
                .map_err(|e| Status::internal(e.to_string()))?;
            let cfg = &sv.coll.config;
            let unnamed =
                cfg.dense.len() == 1 && cfg.dense.contains_key("") && cfg.sparse.is_empty();
            Ok(ScrollResponse {
                next_page_offset: next.as_ref().map(grpc_id),
                result: pts
                    .iter()
                    .map(|p| retrieved(p, unnamed, with_payload, with_vectors))
                    .collect(),
                time: t.elapsed().as_secs_f64(),
                usage: None,
            })
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(out))
    }

    async fn count(
        &self,
        request: Request<CountPoints>,
    ) -> Result<Response<CountResponse>, Status> {
        let t = Instant::now();
        let r = request.into_inner();
        if r.filter.is_some() {
            return Err(Status::unimplemented(
                "the stand-in's gRPC count takes no filter",
            ));
        }
        let state = self.0.clone();
        let name = r.collection_name.clone();
        let count = tokio::task::spawn_blocking(move || -> Result<u64, Status> {
            let colls = state.colls.read().expect("lock");
            let sv = colls
                .get(&name)
                .ok_or_else(|| Status::not_found(format!("Collection `{name}` doesn't exist!")))?;
            sv.coll.count().map_err(|e| Status::internal(e.to_string()))
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))??;
        Ok(Response::new(CountResponse {
            result: Some(CountResult { count }),
            time: t.elapsed().as_secs_f64(),
            usage: None,
        }))
    }

    unimplemented_calls! {
        upsert(UpsertPoints) -> PointsOperationResponse;
        delete(DeletePoints) -> PointsOperationResponse;
        get(GetPoints) -> GetResponse;
        update_vectors(UpdatePointVectors) -> PointsOperationResponse;
        delete_vectors(DeletePointVectors) -> PointsOperationResponse;
        set_payload(SetPayloadPoints) -> PointsOperationResponse;
        overwrite_payload(SetPayloadPoints) -> PointsOperationResponse;
        delete_payload(DeletePayloadPoints) -> PointsOperationResponse;
        clear_payload(ClearPayloadPoints) -> PointsOperationResponse;
        create_field_index(CreateFieldIndexCollection) -> PointsOperationResponse;
        delete_field_index(DeleteFieldIndexCollection) -> PointsOperationResponse;
        create_vector_name(CreateVectorNameRequest) -> PointsOperationResponse;
        delete_vector_name(DeleteVectorNameRequest) -> PointsOperationResponse;
        search(SearchPoints) -> SearchResponse;
        search_batch(SearchBatchPoints) -> SearchBatchResponse;
        search_groups(SearchPointGroups) -> SearchGroupsResponse;
        recommend(RecommendPoints) -> RecommendResponse;
        recommend_batch(RecommendBatchPoints) -> RecommendBatchResponse;
        recommend_groups(RecommendPointGroups) -> RecommendGroupsResponse;
        discover(DiscoverPoints) -> DiscoverResponse;
        discover_batch(DiscoverBatchPoints) -> DiscoverBatchResponse;
        update_batch(UpdateBatchPoints) -> UpdateBatchResponse;
        query(QueryPoints) -> QueryResponse;
        query_batch(QueryBatchPoints) -> QueryBatchResponse;
        query_groups(QueryPointGroups) -> QueryGroupsResponse;
        facet(FacetCounts) -> FacetResponse;
        search_matrix_pairs(SearchMatrixPoints) -> SearchMatrixPairsResponse;
        search_matrix_offsets(SearchMatrixPoints) -> SearchMatrixOffsetsResponse;
    }
}

/// The Qdrant service: its health check, as Qdrant 1.19 answers it.
pub struct HealthApi;

#[tonic::async_trait]
impl Qdrant for HealthApi {
    async fn health_check(
        &self,
        _: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckReply>, Status> {
        Ok(Response::new(HealthCheckReply {
            title: "qdrant - vector search engine".into(),
            version: "1.19.0".into(),
            commit: None,
        }))
    }
}

/// Serves the gRPC API on `listener` until the process ends.
pub async fn serve(state: Arc<AppState>, listener: tokio::net::TcpListener) -> Result<(), String> {
    let key = state.api_key.clone();
    let check = move |req: Request<()>| -> Result<Request<()>, Status> {
        match &key {
            Some(k)
                if req.metadata().get("api-key").and_then(|v| v.to_str().ok())
                    != Some(k.as_str()) =>
            {
                Err(Status::unauthenticated("Invalid api-key"))
            }
            _ => Ok(req),
        }
    };
    let points = PointsServer::new(PointsApi(state))
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);
    // As Qdrant: the health check needs no key.
    tonic::transport::Server::builder()
        .add_service(tonic::service::interceptor::InterceptedService::new(
            points, check,
        ))
        .add_service(QdrantServer::new(HealthApi))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await
        .map_err(|e| e.to_string())
}
