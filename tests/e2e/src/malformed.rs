//! A few thousand generated malformed requests (bodies, headers, paths, NHS numbers) never make
//! a component trap, and are all answered with a 4xx.

use crate::support::*;
use http::Method;

/// A small deterministic generator (xorshift64*), so that a failure can be replayed.
struct Generator(u64);

impl Generator {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn text(&mut self, max: usize) -> String {
        const ALPHABET: &[&str] = &[
            "a",
            "9",
            "0",
            " ",
            "-",
            "/",
            "%",
            "%00",
            "\"",
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "\\",
            "\u{0}",
            "é",
            "\u{202e}",
            "null",
            "true",
            "1e999",
            "-1",
            "18446744073709551616",
            "..",
            "?",
            "&",
            "=",
            "#",
        ];
        (0..self.below(max + 1))
            .map(|_| self.pick(ALPHABET))
            .collect()
    }
}

/// Percent-encodes everything but unreserved characters and `/`, so any text makes a valid URI.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Valid-looking JSON with one part broken or of the wrong type.
fn mutated_body(g: &mut Generator) -> String {
    let mut value = record("LA1", Some("9434765919"), "C-1", CPP);
    let fields = [
        "nhs_number",
        "case_ref",
        "plan_type",
        "start_date",
        "end_date",
        "delete_date",
        "local_authority",
        "action",
        "extra",
    ];
    let replacements = [
        "null",
        "5",
        "-1",
        "\"\"",
        "[]",
        "{}",
        "true",
        "\"9434765918\"",
        "\"2026-02-30\"",
        "\"9999-99-99\"",
        "1e400",
        "\"\\u0000\"",
        "{\"ods_code\": 7}",
        "\"withdraw\"",
    ];
    for _ in 0..=g.below(3) {
        let field = g.pick(&fields);
        let replacement: serde_json::Value =
            serde_json::from_str(g.pick(&replacements)).unwrap_or(serde_json::Value::Null);
        value[field] = replacement;
    }
    let mut text = value.to_string();
    if g.below(4) == 0 {
        // Truncate or splice garbage in.
        let cut = g.below(text.len());
        text.truncate(cut);
        let garbage = g.text(8);
        text.push_str(&garbage);
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_malformed_requests_never_trap() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let la = cpis.la("LA1").await;
        let ed = cpis.setting("RR8").await;
        let mut g = Generator(0x5eed_c0de_0000_0001);
        let prefixes = [
            "/api/v1/plans",
            "/api/v1/plans/batch",
            "/api/v1/plans/",
            "/api/v1/cases/",
            "/api/v1/flag/",
            "/api/v1/access",
            "/api/v1/alerts",
            "/api/v1/alerts/ack",
            "/api/v1/la/children/",
            "/api/v1/admin/credentials/",
            "/api/v1/admin/organisations/",
            "/fhir/r4/CareTeam",
            "/fhir/r4/AuditEvent",
            "/fhir/r4/metadata",
        ];
        let methods = [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
        ];
        let mut statuses = std::collections::BTreeMap::new();
        let mut requests = Vec::new();
        for i in 0..2400 {
            let method = methods[g.below(methods.len())].clone();
            let mut path = g.pick(&prefixes).to_string();
            match g.below(4) {
                0 => path.push_str(&format!("{}", 1_000_000_000u64 + g.next() % 9_000_000_000)),
                1 => path.push_str(&percent_encode(&g.text(12))),
                2 => path.push_str(&format!(
                    "?after={}&limit={}",
                    percent_encode(&g.text(3)),
                    g.below(1000)
                )),
                _ => {}
            }
            let token = match g.below(5) {
                0 => None,
                1 => Some("cpis_zz_zz".to_string()),
                2 => Some(ed.clone()),
                _ => Some(la.clone()),
            };
            let body = if g.below(2) == 0 {
                mutated_body(&mut g)
            } else {
                g.text(40)
            };
            let extra = if i % 7 == 0 {
                vec![
                    ("content-type", "text/plain"),
                    ("isunscheduledaccessevent", "maybe"),
                ]
            } else {
                vec![]
            };
            requests.push((method, path, token, extra, body));
        }
        for chunk in requests.chunks(32) {
            let replies = futures::future::join_all(chunk.iter().map(
                |(method, path, token, extra, body)| {
                    cpis.send(method.clone(), path, token.as_deref(), extra, body)
                },
            ))
            .await;
            for ((method, path, _, _, body), reply) in chunk.iter().zip(replies) {
                *statuses.entry(reply.status).or_insert(0) += 1;
                assert!(
                    (200..500).contains(&reply.status),
                    "{method} {path} {body:?} → {} {}",
                    reply.status,
                    reply.body
                );
            }
        }
        cpis.assert_no_traps();
        println!("malformed requests by status ({target}): {statuses:?}");
        assert!(
            statuses.keys().any(|s| *s >= 400),
            "the generator produced only valid requests"
        );
    }
}
