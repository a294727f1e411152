//! The in-memory key-value store behind `wasi:keyvalue`, shared by every component and
//! instance of a [`crate::TestApp`], with fault injection for tests.
//!
//! Everything sits behind one mutex, so each key-value call is atomic with respect to
//! every other, as each call is one SQLite transaction on Spin's default store: a batch
//! (`set-many`, `delete-many`) is all or nothing, `increment` is a read-modify-write that
//! cannot interleave, and a failed (injected) call changes nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The label Spin gives the store every app has.
pub const DEFAULT_LABEL: &str = "default";

/// A key-value operation as a component performs it; used to aim injected faults and to
/// count calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KvOp {
    /// `store.open`
    Open,
    /// `bucket.get`
    Get,
    /// `bucket.set`
    Set,
    /// `bucket.delete`
    Delete,
    /// `bucket.exists`
    Exists,
    /// `bucket.list-keys`
    ListKeys,
    /// `batch.get-many`
    GetMany,
    /// `batch.set-many`
    SetMany,
    /// `batch.delete-many`
    DeleteMany,
    /// `atomics.increment`
    Increment,
    /// `atomics.cas.new`
    CasNew,
    /// `atomics.cas.current`
    CasCurrent,
    /// `atomics.swap`
    Swap,
}

/// A clonable handle to the shared store. Tests get one from [`crate::TestApp::store`]
/// and may also create one up front and pass it in [`crate::HostOptions::store`] (to seed
/// data, or to keep data across a restart of the app).
#[derive(Clone)]
pub struct SharedStore {
    inner: Arc<Mutex<State>>,
    /// Whether calls hang ([`SharedStore::hang_all_calls`]); outside the lock, so that hung
    /// calls wait without holding it.
    hung: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for SharedStore {
    fn default() -> Self {
        Self {
            inner: Arc::default(),
            hung: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }
}

/// How long a hung synchronous (draft2) call blocks before it fails: long past any bound a
/// test expects a component to keep, short enough not to stall a test run for ever.
const SYNC_HANG_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

impl std::fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStore").finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// label → key → value.
    data: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    calls: u64,
    calls_by_op: BTreeMap<KvOp, u64>,
    scheduled: Vec<ScheduledFault>,
    fail_all: bool,
}

struct ScheduledFault {
    /// Only calls of this operation count, or every call when `None`.
    op: Option<KvOp>,
    /// Matching calls still to let through before failing one.
    remaining: u64,
}

/// An injected failure, reported to the component as `error::other(message)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InjectedFault(pub String);

/// The current value of one key, as a compare-and-swap saw it.
pub(crate) type Snapshot = Option<Vec<u8>>;

/// The data of one label, handed to an operation that passed fault injection.
pub(crate) type Bucket<'a> = &'a mut BTreeMap<String, Vec<u8>>;

impl SharedStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock (a failed assertion in a test, say) must not turn
        // every later call into a second panic: the data is still consistent, since each
        // operation completes before it returns.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    // ----- raw access for tests (never counted, never failed) -----

    /// The value of `key` in the `default` store.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.get_in(DEFAULT_LABEL, key)
    }

    /// The value of `key` in the store labelled `label`.
    pub fn get_in(&self, label: &str, key: &str) -> Option<Vec<u8>> {
        self.lock().data.get(label)?.get(key).cloned()
    }

    /// The value of `key` in the `default` store as UTF-8 (lossy).
    pub fn get_string(&self, key: &str) -> Option<String> {
        self.get(key)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    /// A counter written by `increment` in the `default` store: 8 little-endian bytes,
    /// as on Spin's default (SQLite) store. `None` if absent or not 8 bytes long.
    pub fn counter(&self, key: &str) -> Option<i64> {
        let bytes: [u8; 8] = self.get(key)?.try_into().ok()?;
        Some(i64::from_le_bytes(bytes))
    }

    /// Sets `key` in the `default` store (to seed data before a test).
    pub fn set(&self, key: &str, value: impl Into<Vec<u8>>) {
        self.set_in(DEFAULT_LABEL, key, value)
    }

    /// Sets `key` in the store labelled `label`.
    pub fn set_in(&self, label: &str, key: &str, value: impl Into<Vec<u8>>) {
        self.lock()
            .data
            .entry(label.to_string())
            .or_default()
            .insert(key.to_string(), value.into());
    }

    /// Removes `key` from the `default` store; true if it was there.
    pub fn remove(&self, key: &str) -> bool {
        self.lock()
            .data
            .get_mut(DEFAULT_LABEL)
            .is_some_and(|b| b.remove(key).is_some())
    }

    /// The keys of the `default` store, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.keys_in(DEFAULT_LABEL)
    }

    /// The keys of the store labelled `label`, sorted.
    pub fn keys_in(&self, label: &str) -> Vec<String> {
        self.lock()
            .data
            .get(label)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every key and value of the `default` store whose key starts with `prefix`.
    pub fn entries_with_prefix(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        self.lock()
            .data
            .get(DEFAULT_LABEL)
            .map(|b| {
                b.range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A copy of everything: label → key → value.
    pub fn dump(&self) -> BTreeMap<String, BTreeMap<String, Vec<u8>>> {
        self.lock().data.clone()
    }

    /// Empties every store (faults and call counts are kept).
    pub fn clear(&self) {
        self.lock().data.clear();
    }

    // ----- fault injection -----

    /// Makes the `n`-th key-value call from now fail (`n = 1`: the next one), whichever
    /// component makes it. Calls are counted app-wide, in the order the host receives
    /// them. The component sees `error::other("injected fault ...")` (for `swap`,
    /// `cas-error::store-error(other(..))`), and the failed call changes nothing.
    ///
    /// Every operation of [`KvOp`] counts, `open` included. Empty batches (which Spin
    /// answers without touching the store) and resource drops do not.
    pub fn fail_nth_call(&self, n: u64) {
        self.schedule(None, n);
    }

    /// Makes the next key-value call fail; same as `fail_nth_call(1)`.
    pub fn fail_next_call(&self) {
        self.fail_nth_call(1);
    }

    /// Makes the `n`-th call of operation `op` from now fail (other operations do not
    /// count towards `n`).
    pub fn fail_nth_call_of(&self, op: KvOp, n: u64) {
        self.schedule(Some(op), n);
    }

    fn schedule(&self, op: Option<KvOp>, n: u64) {
        assert!(
            n >= 1,
            "fault injection counts calls from 1 (the next call)"
        );
        self.lock()
            .scheduled
            .push(ScheduledFault { op, remaining: n });
    }

    /// Makes every key-value call fail until [`SharedStore::clear_faults`].
    pub fn fail_all_calls(&self) {
        self.lock().fail_all = true;
    }

    /// Makes every key-value call hang, as a Redis store does while Spin reconnects to a Redis
    /// that stopped, until [`SharedStore::clear_faults`]. A `spin:key-value@3.0.0` call waits
    /// without blocking the host (a component can stop waiting for it); a draft2 call is
    /// synchronous for the component and blocks its instance, as on Spin (here for at most 30 s,
    /// then it fails). A hung call is counted, and runs, once the hang ends; one the component
    /// stopped waiting for never runs.
    pub fn hang_all_calls(&self) {
        self.hung.send_replace(true);
    }

    /// Cancels every scheduled fault and stops failing, and hanging, all calls.
    pub fn clear_faults(&self) {
        let mut state = self.lock();
        state.scheduled.clear();
        state.fail_all = false;
        drop(state);
        self.hung.send_replace(false);
    }

    /// Waits while calls hang (for an async call).
    pub(crate) async fn hang(&self) {
        let mut hung = self.hung.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = hung.wait_for(|hung| !*hung).await;
    }

    /// Blocks while calls hang (for a synchronous call), at most [`SYNC_HANG_LIMIT`].
    fn hang_blocking(&self) -> Result<(), InjectedFault> {
        let start = std::time::Instant::now();
        while *self.hung.borrow() {
            if start.elapsed() > SYNC_HANG_LIMIT {
                return Err(InjectedFault(format!(
                    "injected hang: a synchronous call blocked for {} s",
                    SYNC_HANG_LIMIT.as_secs()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Ok(())
    }

    /// How many key-value calls the components have made so far (failed ones included).
    pub fn call_count(&self) -> u64 {
        self.lock().calls
    }

    /// How many calls of one operation the components have made so far.
    pub fn call_count_of(&self, op: KvOp) -> u64 {
        self.lock().calls_by_op.get(&op).copied().unwrap_or(0)
    }

    // ----- what the `wasi:keyvalue` host does (counted, may fail) -----

    /// Runs one synchronous key-value call on `label`'s data under the store lock, after
    /// counting it and applying injected faults (a hang blocks here).
    pub(crate) fn call<R>(
        &self,
        op: KvOp,
        label: &str,
        f: impl FnOnce(Bucket<'_>) -> R,
    ) -> Result<R, InjectedFault> {
        self.hang_blocking()?;
        self.run(op, label, f)
    }

    /// [`SharedStore::call`] for an async call: a hang waits without blocking the host.
    pub(crate) async fn call_async<R>(
        &self,
        op: KvOp,
        label: &str,
        f: impl FnOnce(Bucket<'_>) -> R,
    ) -> Result<R, InjectedFault> {
        self.hang().await;
        self.run(op, label, f)
    }

    fn run<R>(
        &self,
        op: KvOp,
        label: &str,
        f: impl FnOnce(Bucket<'_>) -> R,
    ) -> Result<R, InjectedFault> {
        let mut state = self.lock();
        state.calls += 1;
        let call_number = state.calls;
        *state.calls_by_op.entry(op).or_insert(0) += 1;

        let mut fail = state.fail_all;
        // Every scheduled fault that matches counts this call; the first to reach zero
        // fails it (and is used up).
        let mut fired = None;
        for (index, fault) in state.scheduled.iter_mut().enumerate() {
            if fault.op.is_none_or(|o| o == op) {
                fault.remaining -= 1;
                if fault.remaining == 0 && fired.is_none() {
                    fired = Some(index);
                }
            }
        }
        if let Some(index) = fired {
            state.scheduled.remove(index);
            fail = true;
        }
        // Faults that also reached zero on this call fire on the next matching one.
        for fault in &mut state.scheduled {
            fault.remaining = fault.remaining.max(1);
        }
        if fail {
            return Err(InjectedFault(format!(
                "injected fault: {op:?} call #{call_number} on store {label:?}"
            )));
        }
        Ok(f(state.data.entry(label.to_string()).or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(s: &SharedStore, key: &str) -> Result<Option<Vec<u8>>, InjectedFault> {
        s.call(KvOp::Get, DEFAULT_LABEL, |b| b.get(key).cloned())
    }

    #[test]
    fn nth_call_fails_once() {
        let s = SharedStore::new();
        s.set("k", "v");
        s.fail_nth_call(3);
        assert!(get(&s, "k").is_ok());
        assert!(get(&s, "k").is_ok());
        let err = get(&s, "k").unwrap_err();
        assert!(err.0.contains("call #3"), "{err:?}");
        assert!(get(&s, "k").is_ok());
        assert_eq!(s.call_count(), 4);
        assert_eq!(s.call_count_of(KvOp::Get), 4);
    }

    #[test]
    fn op_specific_faults_skip_other_ops() {
        let s = SharedStore::new();
        s.fail_nth_call_of(KvOp::Set, 1);
        assert!(get(&s, "k").is_ok());
        assert!(
            s.call(KvOp::Set, DEFAULT_LABEL, |b| b.insert("k".into(), vec![1]))
                .is_err()
        );
        assert_eq!(s.get("k"), None, "a failed call changes nothing");
        assert!(
            s.call(KvOp::Set, DEFAULT_LABEL, |b| b.insert("k".into(), vec![1]))
                .is_ok()
        );
        assert_eq!(s.get("k"), Some(vec![1]));
    }

    #[test]
    fn fail_all_until_cleared() {
        let s = SharedStore::new();
        s.fail_all_calls();
        assert!(get(&s, "k").is_err());
        assert!(get(&s, "k").is_err());
        s.clear_faults();
        assert!(get(&s, "k").is_ok());
    }

    #[tokio::test]
    async fn hung_calls_wait_until_cleared() {
        let s = SharedStore::new();
        s.set("k", "v");
        s.hang_all_calls();
        let call = s.call_async(KvOp::Get, DEFAULT_LABEL, |b| b.get("k").cloned());
        let mut call = std::pin::pin!(call);
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(50), call.as_mut()).await;
        assert!(waited.is_err(), "a hung call does not answer");
        assert_eq!(s.call_count(), 0, "nor is it counted while it hangs");
        s.clear_faults();
        assert_eq!(call.await, Ok(Some(b"v".to_vec())));
        assert_eq!(s.call_count(), 1);
    }

    #[test]
    fn a_hung_synchronous_call_blocks_until_cleared() {
        let s = SharedStore::new();
        s.hang_all_calls();
        let healer = {
            let s = s.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(100));
                s.clear_faults();
            })
        };
        let start = std::time::Instant::now();
        assert!(get(&s, "k").is_ok());
        assert!(start.elapsed() >= std::time::Duration::from_millis(100));
        healer.join().unwrap();
    }

    #[test]
    fn two_faults_due_on_the_same_call_fail_two_calls() {
        let s = SharedStore::new();
        s.fail_next_call();
        s.fail_next_call();
        assert!(get(&s, "k").is_err());
        assert!(get(&s, "k").is_err());
        assert!(get(&s, "k").is_ok());
    }

    #[test]
    fn labels_are_separate() {
        let s = SharedStore::new();
        s.set_in("other", "k", "1");
        assert_eq!(s.get("k"), None);
        assert_eq!(s.get_in("other", "k"), Some(b"1".to_vec()));
        assert_eq!(s.keys_in("other"), vec!["k".to_string()]);
    }

    #[test]
    fn counters_are_little_endian() {
        let s = SharedStore::new();
        s.set("n", 258i64.to_le_bytes());
        assert_eq!(s.counter("n"), Some(258));
        s.set("text", "12");
        assert_eq!(s.counter("text"), None);
    }
}
