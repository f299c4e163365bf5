//! HTTP routes, shaped as Qdrant 1.19 answers them (`{result, status, time}` envelope).

use crate::faults::{Action, FaultState, Faults};
use crate::state::AppState;
use crate::store::{self, Collections, Served};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use q2z::model::PointId;
use qdrant_edge::CountRequestBuilder;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// How to run the server.
pub struct ServeConfig {
    pub listen: String,
    pub snapshot_dirs: Vec<PathBuf>,
    pub snapshots: Vec<PathBuf>,
    pub data: PathBuf,
    pub api_key: Option<String>,
    pub addr_file: Option<PathBuf>,
    pub grpc_listen: String,
    pub grpc_addr_file: Option<PathBuf>,
}

type Shared = Arc<AppState>;

fn ok(result: Value, t: Instant) -> Response {
    let body = json!({"result": result, "status": "ok", "time": t.elapsed().as_secs_f64()});
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn err(status: StatusCode, msg: &str, t: Instant) -> Response {
    (
        status,
        axum::Json(json!({"status": {"error": msg}, "time": t.elapsed().as_secs_f64()})),
    )
        .into_response()
}

fn not_found(name: &str, t: Instant) -> Response {
    err(
        StatusCode::NOT_FOUND,
        &format!("Not found: Collection `{name}` doesn't exist!"),
        t,
    )
}

/// Loads the snapshot files and serves until killed.
pub async fn serve(cfg: ServeConfig) -> Result<(), String> {
    let mut files = cfg.snapshots.clone();
    for d in &cfg.snapshot_dirs {
        let rd = std::fs::read_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "snapshot")
                && e.path().to_string_lossy().contains(".collection.")
            {
                files.push(e.path());
            }
        }
    }
    std::fs::create_dir_all(&cfg.data).map_err(|e| e.to_string())?;
    let mut colls = Collections::new();
    for f in files {
        let (name, served) = store::load_file(&f, &cfg.data.join("shards"))?;
        colls.insert(name, served);
    }
    let state = Arc::new(AppState {
        colls: RwLock::new(colls),
        aliases: RwLock::new(std::collections::BTreeMap::new()),
        faults: FaultState::default(),
        api_key: cfg.api_key,
        data: cfg.data,
    });
    let app = Router::new()
        .route("/collections", get(list))
        .route("/collections/aliases", post(update_aliases))
        .route("/collections/{name}/aliases", get(collection_aliases))
        .route(
            "/collections/{name}",
            get(info).put(create).delete(delete_collection),
        )
        .route("/collections/{name}/points", axum::routing::put(upsert))
        .route(
            "/collections/{name}/index",
            axum::routing::put(create_field_index),
        )
        .route("/collections/{name}/points/scroll", post(scroll))
        .route("/collections/{name}/points/count", post(count))
        .route("/collections/{name}/points/query", post(query))
        .route("/collections/{name}/points/delete", post(delete_points))
        .route("/collections/{name}/cluster", get(cluster_info))
        .route(
            "/collections/{name}/snapshots",
            get(list_snapshots).post(create_snapshot),
        )
        .route(
            "/collections/{name}/snapshots/{snap}",
            get(download_snapshot).delete(delete_snapshot),
        )
        .route(
            "/collections/{name}/shards/{shard}/snapshot",
            get(shard_snapshot),
        )
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .route("/__standin/faults", post(set_faults))
        .route("/healthz", get(|| async { "healthz check passed" }))
        .with_state(state.clone());
    let grpc = tokio::net::TcpListener::bind(&cfg.grpc_listen)
        .await
        .map_err(|e| format!("bind {}: {e}", cfg.grpc_listen))?;
    let grpc_addr = grpc.local_addr().map_err(|e| e.to_string())?;
    let grpc_state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::grpc::serve(grpc_state, grpc).await {
            eprintln!("qdrant-standin gRPC: {e}");
        }
    });
    if let Some(f) = &cfg.grpc_addr_file {
        std::fs::write(f, grpc_addr.to_string()).map_err(|e| e.to_string())?;
    }
    eprintln!("qdrant-standin gRPC on http://{grpc_addr}");
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| format!("bind {}: {e}", cfg.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    if let Some(f) = &cfg.addr_file {
        std::fs::write(f, addr.to_string()).map_err(|e| e.to_string())?;
    }
    eprintln!("qdrant-standin listening on http://{addr}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

async fn auth(State(s): State<Shared>, headers: HeaderMap, req: Request, next: Next) -> Response {
    if let Some(key) = &s.api_key {
        let given = headers
            .get("api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| {
                headers
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::to_string)
            });
        if given.as_deref() != Some(key.as_str()) {
            return (StatusCode::UNAUTHORIZED, "Invalid API key or JWT").into_response();
        }
    }
    next.run(req).await
}

async fn set_faults(State(s): State<Shared>, axum::Json(mut f): axum::Json<Faults>) -> Response {
    let mut cur = s.faults.0.lock().unwrap_or_else(|e| e.into_inner());
    // Per-collection slowdowns persist unless replaced, so one test cannot reset another's.
    for (k, v) in cur.slow_ms_by_collection.drain() {
        f.slow_ms_by_collection.entry(k).or_insert(v);
    }
    for (k, v) in cur.slow_grpc_ms_by_collection.drain() {
        f.slow_grpc_ms_by_collection.entry(k).or_insert(v);
    }
    *cur = f;
    ok(json!(true), Instant::now())
}

/// Applies a pending fault; `Some(response)` when the request must fail.
async fn fault(s: &AppState, scroll: bool, collection: &str, t: Instant) -> Result<bool, Response> {
    let (action, slow) = s.faults.next(scroll, collection);
    if slow > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
    }
    match action {
        Action::Pass => Ok(false),
        Action::Error(code) => Err(err(
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "Service internal error: injected fault",
            t,
        )),
        Action::RateLimit(secs) => {
            let mut r = err(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests: injected rate limit",
                t,
            );
            r.headers_mut().insert(
                header::RETRY_AFTER,
                secs.to_string().parse().expect("number"),
            );
            Err(r)
        }
        Action::Reset => Ok(true),
    }
}

async fn list(State(s): State<Shared>) -> Response {
    let t = Instant::now();
    let colls = s.colls.read().expect("lock");
    let mut names: Vec<&String> = colls.keys().collect();
    names.sort();
    ok(
        json!({"collections": names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()}),
        t,
    )
}

fn default_optimizer() -> Value {
    json!({"default_segment_number":0,"deleted_threshold":0.2,"flush_interval_sec":5,"indexing_threshold":10000,"max_optimization_threads":null,"max_segment_size":null,"memmap_threshold":null,"prevent_unoptimized":null,"vacuum_min_vector_number":1000})
}

fn info_json(sv: &Served) -> Result<Value, String> {
    let cfg = &sv.coll.config_json;
    let mut config = Map::new();
    config.insert(
        "params".into(),
        cfg.get("params").cloned().unwrap_or(json!({})),
    );
    config.insert(
        "hnsw_config".into(),
        cfg.get("hnsw_config").cloned().unwrap_or(json!({})),
    );
    config.insert(
        "optimizer_config".into(),
        cfg.get("optimizer_config")
            .cloned()
            .unwrap_or_else(default_optimizer),
    );
    config.insert(
        "wal_config".into(),
        cfg.get("wal_config")
            .cloned()
            .unwrap_or(json!({"wal_capacity_mb":32,"wal_segments_ahead":0,"wal_retain_closed":1})),
    );
    config.insert(
        "quantization_config".into(),
        cfg.get("quantization_config")
            .cloned()
            .unwrap_or(Value::Null),
    );
    let (mut points, mut indexed, mut segments) = (0usize, 0usize, 0usize);
    let mut schema = Map::new();
    for sh in &sv.coll.shards {
        let i = sh.info().map_err(|e| e.to_string())?;
        points += i.points_count;
        indexed += i.indexed_vectors_count;
        segments += i.segments_count;
        for (k, v) in i.payload_schema {
            let v = serde_json::to_value(v).unwrap_or(Value::Null);
            let entry = schema.entry(k.to_string()).or_insert_with(|| {
                let mut e = v.clone();
                e["points"] = json!(0);
                e
            });
            let add = v.get("points").and_then(Value::as_u64).unwrap_or(0);
            entry["points"] = json!(entry["points"].as_u64().unwrap_or(0) + add);
        }
    }
    Ok(json!({
        "status": "green", "optimizer_status": "ok", "indexed_vectors_count": indexed, "points_count": points,
        "segments_count": segments, "config": config, "payload_schema": schema, "update_queue": {"length": 0}
    }))
}

async fn info(State(s): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    let t = Instant::now();
    if let Err(r) = fault(&s, false, &name, t).await {
        return r;
    }
    let colls = s.colls.read().expect("lock");
    match colls.get(&name) {
        None => not_found(&name, t),
        Some(sv) => match info_json(sv) {
            Ok(v) => ok(v, t),
            Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, &e, t),
        },
    }
}

async fn create(
    State(s): State<Shared>,
    UrlPath(name): UrlPath<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let t = Instant::now();
    let mut colls = s.colls.write().expect("lock");
    if colls.contains_key(&name) {
        return err(
            StatusCode::CONFLICT,
            &format!("Wrong input: Collection `{name}` already exists!"),
            t,
        );
    }
    match store::create(&name, &body, &s.data.join("shards")) {
        Ok(sv) => {
            colls.insert(name, sv);
            ok(json!(true), t)
        }
        Err(e) => err(StatusCode::BAD_REQUEST, &format!("Wrong input: {e}"), t),
    }
}

async fn delete_collection(State(s): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    let t = Instant::now();
    let removed = s.colls.write().expect("lock").remove(&name).is_some();
    ok(json!(removed), t)
}

/// `POST /collections/{name}/points/delete` with `{"points": [ids]}`.
async fn delete_points(
    State(s): State<Shared>,
    UrlPath(name): UrlPath<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let Some(ids) = body.get("points").cloned() else {
        return err(
            StatusCode::BAD_REQUEST,
            "Wrong input: this stand-in deletes by {\"points\": [ids]} only",
            Instant::now(),
        );
    };
    write_points(s, name, true, move || {
        let ids: Vec<qdrant_edge::PointId> =
            serde_json::from_value(ids).map_err(|e| format!("Wrong input: {e}"))?;
        Ok(qdrant_edge::PointOperations::DeletePoints { ids })
    })
    .await
}

/// `PUT /collections/{name}/index` with `{"field_name", "field_schema"}`: a payload index on
/// every shard (Qdrant's actix `update_api.rs` `create_field_index`; collection-wide, so
/// `payload_schema` in the collection's info lists it with its type).
async fn create_field_index(
    State(s): State<Shared>,
    UrlPath(name): UrlPath<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    write_op(s, name, true, move || {
        let c: qdrant_edge::CreateIndex =
            serde_json::from_value(body).map_err(|e| format!("Format error in JSON body: {e}"))?;
        Ok(qdrant_edge::UpdateOperation::FieldIndexOperation(
            qdrant_edge::FieldIndexOperations::CreateIndex(c),
        ))
    })
    .await
}

async fn upsert(
    State(s): State<Shared>,
    UrlPath(name): UrlPath<String>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let Some(points) = body.get("points").cloned() else {
        return err(
            StatusCode::BAD_REQUEST,
            "Wrong input: expected {\"points\": [...]}",
            Instant::now(),
        );
    };
    // Points are written to the first shard (the stand-in does not route by id).
    write_points(s, name, false, move || {
        let pts: Vec<qdrant_edge::PointStructPersisted> =
            serde_json::from_value(points).map_err(|e| format!("Wrong input: {e}"))?;
        Ok(qdrant_edge::PointOperations::UpsertPoints(
            qdrant_edge::PointInsertOperations::PointsList(pts),
        ))
    })
    .await
}

/// The write path of upsert and delete: builds the point operation, applies it to the
/// collection's first shard (or every shard), answers as Qdrant does.
async fn write_points(
    s: Shared,
    name: String,
    every_shard: bool,
    op: impl FnOnce() -> Result<qdrant_edge::PointOperations, String> + Send + 'static,
) -> Response {
    write_op(s, name, every_shard, move || {
        op().map(qdrant_edge::UpdateOperation::PointOperation)
    })
    .await
}

/// Applies one update operation to the collection's first shard (or every shard).
async fn write_op(
    s: Shared,
    name: String,
    every_shard: bool,
    op: impl FnOnce() -> Result<qdrant_edge::UpdateOperation, String> + Send + 'static,
) -> Response {
    let t = Instant::now();
    let r = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let colls = s.colls.read().expect("lock");
        let sv = colls
            .get(&name)
            .ok_or_else(|| format!("Not found: Collection `{name}` doesn't exist!"))?;
        let op = op()?;
        let shards = if every_shard {
            &sv.coll.shards[..]
        } else {
            &sv.coll.shards[..1]
        };
        for sh in shards {
            sh.update(op.clone()).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await;
    match r {
        Ok(Ok(())) => ok(json!({"operation_id": 0, "status": "completed"}), t),
        Ok(Err(e)) if e.starts_with("Not found") => err(StatusCode::NOT_FOUND, &e, t),
        Ok(Err(e)) => err(StatusCode::BAD_REQUEST, &e, t),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), t),
    }
}

async fn count(State(s): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    let t = Instant::now();
    if let Err(r) = fault(&s, false, &name, t).await {
        return r;
    }
    let colls = s.colls.read().expect("lock");
    let Some(sv) = colls.get(&name) else {
        return not_found(&name, t);
    };
    let mut n = 0usize;
    for sh in &sv.coll.shards {
        match sh.count(CountRequestBuilder::new().exact(true).build()) {
            Ok(c) => n += c,
            Err(e) => return err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), t),
        }
    }
    ok(json!({"count": n}), t)
}

/// `POST /collections/{name}/points/query` with a dense vector (`{"query": [..], "using":
/// NAME, "limit": K, "params": {"exact": B}}`), searched through qdrant-edge; answered as Qdrant
/// 1.19 does: `{"points": [{"id", "version", "score"}]}`.
async fn query(State(s): State<Shared>, UrlPath(name): UrlPath<String>, body: Bytes) -> Response {
    let t = Instant::now();
    if let Err(r) = fault(&s, false, &name, t).await {
        return r;
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return err(
                StatusCode::BAD_REQUEST,
                &format!("Format error in JSON body: {e}"),
                t,
            );
        }
    };
    let Some(vector) = req
        .get("query")
        .and_then(q2z::model::QueryVector::from_qdrant_json)
    else {
        return err(
            StatusCode::BAD_REQUEST,
            "Format error in JSON body: this stand-in answers a nearest \"query\" only: a dense vector, a multivector (a list of vectors) or {\"indices\", \"values\"}",
            t,
        );
    };
    let using = req
        .get("using")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let limit = req.get("limit").and_then(Value::as_u64).unwrap_or(10) as usize;
    let exact = req
        .pointer("/params/exact")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let filter = req.get("filter").filter(|f| !f.is_null()).cloned();
    let shown = name.clone();
    let s2 = s.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Option<Value>, String> {
        let colls = s2.colls.read().expect("lock");
        let Some(sv) = colls.get(&name) else {
            return Ok(None);
        };
        let found = sv
            .coll
            .search(&using, vector, limit, exact, filter.as_ref())
            .map_err(|e| e.to_string())?;
        let points: Vec<Value> = found
            .into_iter()
            .map(|(id, score)| json!({"id": id.to_json(), "version": 0, "score": score}))
            .collect();
        Ok(Some(json!({"points": points})))
    })
    .await;
    match result {
        Ok(Ok(Some(v))) => ok(v, t),
        Ok(Ok(None)) => not_found(&shown, t),
        Ok(Err(e)) => err(StatusCode::BAD_REQUEST, &e, t),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), t),
    }
}

/// `POST /collections/aliases` with `{"actions": [{"create_alias": {"collection_name",
/// "alias_name"}} | {"delete_alias": {"alias_name"}}]}`, as Qdrant 1.19 answers it.
async fn update_aliases(State(s): State<Shared>, body: Bytes) -> Response {
    let t = Instant::now();
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return err(
                StatusCode::BAD_REQUEST,
                &format!("Format error in JSON body: {e}"),
                t,
            );
        }
    };
    let colls = s.colls.read().expect("lock");
    let mut aliases = s.aliases.write().expect("lock");
    for a in req["actions"].as_array().into_iter().flatten() {
        if let Some(c) = a.get("create_alias") {
            let (Some(coll), Some(alias)) =
                (c["collection_name"].as_str(), c["alias_name"].as_str())
            else {
                return err(
                    StatusCode::BAD_REQUEST,
                    "Format error in JSON body: create_alias needs collection_name and alias_name",
                    t,
                );
            };
            if !colls.contains_key(coll) {
                return not_found(coll, t);
            }
            aliases.insert(alias.to_string(), coll.to_string());
        } else if let Some(alias) = a
            .pointer("/delete_alias/alias_name")
            .and_then(Value::as_str)
        {
            aliases.remove(alias);
        }
    }
    ok(json!(true), t)
}

/// `GET /collections/{name}/aliases`.
async fn collection_aliases(State(s): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    let t = Instant::now();
    if !s.colls.read().expect("lock").contains_key(&name) {
        return not_found(&name, t);
    }
    let list: Vec<Value> = s
        .aliases
        .read()
        .expect("lock")
        .iter()
        .filter(|(_, c)| **c == name)
        .map(|(a, c)| json!({"alias_name": a, "collection_name": c}))
        .collect();
    ok(json!({"aliases": list}), t)
}

/// `GET /collections/{name}/cluster`, as a single-node Qdrant 1.19 answers: every shard local.
async fn cluster_info(State(s): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    let t = Instant::now();
    let colls = s.colls.read().expect("lock");
    let Some(sv) = colls.get(&name) else {
        return not_found(&name, t);
    };
    let mut local = Vec::new();
    for (i, sh) in sv.coll.shards.iter().enumerate() {
        let n = sh
            .count(CountRequestBuilder::new().exact(true).build())
            .unwrap_or(0);
        local.push(json!({"shard_id": i, "points_count": n, "state": "Active"}));
    }
    ok(
        json!({
            "peer_id": 7448892124437184u64,
            "shard_count": sv.coll.shards.len(),
            "local_shards": local,
            "remote_shards": [],
            "shard_transfers": []
        }),
        t,
    )
}

async fn scroll(State(s): State<Shared>, UrlPath(name): UrlPath<String>, body: Bytes) -> Response {
    let t = Instant::now();
    let reset = match fault(&s, true, &name, t).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                return err(
                    StatusCode::BAD_REQUEST,
                    &format!("Json deserialize error: {e}"),
                    t,
                );
            }
        }
    };
    let limit = req.get("limit").and_then(Value::as_u64).unwrap_or(10) as usize;
    let offset = match req.get("offset") {
        None | Some(Value::Null) => None,
        Some(v) => match PointId::from_json(v) {
            Some(id) => Some(id),
            None => {
                return err(
                    StatusCode::BAD_REQUEST,
                    &format!("Format error in JSON body: invalid offset {v}"),
                    t,
                );
            }
        },
    };
    let with_payload = req
        .get("with_payload")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let with_vector = req
        .get("with_vector")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let filter = req.get("filter").filter(|f| !f.is_null()).cloned();
    let stale = if filter.is_none() {
        s.faults.stale_ids(&name)
    } else {
        Vec::new()
    };
    let s2 = s.clone();
    let result = tokio::task::spawn_blocking(move || -> Result<Option<Value>, String> {
        let colls = s2.colls.read().expect("lock");
        let Some(sv) = colls.get(&name) else {
            return Ok(None);
        };
        let (pts, next) = sv
            .coll
            .scroll_where(
                offset.as_ref(),
                limit,
                with_payload || with_vector,
                filter.as_ref(),
            )
            .map_err(|e| e.to_string())?;
        let unnamed = sv.coll.config.dense.len() == 1
            && sv.coll.config.dense.contains_key("")
            && sv.coll.config.sparse.is_empty();
        let points: Vec<Value> = pts
            .iter()
            .filter(|p| !matches!(&p.id, q2z::model::PointId::Num(n) if stale.contains(n)))
            .map(|p| {
                let mut v = p.to_qdrant_json(unnamed);
                if !with_payload {
                    v["payload"] = Value::Null;
                }
                if !with_vector {
                    v["vector"] = Value::Null;
                }
                v
            })
            .collect();
        Ok(Some(
            json!({"points": points, "next_page_offset": next.map(|n| n.to_json())}),
        ))
    })
    .await;
    match result {
        Ok(Ok(Some(v))) if reset => {
            let full = serde_json::to_vec(
                &json!({"result": v, "status": "ok", "time": t.elapsed().as_secs_f64()}),
            )
            .unwrap_or_default();
            let half = Bytes::copy_from_slice(&full[..full.len() / 2]);
            let stream = futures::stream::iter(vec![
                Ok::<Bytes, std::io::Error>(half),
                Err(std::io::Error::other("injected connection reset")),
            ]);
            let mut r = Response::new(Body::from_stream(stream));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                "application/json".parse().expect("static"),
            );
            r.headers_mut().insert(
                header::CONTENT_LENGTH,
                full.len().to_string().parse().expect("number"),
            );
            r
        }
        Ok(Ok(Some(v))) => ok(v, t),
        Ok(Ok(None)) => not_found("?", t),
        // As Qdrant: a filter it cannot read is the request's fault.
        Ok(Err(e)) if e.contains("bad scroll filter") => err(
            StatusCode::BAD_REQUEST,
            &format!("Format error in JSON body: {e}"),
            t,
        ),
        Ok(Err(e)) => err(StatusCode::INTERNAL_SERVER_ERROR, &e, t),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), t),
    }
}

fn snap_dir(s: &AppState, name: &str) -> PathBuf {
    s.data.join("snapshots").join(name)
}

fn describe_snapshot(path: &std::path::Path) -> std::io::Result<Value> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let size = std::io::copy(&mut f, &mut h)?;
    let created = std::fs::metadata(path)?.modified()?;
    let created: chrono::DateTime<chrono::Utc> = created.into();
    Ok(json!({
        "name": path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "creation_time": created.format("%Y-%m-%dT%H:%M:%S").to_string(),
        "size": size,
        "checksum": hex::encode(h.finalize()),
    }))
}

async fn create_snapshot(State(s): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    let t = Instant::now();
    let colls = s.colls.read().expect("lock");
    let Some(sv) = colls.get(&name) else {
        return not_found(&name, t);
    };
    let dir = snap_dir(&s, &name);
    let stamp = chrono::Utc::now().format("%Y-%m-%d-%H-%M-%S");
    let path = dir.join(format!("{name}-1-{stamp}.snapshot"));
    let r = std::fs::create_dir_all(&dir)
        .and_then(|_| store::write_collection_snapshot(sv, &path))
        .and_then(|_| describe_snapshot(&path));
    match r {
        Ok(v) => ok(v, t),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), t),
    }
}

async fn list_snapshots(State(s): State<Shared>, UrlPath(name): UrlPath<String>) -> Response {
    let t = Instant::now();
    if !s.colls.read().expect("lock").contains_key(&name) {
        return not_found(&name, t);
    }
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(snap_dir(&s, &name)) {
        for e in rd.flatten() {
            if let Ok(v) = describe_snapshot(&e.path()) {
                out.push(v);
            }
        }
    }
    ok(Value::Array(out), t)
}

async fn stream_file(path: PathBuf, t: Instant) -> Response {
    match tokio::fs::File::open(&path).await {
        Ok(f) => {
            let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
            let mut r = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(f)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                "application/octet-stream".parse().expect("static"),
            );
            r.headers_mut().insert(
                header::CONTENT_LENGTH,
                len.to_string().parse().expect("number"),
            );
            r
        }
        Err(_) => err(
            StatusCode::NOT_FOUND,
            &format!(
                "Not found: Snapshot {} not found",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
            t,
        ),
    }
}

async fn download_snapshot(
    State(s): State<Shared>,
    UrlPath((name, snap)): UrlPath<(String, String)>,
) -> Response {
    let t = Instant::now();
    if snap.contains('/') || snap.contains("..") {
        return err(StatusCode::BAD_REQUEST, "Wrong input: bad snapshot name", t);
    }
    stream_file(snap_dir(&s, &name).join(snap), t).await
}

async fn delete_snapshot(
    State(s): State<Shared>,
    UrlPath((name, snap)): UrlPath<(String, String)>,
) -> Response {
    let t = Instant::now();
    if snap.contains('/') || snap.contains("..") {
        return err(StatusCode::BAD_REQUEST, "Wrong input: bad snapshot name", t);
    }
    match std::fs::remove_file(snap_dir(&s, &name).join(&snap)) {
        Ok(()) => ok(json!(true), t),
        Err(_) => err(
            StatusCode::NOT_FOUND,
            &format!("Not found: Snapshot {snap} not found"),
            t,
        ),
    }
}

async fn shard_snapshot(
    State(s): State<Shared>,
    UrlPath((name, shard)): UrlPath<(String, usize)>,
) -> Response {
    let t = Instant::now();
    let tmp = s
        .data
        .join(format!("shard-{name}-{shard}-{}.tar", uuid::Uuid::new_v4()));
    {
        let colls = s.colls.read().expect("lock");
        let Some(sv) = colls.get(&name) else {
            return not_found(&name, t);
        };
        let Some(sh) = sv.coll.shards.get(shard) else {
            return err(
                StatusCode::NOT_FOUND,
                &format!("Not found: Shard {shard} not found"),
                t,
            );
        };
        let r = store::write_shard_snapshot(sh, &tmp).map_err(|e| e.to_string());
        if let Err(e) = r {
            return err(StatusCode::INTERNAL_SERVER_ERROR, &e, t);
        }
    }
    let r = stream_file(tmp.clone(), t).await;
    // The open file handle keeps the data readable after the unlink.
    let _ = std::fs::remove_file(&tmp);
    r
}
