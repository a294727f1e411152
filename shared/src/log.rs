//! Append-only sequenced logs (alert feeds, access history, audit) that lose nothing when many
//! requests append at once.
//!
//! Appending takes two calls: an atomic `increment` of the log's head reserves sequence numbers,
//! then the entries are written with the rest of the request's writes in one `set-many`. Two
//! writers can never get the same number, so nothing is overwritten. A writer that reserved a
//! number but failed before writing leaves a gap; readers never return anything past a gap that
//! may still be filled (so feeds stay in order and nothing is skipped), and pass over a gap once
//! an entry after it is older than the grace period (its writer has certainly given up: a request
//! never lives that long).

use crate::store::{KeyValue, StoreError, decode, decode_counter, encode, read_counters};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// A log's place in the store: `{prefix}/head` counts the numbers handed out, `{prefix}/{n}`
/// holds entry `n` (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    prefix: String,
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry<T> {
    pub seq: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub written_at: OffsetDateTime,
    pub item: T,
}

/// A page read from a log after a cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub entries: Vec<Entry<T>>,
    /// Where the next read should start: every entry up to it has been returned or abandoned.
    pub next_cursor: u64,
    /// Whether more entries may be read now (the page was full).
    pub more: bool,
    /// The highest position handed out when the page was read.
    pub head: u64,
}

impl Log {
    pub fn new(prefix: String) -> Self {
        Self { prefix }
    }

    pub fn head_key(&self) -> String {
        format!("{}/head", self.prefix)
    }

    pub fn entry_key(&self, seq: u64) -> String {
        format!("{}/{seq}", self.prefix)
    }

    /// Reserves `count` sequence numbers (one `increment`) and returns the first.
    pub fn reserve(&self, store: &impl KeyValue, count: u64) -> Result<u64, StoreError> {
        let delta = i64::try_from(count)
            .map_err(|_| StoreError::Unavailable("reservation too large".into()))?;
        let last = store.increment(&self.head_key(), delta)?;
        Ok((to_seq(last) + 1).saturating_sub(count))
    }

    /// The entry to write for a reserved number, as a key and value for `set-many`.
    pub fn entry<T: Serialize>(
        &self,
        seq: u64,
        written_at: OffsetDateTime,
        item: T,
    ) -> (String, Vec<u8>) {
        (
            self.entry_key(seq),
            encode(&Entry {
                seq,
                written_at,
                item,
            }),
        )
    }

    /// The highest number handed out so far: one `get`, no write ([`read_counters`]).
    pub fn head(&self, store: &impl KeyValue) -> Result<u64, StoreError> {
        Ok(to_seq(read_counters(store, &[self.head_key()])?[0]))
    }

    /// Up to `limit` entries after `cursor`, in order (two calls: head, then one `get-many`).
    pub fn read_after<T: DeserializeOwned>(
        &self,
        store: &impl KeyValue,
        cursor: u64,
        limit: u64,
        now: OffsetDateTime,
        gap_grace: Duration,
    ) -> Result<Page<T>, StoreError> {
        let head = self.head(store)?;
        self.read_after_head(store, head, cursor, limit, now, gap_grace)
    }

    /// As [`Log::read_after`], with the head already read (one `get-many`).
    pub fn read_after_head<T: DeserializeOwned>(
        &self,
        store: &impl KeyValue,
        head: u64,
        cursor: u64,
        limit: u64,
        now: OffsetDateTime,
        gap_grace: Duration,
    ) -> Result<Page<T>, StoreError> {
        let last = head.min(cursor.saturating_add(limit));
        if last <= cursor {
            return Ok(Page {
                entries: vec![],
                next_cursor: cursor,
                more: false,
                head,
            });
        }
        let slots = self.read_range(store, cursor + 1, last)?;
        // For each slot, the oldest write time of any entry after it: a gap is abandoned when
        // something written after it is older than the grace period.
        let mut oldest_after = vec![None; slots.len()];
        let mut oldest: Option<OffsetDateTime> = None;
        for (i, slot) in slots.iter().enumerate().rev() {
            oldest_after[i] = oldest;
            if let Some(entry) = slot {
                oldest = Some(oldest.map_or(entry.written_at, |o| o.min(entry.written_at)));
            }
        }
        let mut entries = Vec::new();
        let mut next_cursor = cursor;
        for (slot, oldest_later) in slots.into_iter().zip(oldest_after) {
            match slot {
                Some(entry) => entries.push(entry),
                None if oldest_later.is_some_and(|t| t <= now - gap_grace) => {}
                None => {
                    return Ok(Page {
                        entries,
                        next_cursor,
                        more: false,
                        head,
                    });
                }
            }
            next_cursor += 1;
        }
        Ok(Page {
            entries,
            next_cursor,
            more: last < head,
            head,
        })
    }

    /// The newest `count` entries, newest first by write time (two calls). Gaps are skipped:
    /// this is a view of what is there, not a feed to resume.
    pub fn newest<T: DeserializeOwned>(
        &self,
        store: &impl KeyValue,
        count: u64,
    ) -> Result<Vec<Entry<T>>, StoreError> {
        let head = self.head(store)?;
        if head == 0 || count == 0 {
            return Ok(vec![]);
        }
        // Read a few extra slots so that a rare gap does not shorten the list.
        let first = head.saturating_sub(count + count / 4).max(1);
        let mut entries: Vec<Entry<T>> = self
            .read_range(store, first, head)?
            .into_iter()
            .flatten()
            .collect();
        // Concurrent writers may reserve positions in another order than their clocks read:
        // newest first means by time, then by position.
        entries.sort_by(|a, b| b.written_at.cmp(&a.written_at).then(b.seq.cmp(&a.seq)));
        entries.truncate(count as usize);
        Ok(entries)
    }

    /// Every entry of a log that is usually short, in one `get-many` of the head and the first
    /// `probe` positions (and one more for any entries past `probe`). Where each key is a read
    /// of its own ([`KeyValue::reads_each_key_apart`]), the head is read first and then only the
    /// positions it counts: the positions read on speculation would cost a read each. Reads
    /// only: a log that was never written leaves no trace.
    pub fn read_all_if_any<T: DeserializeOwned>(
        &self,
        store: &impl KeyValue,
        probe: u64,
    ) -> Result<Vec<Entry<T>>, StoreError> {
        let probe = if store.reads_each_key_apart() {
            0
        } else {
            probe
        };
        let keys: Vec<String> = std::iter::once(self.head_key())
            .chain((1..=probe).map(|seq| self.entry_key(seq)))
            .collect();
        let mut values = store.get_many(&keys)?.into_iter();
        let head = match values.next().flatten() {
            None => return Ok(vec![]),
            Some(bytes) => match decode_counter(&bytes) {
                Some(head) => to_seq(head),
                None => self.head(store)?, // a layout Spin's stores do not use
            },
        };
        let mut entries = Vec::new();
        for (key, value) in keys[1..].iter().zip(values).take(head.min(probe) as usize) {
            if let Some(bytes) = value {
                entries.push(decode(key, &bytes)?);
            }
        }
        if head > probe {
            entries.extend(
                self.read_range(store, probe + 1, head)?
                    .into_iter()
                    .flatten(),
            );
        }
        Ok(entries)
    }

    /// Entries `first..=last` (one `get-many`); `None` where a position is empty.
    pub fn read_range<T: DeserializeOwned>(
        &self,
        store: &impl KeyValue,
        first: u64,
        last: u64,
    ) -> Result<Vec<Option<Entry<T>>>, StoreError> {
        let keys: Vec<String> = (first..=last).map(|seq| self.entry_key(seq)).collect();
        let values = store.get_many(&keys)?;
        keys.iter()
            .zip(values)
            .map(|(key, value)| value.map(|bytes| decode(key, &bytes)).transpose())
            .collect()
    }
}

fn to_seq(counter: i64) -> u64 {
    u64::try_from(counter).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use std::sync::Arc;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);
    const GRACE: Duration = Duration::seconds(60);

    fn append(store: &MemoryStore, log: &Log, item: &str, at: OffsetDateTime) -> u64 {
        let seq = log.reserve(store, 1).unwrap();
        store.set_many(&[log.entry(seq, at, item)]).unwrap();
        seq
    }

    fn items(page: &Page<String>) -> Vec<&str> {
        page.entries.iter().map(|e| e.item.as_str()).collect()
    }

    #[test]
    fn counters_decode_in_both_of_spins_layouts() {
        assert_eq!(decode_counter(&7i64.to_le_bytes()), Some(7)); // SQLite
        assert_eq!(decode_counter(b"7"), Some(7)); // Redis
        assert_eq!(decode_counter(b"12345678"), Some(12_345_678)); // eight digits: text
        assert_eq!(decode_counter(b"-3"), Some(-3));
        assert_eq!(decode_counter(&0i64.to_le_bytes()), Some(0));
        for unknown in [&b""[..], b"-", b"7x", b"{\"n\":7}", &[1, 2, 3]] {
            assert_eq!(decode_counter(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn a_head_is_read_without_writing_and_an_absent_one_stays_absent() {
        let store = MemoryStore::new();
        let log = Log::new("log/test".into());
        assert_eq!(log.head(&store).unwrap(), 0);
        assert!(store.snapshot().is_empty(), "reading left no trace");
        append(&store, &log, "a", NOW);
        append(&store, &log, "b", NOW);
        store.take_calls();
        assert_eq!(log.head(&store).unwrap(), 2);
        assert_eq!(store.take_calls(), [crate::store::Call::Get]);
        // Redis's layout, as another backend would leave it.
        store.set_many(&[(log.head_key(), b"41".to_vec())]).unwrap();
        assert_eq!(log.head(&store).unwrap(), 41);
    }

    #[test]
    fn a_short_log_is_read_in_one_call_and_a_missing_one_leaves_no_trace() {
        let store = MemoryStore::new();
        let log = Log::new("log/short".into());
        assert!(log.read_all_if_any::<String>(&store, 4).unwrap().is_empty());
        assert!(store.snapshot().is_empty());
        for item in ["a", "b", "c", "d", "e", "f"] {
            append(&store, &log, item, NOW);
        }
        store.take_calls();
        let within: Vec<String> = log
            .read_all_if_any::<String>(&store, 8)
            .unwrap()
            .into_iter()
            .map(|e| e.item)
            .collect();
        assert_eq!(within, ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(store.take_calls(), [crate::store::Call::GetMany]);
        let beyond = log.read_all_if_any::<String>(&store, 4).unwrap();
        assert_eq!(beyond.len(), 6, "entries past the probe are read too");
    }

    #[test]
    fn reads_in_order_and_resumes_from_the_cursor() {
        let store = MemoryStore::new();
        let log = Log::new("log/t".into());
        for i in 1..=5 {
            append(&store, &log, &format!("e{i}"), NOW);
        }
        let page: Page<String> = log.read_after(&store, 0, 3, NOW, GRACE).unwrap();
        assert_eq!(items(&page), ["e1", "e2", "e3"]);
        assert!(page.more);
        let page: Page<String> = log
            .read_after(&store, page.next_cursor, 3, NOW, GRACE)
            .unwrap();
        assert_eq!(items(&page), ["e4", "e5"]);
        assert_eq!(page.next_cursor, 5);
        assert!(!page.more);
        let page: Page<String> = log.read_after(&store, 5, 3, NOW, GRACE).unwrap();
        assert!(page.entries.is_empty());
        assert_eq!(page.next_cursor, 5);
    }

    #[test]
    fn a_young_gap_holds_the_cursor_back_until_it_is_filled() {
        let store = MemoryStore::new();
        let log = Log::new("log/t".into());
        append(&store, &log, "e1", NOW);
        let reserved = log.reserve(&store, 1).unwrap(); // a writer still in flight
        append(&store, &log, "e3", NOW);
        let page: Page<String> = log.read_after(&store, 0, 10, NOW, GRACE).unwrap();
        assert_eq!(items(&page), ["e1"]);
        assert_eq!(page.next_cursor, 1);
        store.set_many(&[log.entry(reserved, NOW, "e2")]).unwrap();
        let page: Page<String> = log.read_after(&store, 1, 10, NOW, GRACE).unwrap();
        assert_eq!(items(&page), ["e2", "e3"]);
    }

    #[test]
    fn an_abandoned_gap_is_passed_over() {
        let store = MemoryStore::new();
        let log = Log::new("log/t".into());
        let earlier = NOW - Duration::minutes(5);
        append(&store, &log, "e1", earlier);
        log.reserve(&store, 1).unwrap(); // a writer that failed
        append(&store, &log, "e3", earlier);
        let page: Page<String> = log.read_after(&store, 0, 10, NOW, GRACE).unwrap();
        assert_eq!(items(&page), ["e1", "e3"]);
        assert_eq!(page.next_cursor, 3);
    }

    #[test]
    fn newest_returns_newest_first_and_skips_gaps() {
        let store = MemoryStore::new();
        let log = Log::new("log/t".into());
        for i in 1..=30 {
            if i == 28 {
                log.reserve(&store, 1).unwrap();
            } else {
                append(&store, &log, &format!("e{i}"), NOW);
            }
        }
        let newest: Vec<Entry<String>> = log.newest(&store, 25).unwrap();
        assert_eq!(newest.len(), 25);
        assert_eq!(newest[0].item, "e30");
        assert_eq!(newest[1].item, "e29");
        assert_eq!(newest[2].item, "e27");
        assert_eq!(newest[24].item, "e5");
        // A writer whose clock read earlier but reserved later still sorts by its time.
        let late = log.reserve(&store, 1).unwrap();
        store
            .set_many(&[log.entry(late, NOW - Duration::hours(1), "early")])
            .unwrap();
        let newest: Vec<Entry<String>> = log.newest(&store, 40).unwrap();
        assert_eq!(newest[0].item, "e30");
        assert_eq!(newest.last().unwrap().item, "early");
    }

    #[test]
    fn concurrent_appends_lose_nothing() {
        let store = Arc::new(MemoryStore::new());
        let log = Log::new("log/t".into());
        let threads: Vec<_> = (0..10)
            .map(|t| {
                let (store, log) = (store.clone(), log.clone());
                std::thread::spawn(move || {
                    for i in 0..50 {
                        append(&store, &log, &format!("{t}-{i}"), NOW);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let page: Page<String> = log.read_after(&*store, 0, 1000, NOW, GRACE).unwrap();
        assert_eq!(page.entries.len(), 500);
        let mut seen: Vec<&str> = items(&page);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 500);
        assert!(page.entries.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
    }

    #[test]
    fn reading_a_log_makes_no_write_but_the_counter_read() {
        let store = MemoryStore::new();
        let log = Log::new("log/t".into());
        append(&store, &log, "e1", NOW);
        store.take_calls();
        let _: Vec<Entry<String>> = log.newest(&store, 25).unwrap();
        assert_eq!(store.take_calls().len(), 2);
    }
}
