//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) over the [`SharedStore`], with the
//! semantics of Spin's default (SQLite) key-value store.
//!
//! What Spin does, and so this host:
//! - `open` of a label missing from the component's `key_value_stores` is `access-denied`,
//!   whether or not such a store exists; a listed label must be defined (Spin refuses to
//!   start otherwise), so `no-such-store` cannot normally be seen.
//! - `increment` keeps the counter as 8 little-endian bytes and returns the new value; on a
//!   value of another length Spin's SQLite store panics, which fails the request: here the
//!   call traps (so it shows in [`crate::TestApp::traps`]).
//! - `get-many` returns only the keys that exist (missing keys are left out, not paired
//!   with `none`).
//! - compare-and-swap: see [`CasSemantics`].
//! - `list-keys` with a cursor is `other("list_keys: cursor not supported")`.

use std::collections::BTreeSet;
use std::sync::Arc;

use wasmtime::component::{Resource, ResourceTable};

use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::state::HostState;
use crate::store::{InjectedFault, KvOp, SharedStore, Snapshot};

/// How `wasi:keyvalue/atomics` compare-and-swap decides whether a `swap` may write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CasSemantics {
    /// Spin's default (SQLite) store, exactly: `cas::new` reads nothing; `current()` takes
    /// the snapshot; `swap` then writes only if the stored value still equals that
    /// snapshot, else `cas-failed` (with a fresh CAS whose snapshot is the new value).
    /// Two quirks follow, and applications must not rely on CAS where they matter: a
    /// `swap` without a prior `current()`, or whose `current()` saw no value, writes
    /// unconditionally (so CAS cannot guard "create if absent"); and the check is on the
    /// value, so A→B→A in between is not a conflict. (Spin's Redis store behaves like this
    /// too for the first quirk; it WATCHes the key from `current()` on.)
    #[default]
    SpinSqlite,
    /// Stricter than any Spin store: `cas::new` already takes the snapshot (and
    /// `current()` refreshes it), and `swap` fails whenever the value, or its presence,
    /// differs from the snapshot, including a key created in between.
    Strict,
}

/// The key-value part of one instance's state.
pub(crate) struct KvContext {
    pub store: SharedStore,
    /// The component's `key_value_stores`.
    pub allowed: Arc<BTreeSet<String>>,
    /// Labels that exist in the app (`default` plus [`crate::HostOptions::extra_stores`]).
    pub defined: Arc<BTreeSet<String>>,
    pub cas: CasSemantics,
}

/// An open `bucket`: the label it was opened with.
pub struct BucketHandle {
    label: String,
}

/// A `cas` resource.
pub struct CasHandle {
    label: String,
    key: String,
    /// `None` until a snapshot was taken, then the value seen (`Some(None)`: no value).
    snapshot: Option<Snapshot>,
}

type StoreResult<T> = wasmtime::Result<Result<T, store::Error>>;

fn fault(e: InjectedFault) -> store::Error {
    store::Error::Other(e.0)
}

impl HostState {
    fn bucket_label(
        table: &ResourceTable,
        bucket: &Resource<BucketHandle>,
    ) -> wasmtime::Result<String> {
        Ok(table.get(bucket)?.label.clone())
    }

    /// One counted, fault-injectable call on the bucket's data.
    fn on_bucket<R>(
        &mut self,
        op: KvOp,
        bucket: &Resource<BucketHandle>,
        f: impl FnOnce(crate::store::Bucket<'_>) -> R,
    ) -> StoreResult<R> {
        let label = Self::bucket_label(&self.table, bucket)?;
        Ok(self.kv.store.call(op, &label, f).map_err(fault))
    }
}

impl store::Host for HostState {
    fn open(&mut self, identifier: String) -> StoreResult<Resource<BucketHandle>> {
        if !self.kv.allowed.contains(&identifier) {
            return Ok(Err(store::Error::AccessDenied));
        }
        if !self.kv.defined.contains(&identifier) {
            return Ok(Err(store::Error::NoSuchStore));
        }
        if let Err(e) = self.kv.store.call(KvOp::Open, &identifier, |_| ()) {
            return Ok(Err(fault(e)));
        }
        Ok(Ok(self.table.push(BucketHandle { label: identifier })?))
    }
}

impl store::HostBucket for HostState {
    fn get(&mut self, bucket: Resource<BucketHandle>, key: String) -> StoreResult<Option<Vec<u8>>> {
        self.on_bucket(KvOp::Get, &bucket, |b| b.get(&key).cloned())
    }

    fn set(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        value: Vec<u8>,
    ) -> StoreResult<()> {
        self.on_bucket(KvOp::Set, &bucket, |b| {
            b.insert(key, value);
        })
    }

    fn delete(&mut self, bucket: Resource<BucketHandle>, key: String) -> StoreResult<()> {
        self.on_bucket(KvOp::Delete, &bucket, |b| {
            b.remove(&key);
        })
    }

    fn exists(&mut self, bucket: Resource<BucketHandle>, key: String) -> StoreResult<bool> {
        self.on_bucket(KvOp::Exists, &bucket, |b| b.contains_key(&key))
    }

    fn list_keys(
        &mut self,
        bucket: Resource<BucketHandle>,
        cursor: Option<String>,
    ) -> StoreResult<store::KeyResponse> {
        if cursor.is_some() {
            return Ok(Err(store::Error::Other(
                "list_keys: cursor not supported".to_string(),
            )));
        }
        Ok(self
            .on_bucket(KvOp::ListKeys, &bucket, |b| b.keys().cloned().collect())?
            .map(|keys| store::KeyResponse { keys, cursor: None }))
    }

    fn drop(&mut self, bucket: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl batch::Host for HostState {
    fn get_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> StoreResult<Vec<(String, Option<Vec<u8>>)>> {
        if keys.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        self.on_bucket(KvOp::GetMany, &bucket, |b| {
            let mut seen = BTreeSet::new();
            keys.into_iter()
                .filter(|k| seen.insert(k.clone()))
                .filter_map(|k| b.get(&k).cloned().map(|v| (k, Some(v))))
                .collect()
        })
    }

    fn set_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> StoreResult<()> {
        if key_values.is_empty() {
            return Ok(Ok(()));
        }
        self.on_bucket(KvOp::SetMany, &bucket, |b| b.extend(key_values))
    }

    fn delete_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> StoreResult<()> {
        if keys.is_empty() {
            return Ok(Ok(()));
        }
        self.on_bucket(KvOp::DeleteMany, &bucket, |b| {
            for k in &keys {
                b.remove(k);
            }
        })
    }
}

impl atomics::Host for HostState {
    fn increment(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        delta: i64,
    ) -> StoreResult<i64> {
        let outcome = self.on_bucket(KvOp::Increment, &bucket, |b| {
            let current = match b.get(&key) {
                None => 0,
                Some(v) => match <[u8; 8]>::try_from(v.as_slice()) {
                    Ok(bytes) => i64::from_le_bytes(bytes),
                    Err(_) => return Err(v.len()),
                },
            };
            // Spin's release build wraps on overflow.
            let new = current.wrapping_add(delta);
            b.insert(key.clone(), new.to_le_bytes().to_vec());
            Ok(new)
        })?;
        match outcome {
            Ok(Ok(n)) => Ok(Ok(n)),
            Ok(Err(len)) => Err(wasmtime::format_err!(
                "increment of key {key:?}, whose value is {len} bytes long, not an 8-byte counter \
                 (Spin's SQLite store panics here and the request fails)"
            )),
            Err(e) => Ok(Err(e)),
        }
    }

    fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let CasHandle {
            label,
            key,
            snapshot,
        } = self.table.delete(cas)?;
        let semantics = self.kv.cas;
        let outcome = self.kv.store.call(KvOp::Swap, &label, |b| {
            let current = b.get(&key);
            let may_write = match (semantics, &snapshot) {
                (CasSemantics::SpinSqlite, None | Some(None)) => true,
                (CasSemantics::SpinSqlite, Some(Some(old))) => current == Some(old),
                (CasSemantics::Strict, Some(seen)) => current == seen.as_ref(),
                (CasSemantics::Strict, None) => false, // unreachable: `new` takes a snapshot
            };
            if may_write {
                b.insert(key.clone(), value);
                Ok(())
            } else {
                // Like Spin: hand back a fresh CAS whose snapshot is the value now stored.
                Err(current.cloned())
            }
        });
        match outcome {
            Ok(Ok(())) => Ok(Ok(())),
            Ok(Err(now)) => {
                let fresh = self.table.push(CasHandle {
                    label,
                    key,
                    snapshot: Some(now),
                })?;
                Ok(Err(atomics::CasError::CasFailed(fresh)))
            }
            Err(e) => Ok(Err(atomics::CasError::StoreError(fault(e)))),
        }
    }
}

impl atomics::HostCas for HostState {
    fn new(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> StoreResult<Resource<CasHandle>> {
        let label = Self::bucket_label(&self.table, &bucket)?;
        let strict = self.kv.cas == CasSemantics::Strict;
        let snapshot = match self.kv.store.call(KvOp::CasNew, &label, |b| {
            strict.then(|| b.get(&key).cloned())
        }) {
            Ok(s) => s,
            Err(e) => return Ok(Err(fault(e))),
        };
        Ok(Ok(self.table.push(CasHandle {
            label,
            key,
            snapshot,
        })?))
    }

    fn current(&mut self, cas: Resource<CasHandle>) -> StoreResult<Option<Vec<u8>>> {
        let (label, key) = {
            let handle = self.table.get(&cas)?;
            (handle.label.clone(), handle.key.clone())
        };
        let value = match self
            .kv
            .store
            .call(KvOp::CasCurrent, &label, |b| b.get(&key).cloned())
        {
            Ok(v) => v,
            Err(e) => return Ok(Err(fault(e))),
        };
        self.table.get_mut(&cas)?.snapshot = Some(value.clone());
        Ok(Ok(value))
    }

    fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

/// `spin:key-value@3.0.0`: the same stores, data and faults as draft2, through `async func`s
/// that the host runs concurrently (as Spin does), so a hung call does not block the instance.
/// A store handle is a [`BucketHandle`]. `get-keys` is not provided (CP-IS does not import it).
mod v3_host {
    use super::*;
    use crate::bindings::spin::key_value::key_value as v3;
    use wasmtime::component::{Accessor, HasSelf};

    type V3Result<T> = wasmtime::Result<Result<T, v3::Error>>;

    fn fault(e: InjectedFault) -> v3::Error {
        v3::Error::Other(e.0)
    }

    impl v3::Host for HostState {}

    /// The label of an open store and the data behind it.
    fn opened<T>(
        accessor: &Accessor<T, HasSelf<HostState>>,
        handle: &Resource<BucketHandle>,
    ) -> wasmtime::Result<(String, SharedStore)> {
        accessor.with(|mut access| {
            let host = access.get();
            Ok((
                HostState::bucket_label(&host.table, handle)?,
                host.kv.store.clone(),
            ))
        })
    }

    impl v3::HostStore for HostState {
        fn drop(&mut self, store: Resource<BucketHandle>) -> wasmtime::Result<()> {
            self.table.delete(store)?;
            Ok(())
        }
    }

    impl<T> v3::HostStoreWithStore<T> for HasSelf<HostState> {
        async fn open(
            accessor: &Accessor<T, Self>,
            label: String,
        ) -> V3Result<Resource<BucketHandle>> {
            let (allowed, defined, store) = accessor.with(|mut access| {
                let host = access.get();
                (
                    host.kv.allowed.contains(&label),
                    host.kv.defined.contains(&label),
                    host.kv.store.clone(),
                )
            });
            if !allowed {
                return Ok(Err(v3::Error::AccessDenied));
            }
            if !defined {
                return Ok(Err(v3::Error::NoSuchStore));
            }
            if let Err(e) = store.call_async(KvOp::Open, &label, |_| ()).await {
                return Ok(Err(fault(e)));
            }
            accessor.with(|mut access| Ok(Ok(access.get().table.push(BucketHandle { label })?)))
        }

        async fn get(
            accessor: &Accessor<T, Self>,
            handle: Resource<BucketHandle>,
            key: String,
        ) -> V3Result<Option<Vec<u8>>> {
            let (label, store) = opened(accessor, &handle)?;
            Ok(store
                .call_async(KvOp::Get, &label, |b| b.get(&key).cloned())
                .await
                .map_err(fault))
        }

        async fn set(
            accessor: &Accessor<T, Self>,
            handle: Resource<BucketHandle>,
            key: String,
            value: Vec<u8>,
        ) -> V3Result<()> {
            let (label, store) = opened(accessor, &handle)?;
            Ok(store
                .call_async(KvOp::Set, &label, |b| {
                    b.insert(key, value);
                })
                .await
                .map_err(fault))
        }

        async fn delete(
            accessor: &Accessor<T, Self>,
            handle: Resource<BucketHandle>,
            key: String,
        ) -> V3Result<()> {
            let (label, store) = opened(accessor, &handle)?;
            Ok(store
                .call_async(KvOp::Delete, &label, |b| {
                    b.remove(&key);
                })
                .await
                .map_err(fault))
        }

        async fn exists(
            accessor: &Accessor<T, Self>,
            handle: Resource<BucketHandle>,
            key: String,
        ) -> V3Result<bool> {
            let (label, store) = opened(accessor, &handle)?;
            Ok(store
                .call_async(KvOp::Exists, &label, |b| b.contains_key(&key))
                .await
                .map_err(fault))
        }
    }
}
