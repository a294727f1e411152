//! The storage abstraction every operation is written against, and an in-memory implementation
//! for native tests.
//!
//! The trait mirrors the calls of `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) that Spin
//! implements over SQLite, Redis, Azure Cosmos DB and DynamoDB, so the components map each method
//! to one host call and the call counts documented in the README hold on every backend.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The store failed or could not be reached; the request may be retried.
    #[error("key-value store failed: {0}")]
    Unavailable(String),
    /// Too many concurrent writers to one key kept winning; the request may be retried.
    #[error("too many concurrent updates of {0}; retry")]
    Contention(String),
    /// A stored value could not be read back; a bug or a foreign writer.
    #[error("stored value under {key} could not be read: {reason}")]
    Corrupt { key: String, reason: String },
}

/// One key-value store, as the CP-IS operations need it. Each method is one host call, except
/// `get_many` on a backend whose `get-many` is broken (docs/storage.md, "Reading several keys").
pub trait KeyValue {
    /// A compare-and-swap handle: the value of one key as [`KeyValue::cas_begin`] saw it.
    type Cas;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Values for `keys`, in the same order; `None` where a key has no value.
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError>;
    /// Sets every key in one transaction: all or nothing.
    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Deletes every key in one transaction: all or nothing.
    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError>;
    /// Atomically adds `delta` to the counter under `key` (absent counts as 0) and returns the
    /// new value. `increment(key, 0)` is the only portable way to read a counter.
    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError>;
    /// Reads `key` and remembers what it saw, for [`KeyValue::cas_swap`].
    fn cas_begin(&self, key: &str) -> Result<(Self::Cas, Option<Vec<u8>>), StoreError>;
    /// Writes `value` if the key still holds what `cas_begin` saw; `Ok(false)` if it changed.
    fn cas_swap(&self, cas: Self::Cas, value: Vec<u8>) -> Result<bool, StoreError>;
    /// Whether `get_many` costs one read per key here (Spin's Redis store: docs/storage.md,
    /// "Reading several keys"), so that reading keys that may not exist is not free.
    fn reads_each_key_apart(&self) -> bool {
        false
    }
}

/// How often an update retries after losing a compare-and-swap race before giving up.
const CAS_ATTEMPTS: usize = 64;

/// Reads and decodes a JSON value.
pub fn get_json<T: DeserializeOwned>(
    store: &impl KeyValue,
    key: &str,
) -> Result<Option<T>, StoreError> {
    store.get(key)?.map(|bytes| decode(key, &bytes)).transpose()
}

pub fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("CP-IS types always serialise")
}

/// Reads counters without writing: one `get` for one key, one `get-many` for several, where
/// `increment(key, 0)` would be a write transaction per key on Spin's SQLite store (and would
/// create the key). Each value is decoded in the layouts Spin's stores keep counters in
/// ([`decode_counter`]); an absent key is 0. A value in neither layout (a backend that keeps
/// counters another way) is read with `increment(key, 0)`, which every backend answers.
pub fn read_counters(store: &impl KeyValue, keys: &[String]) -> Result<Vec<i64>, StoreError> {
    let values = match keys {
        [] => return Ok(vec![]),
        [key] => vec![store.get(key)?],
        _ => store.get_many(keys)?,
    };
    values
        .into_iter()
        .zip(keys)
        .map(|(value, key)| match value {
            None => Ok(0),
            Some(bytes) => match decode_counter(&bytes) {
                Some(counter) => Ok(counter),
                None => store.increment(key, 0),
            },
        })
        .collect()
}

/// A counter's value from its stored bytes: decimal text (Spin's Redis store: `INCRBY`) or 8
/// little-endian bytes (Spin's SQLite store, and [`MemoryStore`]). Text wins when both fit: 8
/// bytes that are all ASCII digits would be a little-endian counter above 3.4 × 10^18, which no
/// count reaches. `None` for any other layout.
pub fn decode_counter(bytes: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(bytes).ok().filter(|t| {
        let digits = t.strip_prefix('-').unwrap_or(t);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    });
    match text {
        Some(text) => text.parse().ok(),
        None => <[u8; 8]>::try_from(bytes).ok().map(i64::from_le_bytes),
    }
}

/// Outcome of [`update_json`]'s closure.
pub enum Update<T, R> {
    /// Write this value and return `R`.
    Write(T, R),
    /// Leave the key as it is and return `R` (nothing to change: no write call is made).
    Keep(R),
}

/// Read-modify-write of one JSON value by compare-and-swap, retried while another writer wins.
/// `change` may run several times and must be pure.
///
/// Safe against concurrent writers once the key exists. Spin's SQLite store writes a swap on an
/// absent key unconditionally, so two *first* writes at once can lose one of them: use this only
/// where that is harmless (an acknowledgement that can only be re-sent), and keep data that
/// many writers create in keys of their own (see [`crate::records`]).
pub fn update_json<S: KeyValue, T, R, E>(
    store: &S,
    key: &str,
    mut change: impl FnMut(Option<T>) -> Result<Update<T, R>, E>,
) -> Result<R, E>
where
    T: Serialize + DeserializeOwned,
    E: From<StoreError>,
{
    for _ in 0..CAS_ATTEMPTS {
        let (cas, current) = store.cas_begin(key)?;
        let current = current.map(|bytes| decode(key, &bytes)).transpose()?;
        match change(current)? {
            Update::Keep(result) => return Ok(result),
            Update::Write(value, result) => {
                if store.cas_swap(cas, encode(&value))? {
                    return Ok(result);
                }
                // Lost the race: let the winner finish before reading again.
                std::thread::yield_now();
            }
        }
    }
    Err(StoreError::Contention(key.to_string()).into())
}

/// A [`KeyValue`] over `store` that holds back plain writes (`set-many`) and makes them in one
/// call when flushed, so that a batch of records costs one write transaction instead of one per
/// record. Reads see the held writes. Every other write (`delete`, `increment`, a swap) first
/// flushes what is held if it touches a held key or deletes, so writes reach the store in the
/// order they were made; an `increment` of a key nothing holds goes straight through (an atomic
/// reservation must be made when it is asked for).
///
/// Nothing held is written if the caller stops before [`HeldWrites::flush`]: a failure half-way
/// through leaves out the records since the last flush, whole.
pub struct HeldWrites<'a, S> {
    store: &'a S,
    held: std::cell::RefCell<Vec<(String, Vec<u8>)>>,
    index: std::cell::RefCell<HashMap<String, usize>>,
    flushes: std::cell::Cell<u64>,
}

impl<'a, S: KeyValue> HeldWrites<'a, S> {
    pub fn new(store: &'a S) -> Self {
        Self {
            store,
            held: Default::default(),
            index: Default::default(),
            flushes: Default::default(),
        }
    }

    /// How many flushes have written something: a caller learns from it that what it held
    /// before a call has reached the store.
    pub fn flushes(&self) -> u64 {
        self.flushes.get()
    }

    /// Whether nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.held.borrow().is_empty()
    }

    /// Writes everything held, in one `set-many` (none when nothing is held).
    pub fn flush(&self) -> Result<(), StoreError> {
        let held = std::mem::take(&mut *self.held.borrow_mut());
        self.index.borrow_mut().clear();
        if held.is_empty() {
            return Ok(());
        }
        self.store.set_many(&held)?;
        self.flushes.set(self.flushes.get() + 1);
        Ok(())
    }

    fn holds(&self, key: &str) -> bool {
        self.index.borrow().contains_key(key)
    }

    fn held(&self, key: &str) -> Option<Vec<u8>> {
        let index = self.index.borrow();
        index.get(key).map(|&i| self.held.borrow()[i].1.clone())
    }
}

impl<S: KeyValue> KeyValue for HeldWrites<'_, S> {
    type Cas = S::Cas;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.held(key) {
            Some(value) => Ok(Some(value)),
            None => self.store.get(key),
        }
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let unheld: Vec<String> = keys.iter().filter(|k| !self.holds(k)).cloned().collect();
        let mut stored = match unheld.len() {
            0 => vec![],
            _ => self.store.get_many(&unheld)?,
        }
        .into_iter();
        Ok(keys
            .iter()
            .map(|key| match self.held(key) {
                Some(value) => Some(value),
                None => stored.next().flatten(),
            })
            .collect())
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let mut held = self.held.borrow_mut();
        let mut index = self.index.borrow_mut();
        for (key, value) in entries {
            match index.get(key) {
                Some(&i) => held[i].1 = value.clone(),
                None => {
                    index.insert(key.clone(), held.len());
                    held.push((key.clone(), value.clone()));
                }
            }
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.flush()?;
        self.store.delete(key)
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.flush()?;
        self.store.delete_many(keys)
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        if self.holds(key) {
            self.flush()?;
        }
        self.store.increment(key, delta)
    }

    fn cas_begin(&self, key: &str) -> Result<(Self::Cas, Option<Vec<u8>>), StoreError> {
        self.flush()?;
        self.store.cas_begin(key)
    }

    fn cas_swap(&self, cas: Self::Cas, value: Vec<u8>) -> Result<bool, StoreError> {
        self.store.cas_swap(cas, value)
    }

    fn reads_each_key_apart(&self) -> bool {
        self.store.reads_each_key_apart()
    }
}

/// Which call a [`MemoryStore`] counts, so tests can check the call counts the README states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    Get,
    GetMany,
    SetMany,
    Delete,
    DeleteMany,
    Increment,
    CasBegin,
    CasSwap,
}

impl Call {
    /// Calls that write (each one transaction on Spin's SQLite store).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Call::SetMany | Call::Delete | Call::Increment | Call::CasSwap
        )
    }
}

/// An in-memory [`KeyValue`] with the same semantics as Spin's stores, for native tests: safe
/// under concurrent use, counts its calls, and can be told to fail.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<HashMap<String, Versioned>>,
    version: AtomicU64,
    calls: Mutex<Vec<Call>>,
    /// Fail the call whose 1-based number (counted from `fail_from`'s setting) is this.
    fault: Mutex<Fault>,
    /// Answer `get_many` as Spin's Redis store does: one `get` per key.
    each_key_apart: std::sync::atomic::AtomicBool,
}

#[derive(Clone)]
struct Versioned {
    value: Vec<u8>,
    version: u64,
}

#[derive(Default)]
enum Fault {
    #[default]
    None,
    /// Fail the call after `remaining` more succeed.
    Nth { remaining: usize },
    /// Fail every call.
    All,
}

/// A compare-and-swap handle of the [`MemoryStore`]: the key and the version it saw.
pub struct MemoryCas {
    key: String,
    version: Option<u64>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n - 1` calls succeed and the `n`-th fails (`n` from 1); then all succeed.
    pub fn fail_nth_call(&self, n: usize) {
        *self.fault.lock().unwrap() = Fault::Nth {
            remaining: n.saturating_sub(1),
        };
    }

    /// Every call fails until [`MemoryStore::heal`].
    pub fn fail_all_calls(&self) {
        *self.fault.lock().unwrap() = Fault::All;
    }

    /// From now on, `get_many` is one `get` per key (as on Spin's Redis store).
    pub fn read_each_key_apart(&self) {
        self.each_key_apart.store(true, Ordering::Relaxed);
    }

    pub fn heal(&self) {
        *self.fault.lock().unwrap() = Fault::None;
    }

    /// The calls made so far, in order; clears the record.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// A copy of every key and value, to check that a failed request left nothing behind.
    pub fn snapshot(&self) -> HashMap<String, Vec<u8>> {
        self.data
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.value.clone()))
            .collect()
    }

    fn enter(&self, call: Call) -> Result<(), StoreError> {
        self.calls.lock().unwrap().push(call);
        let mut fault = self.fault.lock().unwrap();
        match &mut *fault {
            Fault::None => Ok(()),
            Fault::All => Err(StoreError::Unavailable("injected fault".into())),
            Fault::Nth { remaining: 0 } => {
                *fault = Fault::None;
                Err(StoreError::Unavailable("injected fault".into()))
            }
            Fault::Nth { remaining } => {
                *remaining -= 1;
                Ok(())
            }
        }
    }

    fn next_version(&self) -> u64 {
        self.version.fetch_add(1, Ordering::Relaxed) + 1
    }
}

impl KeyValue for MemoryStore {
    type Cas = MemoryCas;

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.enter(Call::Get)?;
        Ok(self.data.lock().unwrap().get(key).map(|v| v.value.clone()))
    }

    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if self.reads_each_key_apart() {
            return keys.iter().map(|key| self.get(key)).collect();
        }
        self.enter(Call::GetMany)?;
        let data = self.data.lock().unwrap();
        Ok(keys
            .iter()
            .map(|k| data.get(k).map(|v| v.value.clone()))
            .collect())
    }

    fn set_many(&self, entries: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        self.enter(Call::SetMany)?;
        let mut data = self.data.lock().unwrap();
        for (key, value) in entries {
            let version = self.next_version();
            data.insert(
                key.clone(),
                Versioned {
                    value: value.clone(),
                    version,
                },
            );
        }
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.enter(Call::Delete)?;
        self.data.lock().unwrap().remove(key);
        Ok(())
    }

    fn delete_many(&self, keys: &[String]) -> Result<(), StoreError> {
        self.enter(Call::DeleteMany)?;
        let mut data = self.data.lock().unwrap();
        for key in keys {
            data.remove(key);
        }
        Ok(())
    }

    fn increment(&self, key: &str, delta: i64) -> Result<i64, StoreError> {
        self.enter(Call::Increment)?;
        let mut data = self.data.lock().unwrap();
        let current = match data.get(key) {
            None => 0,
            Some(v) => {
                let bytes: [u8; 8] =
                    v.value
                        .as_slice()
                        .try_into()
                        .map_err(|_| StoreError::Corrupt {
                            key: key.into(),
                            reason: "not a counter".into(),
                        })?;
                i64::from_le_bytes(bytes)
            }
        };
        let new = current + delta;
        let version = self.next_version();
        // Spin's SQLite store keeps counters as 8 little-endian bytes; so does this one.
        data.insert(
            key.to_string(),
            Versioned {
                value: new.to_le_bytes().to_vec(),
                version,
            },
        );
        Ok(new)
    }

    fn cas_begin(&self, key: &str) -> Result<(MemoryCas, Option<Vec<u8>>), StoreError> {
        self.enter(Call::CasBegin)?;
        let data = self.data.lock().unwrap();
        let current = data.get(key);
        Ok((
            MemoryCas {
                key: key.to_string(),
                version: current.map(|v| v.version),
            },
            current.map(|v| v.value.clone()),
        ))
    }

    fn cas_swap(&self, cas: MemoryCas, value: Vec<u8>) -> Result<bool, StoreError> {
        self.enter(Call::CasSwap)?;
        let mut data = self.data.lock().unwrap();
        // As Spin's SQLite store: a swap guards only a value that existed when it was read; a
        // key that was absent is written unconditionally.
        if cas.version.is_some() && data.get(&cas.key).map(|v| v.version) != cas.version {
            return Ok(false);
        }
        let version = self.next_version();
        data.insert(cas.key, Versioned { value, version });
        Ok(true)
    }

    fn reads_each_key_apart(&self) -> bool {
        self.each_key_apart.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn kv(key: &str, value: &str) -> (String, Vec<u8>) {
        (key.to_string(), value.as_bytes().to_vec())
    }

    #[test]
    fn held_writes_are_read_back_and_reach_the_store_in_one_call_when_flushed() {
        let store = MemoryStore::new();
        store.set_many(&[kv("stored", "s")]).unwrap();
        store.take_calls();
        let held = HeldWrites::new(&store);
        held.set_many(&[kv("a", "1"), kv("b", "1")]).unwrap();
        held.set_many(&[kv("a", "2")]).unwrap();
        assert!(!store.snapshot().contains_key("a"), "nothing written yet");
        assert_eq!(held.get("a").unwrap(), Some(b"2".to_vec()));
        let keys = ["a", "stored", "none"].map(String::from);
        assert_eq!(
            held.get_many(&keys).unwrap(),
            vec![Some(b"2".to_vec()), Some(b"s".to_vec()), None]
        );
        assert_eq!(
            store.take_calls(),
            [Call::GetMany],
            "only unheld keys are read"
        );
        held.flush().unwrap();
        assert_eq!(store.take_calls(), [Call::SetMany]);
        assert_eq!(store.snapshot()["a"], b"2");
        assert!(held.is_empty());
        assert_eq!(held.flushes(), 1);
        held.flush().unwrap();
        assert_eq!(store.take_calls(), [], "nothing held: no call");
    }

    #[test]
    fn other_writes_reach_the_store_after_what_was_held_before_them() {
        let store = MemoryStore::new();
        let held = HeldWrites::new(&store);
        held.set_many(&[kv("a", "1")]).unwrap();
        held.increment("counter", 1).unwrap();
        assert!(
            !held.is_empty(),
            "an increment of an unheld key goes straight through"
        );
        held.delete("a").unwrap();
        assert_eq!(
            store.take_calls(),
            [Call::Increment, Call::SetMany, Call::Delete]
        );
        assert!(!store.snapshot().contains_key("a"));
    }

    #[test]
    fn cas_fails_when_the_value_changed_in_between() {
        let store = MemoryStore::new();
        store.set_many(&[("k".into(), b"first".to_vec())]).unwrap();
        let (cas, current) = store.cas_begin("k").unwrap();
        assert_eq!(current.as_deref(), Some(&b"first"[..]));
        store.set_many(&[("k".into(), b"other".to_vec())]).unwrap();
        assert!(!store.cas_swap(cas, b"mine".to_vec()).unwrap());
        let (cas, current) = store.cas_begin("k").unwrap();
        assert_eq!(current.as_deref(), Some(&b"other"[..]));
        assert!(store.cas_swap(cas, b"mine".to_vec()).unwrap());
        assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"mine"[..]));
    }

    #[test]
    fn cas_on_an_absent_key_writes_unconditionally_like_spins_sqlite_store() {
        let store = MemoryStore::new();
        let (cas, current) = store.cas_begin("k").unwrap();
        assert_eq!(current, None);
        store.set_many(&[("k".into(), b"other".to_vec())]).unwrap();
        assert!(store.cas_swap(cas, b"mine".to_vec()).unwrap());
        assert_eq!(store.get("k").unwrap().as_deref(), Some(&b"mine"[..]));
    }

    #[test]
    fn nth_call_fault_fails_once() {
        let store = MemoryStore::new();
        store.fail_nth_call(2);
        assert!(store.get("a").is_ok());
        assert!(store.get("a").is_err());
        assert!(store.get("a").is_ok());
        store.fail_all_calls();
        assert!(store.get("a").is_err());
        assert!(store.increment("a", 1).is_err());
        store.heal();
        assert_eq!(store.increment("a", 1).unwrap(), 1);
    }

    #[test]
    fn update_json_loses_no_update_under_concurrency_once_the_key_exists() {
        let store = Arc::new(MemoryStore::new());
        store.set_many(&[("n".into(), b"0".to_vec())]).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        update_json::<_, u64, (), StoreError>(&*store, "n", |n| {
                            Ok(Update::Write(n.unwrap_or(0) + 1, ()))
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(get_json::<u64>(&*store, "n").unwrap(), Some(200));
    }

    #[test]
    fn update_json_keep_makes_no_write() {
        let store = MemoryStore::new();
        let r: Result<u8, StoreError> =
            update_json::<_, u64, _, _>(&store, "n", |_| Ok(Update::Keep(7)));
        assert_eq!(r.unwrap(), 7);
        assert!(!store.take_calls().iter().any(|c| c.writes()));
    }

    #[test]
    fn counters_are_read_without_writing_in_either_backends_form() {
        let store = MemoryStore::new();
        store.increment("sqlite", 42).unwrap();
        store.increment("negative", -3).unwrap();
        store
            .set_many(&[
                ("redis".into(), b"1234567".to_vec()),
                ("redis8".into(), b"12345678".to_vec()),
                ("junk".into(), b"{}".to_vec()),
            ])
            .unwrap();
        store.take_calls();
        let keys = ["sqlite", "negative", "redis", "redis8", "absent"].map(String::from);
        assert_eq!(
            read_counters(&store, &keys).unwrap(),
            [42, -3, 1_234_567, 12_345_678, 0]
        );
        assert_eq!(store.take_calls(), [Call::GetMany]);
        match read_counters(&store, &["junk".to_string()]) {
            Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "junk"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn corrupt_value_is_reported_with_its_key() {
        let store = MemoryStore::new();
        store
            .set_many(&[("k".into(), b"{not json".to_vec())])
            .unwrap();
        match get_json::<u64>(&store, "k") {
            Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "k"),
            other => panic!("{other:?}"),
        }
    }
}
