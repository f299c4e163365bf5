//! Faults the tests switch on with `POST /__standin/faults`.

use serde::Deserialize;
use std::sync::Mutex;

/// Pending faults; each counter is consumed by the next data requests.
#[derive(Debug, Default, Deserialize, Clone)]
pub struct Faults {
    /// Answer the next N data requests with this HTTP status (500 or 503).
    #[serde(default)]
    pub error_status: u16,
    #[serde(default)]
    pub error_count: u32,
    /// Answer the next N data requests with 429 and `Retry-After: retry_after` seconds.
    #[serde(default)]
    pub rate_limit_count: u32,
    #[serde(default)]
    pub retry_after: u32,
    /// Cut the next N scroll answers in the middle of the body.
    #[serde(default)]
    pub reset_count: u32,
    /// Delay every scroll page by this many milliseconds.
    #[serde(default)]
    pub slow_ms: u64,
    /// Extra delay of the scroll pages of some collections (kept until changed).
    #[serde(default)]
    pub slow_ms_by_collection: std::collections::HashMap<String, u64>,
    /// Extra delay of the gRPC scroll answers of some collections (kept until changed): a
    /// transport slower than the other for one collection.
    #[serde(default)]
    pub slow_grpc_ms_by_collection: std::collections::HashMap<String, u64>,
    /// Unfiltered scrolls of a collection answered by a replica that has not applied some
    /// points yet (kept until changed): those ids are left out of the pages. Qdrant serves a
    /// scroll from one replica (default `read_consistency` 1: lib/collection/src/shards/
    /// replica_set, `execute_read_operation`), so a lagging one answers without them.
    #[serde(default)]
    pub stale_replica: std::collections::HashMap<String, Vec<u64>>,
}

/// What to do with one request.
pub enum Action {
    Pass,
    Error(u16),
    RateLimit(u32),
    Reset,
}

/// Shared fault state.
#[derive(Default)]
pub struct FaultState(pub Mutex<Faults>);

impl FaultState {
    /// The ids a stale replica of `collection` does not have yet.
    pub fn stale_ids(&self, collection: &str) -> Vec<u64> {
        let f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f.stale_replica.get(collection).cloned().unwrap_or_default()
    }

    /// The extra delay of a gRPC scroll of `collection`.
    pub fn grpc_slow_ms(&self, collection: &str) -> u64 {
        let f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f.slow_grpc_ms_by_collection
            .get(collection)
            .copied()
            .unwrap_or(0)
    }

    /// Takes the next fault for a data request (`scroll`: the request may be cut mid-body).
    pub fn next(&self, scroll: bool, collection: &str) -> (Action, u64) {
        let mut f = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let slow = if scroll {
            f.slow_ms
                + f.slow_ms_by_collection
                    .get(collection)
                    .copied()
                    .unwrap_or(0)
        } else {
            0
        };
        if f.error_count > 0 {
            f.error_count -= 1;
            return (
                Action::Error(if f.error_status == 0 {
                    500
                } else {
                    f.error_status
                }),
                slow,
            );
        }
        if f.rate_limit_count > 0 {
            f.rate_limit_count -= 1;
            return (Action::RateLimit(f.retry_after), slow);
        }
        if scroll && f.reset_count > 0 {
            f.reset_count -= 1;
            return (Action::Reset, slow);
        }
        (Action::Pass, slow)
    }
}
