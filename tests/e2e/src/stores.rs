//! Reading what the app stored, straight from the store behind each target, so that tests can
//! check what was (and was not) written on real Spin too.

use crate::support::Target;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The default store's entries under `prefix` in Spin's SQLite file (read with Debian's
/// `sqlite3`, read-only, while Spin runs).
pub fn sqlite_entries(db: &Path, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let output = Command::new("sqlite3")
        .args(["-readonly", "-json"])
        .arg(db)
        .arg("SELECT key, hex(value) AS value FROM spin_key_value WHERE store = 'default'")
        .output()
        .expect("sqlite3 runs (Debian package sqlite3; scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "sqlite3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if output.stdout.iter().all(u8::is_ascii_whitespace) {
        return BTreeMap::new(); // sqlite3 -json prints nothing for no rows
    }
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("sqlite3 -json prints JSON");
    rows.into_iter()
        .filter_map(|row| {
            let key = row["key"].as_str()?.to_string();
            let value = hex::decode(row["value"].as_str()?).expect("hex() gives hex");
            key.starts_with(prefix).then_some((key, value))
        })
        .collect()
}

/// Every entry under `prefix` in the Redis server on `port`.
pub fn redis_entries(port: u16, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("a Redis URL");
    let mut connection = client.get_connection().expect("Redis answers");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut connection)
        .expect("KEYS works");
    keys.into_iter()
        .filter(|key| key.starts_with(prefix))
        .filter_map(|key| {
            let value: Option<Vec<u8>> = redis::cmd("GET")
                .arg(&key)
                .query(&mut connection)
                .expect("GET works");
            value.map(|v| (key, v))
        })
        .collect()
}

/// A counter's stored bytes: Spin's Redis store keeps decimal text, its SQLite store (and the
/// test host) 8 little-endian bytes.
pub fn decode_counter(target: Target, value: &[u8]) -> i64 {
    match target {
        Target::SpinRedis => std::str::from_utf8(value)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or_else(|| panic!("not a Redis counter: {value:?}")),
        _ => i64::from_le_bytes(
            value
                .try_into()
                .unwrap_or_else(|_| panic!("not an 8-byte counter: {value:?}")),
        ),
    }
}
