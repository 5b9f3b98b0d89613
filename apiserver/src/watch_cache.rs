//! One cache per resource, fed by one store watch: the current objects and
//! a window of recent events. Watches and `resourceVersion=0` lists are
//! served from it, so a thousand watchers cost the store one watch.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, broadcast, watch};

use crate::error::{ApiError, ApiResult};
use crate::object;
use crate::resources::Resource;
use crate::storage::{Change, Store, StoreError, WatchItem};

/// Events a live watcher may fall behind by before it is cut off (it
/// then re-watches from its last resourceVersion).
const LIVE_BACKLOG: usize = 4096;
/// How long a request for a future resourceVersion waits for the cache.
const FRESHNESS_WAIT: Duration = Duration::from_secs(3);
const RELIST_BACKOFF: Duration = Duration::from_millis(500);
const LIST_PAGE: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

/// One change of one object, with the object before it (for selectors:
/// leaving a selector is a deletion to that watcher).
#[derive(Debug)]
pub struct CacheEvent {
    pub kind: EventKind,
    pub key: String,
    pub object: Arc<Value>,
    pub prev: Option<Arc<Value>>,
    pub revision: i64,
}

struct State {
    objects: BTreeMap<String, Arc<Value>>,
    history: VecDeque<Arc<CacheEvent>>,
    /// Everything up to here is in `objects`.
    revision: i64,
    /// Watches may start at any revision from here on.
    oldest: i64,
}

/// A consistent copy of some cached objects.
pub struct Snapshot {
    pub objects: Vec<Arc<Value>>,
    pub revision: i64,
}

/// Where a new watch starts: the events it is owed, then the live feed.
pub struct WatchStart {
    pub backlog: Vec<Arc<CacheEvent>>,
    pub live: broadcast::Receiver<Arc<CacheEvent>>,
    pub revision: i64,
}

pub struct WatchCache {
    resource: &'static Resource,
    /// Events kept for watchers that start in the recent past.
    history: usize,
    state: RwLock<State>,
    live: broadcast::Sender<Arc<CacheEvent>>,
    /// The cache's revision; 0 until the first list has landed.
    revision: watch::Sender<i64>,
    /// Wakes the feeder to ask the store for a progress report.
    progress_wanted: Notify,
}

impl WatchCache {
    /// Starts the cache and its feeder task.
    pub fn start(resource: &'static Resource, store: Store, history: usize) -> Arc<WatchCache> {
        let (live, _) = broadcast::channel(LIVE_BACKLOG);
        let cache = Arc::new(WatchCache {
            resource,
            history: history.max(1),
            state: RwLock::new(State { objects: BTreeMap::new(), history: VecDeque::new(), revision: 0, oldest: 0 }),
            live,
            revision: watch::channel(0).0,
            progress_wanted: Notify::new(),
        });
        tokio::spawn(feed(cache.clone(), store));
        cache
    }

    pub fn resource(&self) -> &'static Resource {
        self.resource
    }

    /// Everything up to this revision is in the cache (0: not loaded yet).
    pub fn revision(&self) -> i64 {
        *self.revision.borrow()
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits until the cache holds everything up to `revision`, asking the
    /// store for progress so that a quiet resource catches up too.
    pub async fn wait_for(&self, revision: i64) -> ApiResult<()> {
        let mut seen = self.revision.subscribe();
        let wait = async {
            loop {
                if *seen.borrow_and_update() >= revision.max(1) {
                    return;
                }
                self.progress_wanted.notify_one();
                if seen.changed().await.is_err() {
                    return;
                }
            }
        };
        tokio::time::timeout(FRESHNESS_WAIT, wait).await.map_err(|_| {
            ApiError::TooManyRequests(format!(
                "Too large resource version: {revision}, current: {}",
                *self.revision.borrow()
            ))
        })
    }

    /// The cached objects whose keys start with `prefix`.
    pub fn snapshot(&self, prefix: &str) -> Snapshot {
        let state = self.read();
        let objects = state.objects.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix));
        Snapshot { objects: objects.map(|(_, v)| v.clone()).collect(), revision: state.revision }
    }

    /// One cached object.
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.read().objects.get(key).cloned()
    }

    /// Starts a watch after `revision` (None: with the current objects as
    /// ADDED events first). A revision older than the window is 410 Gone.
    pub fn watch_from(&self, revision: Option<i64>) -> ApiResult<WatchStart> {
        let state = self.read();
        let live = self.live.subscribe();
        let backlog = match revision {
            None => state
                .objects
                .iter()
                .map(|(key, object)| {
                    Arc::new(CacheEvent {
                        kind: EventKind::Added,
                        key: key.clone(),
                        object: object.clone(),
                        prev: None,
                        revision: state.revision,
                    })
                })
                .collect(),
            Some(rv) if rv < state.oldest => {
                return Err(ApiError::Expired(format!("too old resource version: {rv} ({})", state.oldest)));
            }
            Some(rv) => state.history.iter().filter(|e| e.revision > rv).cloned().collect(),
        };
        Ok(WatchStart { backlog, live, revision: state.revision })
    }

    /// Replaces the cache with a fresh list, turning differences into events
    /// so that open watches stay correct across a re-list.
    fn reset(&self, items: BTreeMap<String, Arc<Value>>, revision: i64) {
        let mut state = self.write();
        let mut events = Vec::new();
        for (key, old) in &state.objects {
            if !items.contains_key(key) {
                events.push((EventKind::Deleted, key.clone(), old.clone(), Some(old.clone())));
            }
        }
        for (key, new) in &items {
            match state.objects.get(key) {
                None => events.push((EventKind::Added, key.clone(), new.clone(), None)),
                Some(old) if old != new => {
                    events.push((EventKind::Modified, key.clone(), new.clone(), Some(old.clone())))
                }
                Some(_) => {}
            }
        }
        // A list starts the history afresh: what happened between the last
        // event and the list is unknown, so older revisions get 410 now.
        state.history.clear();
        state.oldest = revision;
        state.objects = items;
        state.revision = revision;
        for (kind, key, object, prev) in events {
            self.push(&mut state, Arc::new(CacheEvent { kind, key, object, prev, revision }));
        }
        drop(state);
        self.revision.send_replace(revision);
    }

    fn apply(&self, changes: Vec<Change>) {
        let mut state = self.write();
        let mut latest = state.revision;
        for change in changes {
            latest = latest.max(change.revision);
            let prev = state.objects.get(&change.key).cloned();
            let event = match change.value {
                Some(bytes) => match decode(&bytes, change.revision) {
                    Some(object) => {
                        let object = Arc::new(object);
                        state.objects.insert(change.key.clone(), object.clone());
                        let kind = if prev.is_some() { EventKind::Modified } else { EventKind::Added };
                        CacheEvent { kind, key: change.key, object, prev, revision: change.revision }
                    }
                    None => {
                        tracing::warn!(key = %change.key, "skipping a stored value that is not a JSON object");
                        continue;
                    }
                },
                None => {
                    let Some(prev) = prev else { continue };
                    state.objects.remove(&change.key);
                    // A deletion carries the last state, at the deleting revision.
                    let mut last = (*prev).clone();
                    object::set_resource_version(&mut last, change.revision);
                    CacheEvent {
                        kind: EventKind::Deleted,
                        key: change.key,
                        object: Arc::new(last),
                        prev: Some(prev),
                        revision: change.revision,
                    }
                }
            };
            self.push(&mut state, Arc::new(event));
        }
        state.revision = latest;
        drop(state);
        self.revision.send_replace(latest);
    }

    fn progress(&self, revision: i64) {
        let mut state = self.write();
        if revision > state.revision {
            state.revision = revision;
            drop(state);
            self.revision.send_replace(revision);
        }
    }

    /// Records an event and sends it live, under the write lock, so a watch
    /// that starts concurrently sees it exactly once.
    fn push(&self, state: &mut State, event: Arc<CacheEvent>) {
        if state.history.len() >= self.history
            && let Some(dropped) = state.history.pop_front()
        {
            state.oldest = dropped.revision;
        }
        state.history.push_back(event.clone());
        let _no_watchers = self.live.send(event);
    }
}

/// A stored object with its resourceVersion filled in.
fn decode(bytes: &[u8], revision: i64) -> Option<Value> {
    let mut object: Value = serde_json::from_slice(bytes).ok()?;
    if !object.is_object() {
        return None;
    }
    object::set_resource_version(&mut object, revision);
    Some(object)
}

/// Lists, then watches from the list's revision. A broken store watch is
/// resumed where the cache is, so the history stays whole; only when the
/// store has compacted that revision away does the cache list again.
async fn feed(cache: Arc<WatchCache>, store: Store) {
    let prefix = cache.resource.key_prefix(None);
    loop {
        match list_all(&store, &prefix).await {
            Ok((items, revision)) => {
                cache.reset(items, revision);
                loop {
                    let from = cache.read().revision;
                    match follow(&cache, &store, &prefix, from).await {
                        Err(StoreError::Compacted(_)) => {
                            tracing::info!(resource = cache.resource.plural, from, "watch cache re-listing: compacted");
                            break;
                        }
                        Err(e) => {
                            tracing::info!(resource = cache.resource.plural, error = %e, from, "watch cache resuming");
                            tokio::time::sleep(RELIST_BACKOFF).await;
                        }
                        Ok(never) => match never {},
                    }
                }
            }
            Err(e) => tracing::warn!(resource = cache.resource.plural, error = %e, "watch cache list failed"),
        }
        tokio::time::sleep(RELIST_BACKOFF).await;
    }
}

async fn list_all(store: &Store, prefix: &str) -> Result<(BTreeMap<String, Arc<Value>>, i64), StoreError> {
    let mut items = BTreeMap::new();
    let mut start = prefix.to_string();
    let mut revision = 0;
    loop {
        let page = store.list(prefix, &start, LIST_PAGE, revision).await?;
        revision = page.revision;
        let last = page.items.last().map(|(k, _)| k.clone());
        for (key, stored) in page.items {
            if let Some(object) = decode(&stored.value, stored.mod_revision) {
                items.insert(key, Arc::new(object));
            }
        }
        match last {
            Some(last) if page.more => start = format!("{last}\0"),
            _ => return Ok((items, revision)),
        }
    }
}

async fn follow(
    cache: &WatchCache,
    store: &Store,
    prefix: &str,
    revision: i64,
) -> Result<std::convert::Infallible, StoreError> {
    let mut watch = store.watch(prefix, revision + 1).await?;
    loop {
        tokio::select! {
            item = watch.next() => match item? {
                WatchItem::Changes(changes) => cache.apply(changes),
                WatchItem::Progress(revision) => cache.progress(revision),
            },
            () = cache.progress_wanted.notified() => watch.request_progress().await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;
    use bytes::Bytes;
    use serde_json::json;

    const HISTORY: usize = 64;

    fn cache() -> WatchCache {
        WatchCache {
            resource: resources::find("", "v1", "configmaps").expect("configmaps"),
            history: HISTORY,
            state: RwLock::new(State { objects: BTreeMap::new(), history: VecDeque::new(), revision: 0, oldest: 0 }),
            live: broadcast::channel(16).0,
            revision: watch::channel(0).0,
            progress_wanted: Notify::new(),
        }
    }

    fn put(key: &str, revision: i64, data: &str) -> Change {
        let value = json!({"metadata": {"name": key}, "data": {"v": data}});
        Change { key: key.into(), value: Some(Bytes::from(value.to_string())), revision }
    }

    #[test]
    fn watches_start_from_history_or_are_gone() {
        let cache = cache();
        cache.reset(BTreeMap::new(), 10);
        cache.apply(vec![put("/a", 11, "1")]);
        cache.apply(vec![put("/a", 12, "2"), Change { key: "/a".into(), value: None, revision: 13 }]);
        let start = cache.watch_from(Some(11)).expect("in window");
        let kinds: Vec<_> = start.backlog.iter().map(|e| (e.kind, e.revision)).collect();
        assert_eq!(kinds, vec![(EventKind::Modified, 12), (EventKind::Deleted, 13)]);
        assert_eq!(start.backlog[1].object["metadata"]["resourceVersion"], "13");
        assert!(matches!(cache.watch_from(Some(9)), Err(ApiError::Expired(_))));
    }

    #[test]
    fn a_relist_starts_the_history_afresh() {
        let cache = cache();
        cache.reset(BTreeMap::new(), 10);
        cache.apply(vec![put("/a", 11, "1"), put("/a", 12, "2")]);
        assert!(cache.watch_from(Some(11)).is_ok());
        // Revisions 13..=20 are unknown to the cache after this list.
        cache.reset(BTreeMap::new(), 20);
        assert!(matches!(cache.watch_from(Some(12)), Err(ApiError::Expired(_))));
        assert!(cache.watch_from(Some(20)).is_ok());
    }

    #[test]
    fn an_unversioned_watch_starts_with_the_current_objects() {
        let cache = cache();
        cache.reset(BTreeMap::new(), 5);
        cache.apply(vec![put("/b", 6, "x"), put("/a", 7, "y")]);
        let start = cache.watch_from(None).expect("start");
        let keys: Vec<_> = start.backlog.iter().map(|e| (e.key.as_str(), e.kind)).collect();
        assert_eq!(keys, vec![("/a", EventKind::Added), ("/b", EventKind::Added)]);
        assert_eq!(start.revision, 7);
    }

    #[test]
    fn a_relist_turns_differences_into_events() {
        let cache = cache();
        cache.reset(BTreeMap::new(), 1);
        cache.apply(vec![put("/a", 2, "1"), put("/b", 3, "1")]);
        let mut live = cache.live.subscribe();
        let mut items = BTreeMap::new();
        items.insert("/b".to_string(), Arc::new(decode(br#"{"data":{"v":"2"}}"#, 9).expect("object")));
        items.insert("/c".to_string(), Arc::new(decode(br#"{"data":{}}"#, 8).expect("object")));
        cache.reset(items, 9);
        let mut seen = Vec::new();
        while let Ok(event) = live.try_recv() {
            seen.push((event.kind, event.key.clone()));
        }
        assert_eq!(
            seen,
            vec![
                (EventKind::Deleted, "/a".into()),
                (EventKind::Modified, "/b".into()),
                (EventKind::Added, "/c".into())
            ]
        );
        assert_eq!(cache.snapshot("/").objects.len(), 2);
        assert_eq!(cache.snapshot("/b").revision, 9);
    }

    #[test]
    fn the_window_slides() {
        let cache = cache();
        cache.reset(BTreeMap::new(), 1);
        for rev in 2..(HISTORY as i64 + 10) {
            cache.apply(vec![put("/a", rev, &rev.to_string())]);
        }
        assert!(cache.watch_from(Some(2)).is_err());
        assert!(cache.watch_from(Some(HISTORY as i64)).is_ok());
    }
}
