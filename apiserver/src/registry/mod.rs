//! One generic registry for every resource: reads, lists, and the
//! optimistic write paths (create, update, patch, delete) over the store.
//! Per-resource behaviour comes from `strategy`, `defaults`, `validation`
//! and `admission`; this module only sequences them.

mod allocate;
mod delete;
mod list;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

pub use delete::{DeleteOptions, Deleted};
pub use list::ListOptions;
pub use write::{WriteOptions, WriteOutcome};

use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::resources::{RESOURCES, Resource};
use crate::storage::{Store, StoreError};
use crate::watch_cache::WatchCache;

/// Conflicting writers retry this often before a 409 reaches the client.
const MAX_ATTEMPTS: usize = 16;

pub struct Registry {
    store: Store,
    caches: HashMap<(&'static str, &'static str), Arc<WatchCache>>,
}

impl Registry {
    /// Starts a watch cache, keeping `history` events, for every stored resource.
    pub fn start(store: Store, history: usize) -> Registry {
        let caches = RESOURCES
            .iter()
            .filter(|r| r.stored)
            .map(|r| ((r.group, r.plural), WatchCache::start(r, store.clone(), history)))
            .collect::<HashMap<_, _>>();
        Registry { store, caches }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn cache(&self, resource: &Resource) -> ApiResult<&Arc<WatchCache>> {
        self.caches.get(&(resource.group, resource.plural)).ok_or(ApiError::MethodNotSupported)
    }

    /// Waits until every cache has caught up with the store: readiness.
    pub async fn wait_ready(&self) -> ApiResult<()> {
        let revision = self.store.revision().await.map_err(store_error)?;
        for cache in self.caches.values() {
            cache.wait_for(revision).await?;
        }
        Ok(())
    }

    /// The current object, read from the store.
    pub async fn get(&self, resource: &Resource, namespace: &str, name: &str) -> ApiResult<Value> {
        Ok(self.get_versioned(resource, namespace, name).await?.0)
    }

    /// The current object and the revision that wrote it, which a
    /// conditional write names.
    async fn get_versioned(&self, resource: &Resource, namespace: &str, name: &str) -> ApiResult<(Value, i64)> {
        let key = resource.key(namespace, name);
        match self.store.get(&key).await.map_err(store_error)? {
            Some(stored) => Ok((decode_stored(&stored.value, stored.mod_revision)?, stored.mod_revision)),
            None => Err(ApiError::not_found(&resource.qualified(), name)),
        }
    }
}

/// Maps store failures to what the client sees.
pub fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Unavailable(m) => ApiError::Unavailable(format!("the store is unavailable: {m}")),
        StoreError::Compacted(rev) => {
            ApiError::Expired(format!("The resourceVersion for the provided list is too old ({rev})."))
        }
        StoreError::Other(m) => ApiError::Internal(m),
    }
}

/// A stored object with its resourceVersion filled in.
pub fn decode_stored(bytes: &[u8], revision: i64) -> ApiResult<Value> {
    let mut object: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::Internal(format!("a stored object is not valid JSON: {e}")))?;
    object::set_resource_version(&mut object, revision);
    Ok(object)
}

/// What the store keeps: the object without its resourceVersion, which is
/// the key's mod_revision.
pub fn encode_for_store(object: &Value) -> ApiResult<Bytes> {
    let mut object = object.clone();
    object::metadata_mut(&mut object).remove("resourceVersion");
    serde_json::to_vec(&object).map(Bytes::from).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The resourceVersion a client sent, as a store revision.
pub fn parse_resource_version(text: &str) -> ApiResult<Option<i64>> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>().map(Some).map_err(|_| ApiError::bad_request(format!("invalid resource version: {text:?}")))
}
