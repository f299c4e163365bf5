//! What the REST routes and the gRPC API share: the served collections and their settings.

use crate::faults::FaultState;
use crate::store::Collections;
use std::path::PathBuf;
use std::sync::RwLock;

/// The stand-in's state.
pub(crate) struct AppState {
    pub(crate) colls: RwLock<Collections>,
    /// Alias → collection (`POST /collections/aliases`).
    pub(crate) aliases: RwLock<std::collections::BTreeMap<String, String>>,
    pub(crate) faults: FaultState,
    pub(crate) api_key: Option<String>,
    pub(crate) data: PathBuf,
}
