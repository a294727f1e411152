//! The test host against the `kv-probe` fixture: routing, variables, key-value semantics,
//! fault injection and trap detection, in both instance modes.

mod common;

use common::{PROBE_APP, field, probe_options, start_probe, write_manifest};
use cpis_host_kit::{CasSemantics, KvOp, TestApp};
use futures::future::join_all;

const MODES: [bool; 2] = [false, true];

#[tokio::test]
async fn routing_follows_spin_precedence_and_sets_spin_headers() {
    for reuse in MODES {
        let (app, _m) = start_probe(reuse).await;
        let who = |path: &'static str| {
            let app = &app;
            async move {
                let r = app.client.get(path).await.unwrap();
                assert_eq!(r.status_code(), 200, "{path}: {}", r.text());
                field(&r.text(), "who")
            }
        };
        // Exact beats wildcard; the longest wildcard prefix wins.
        assert_eq!(who("/a/exact").await, "b");
        assert_eq!(who("/a/exact/more").await, "a");
        assert_eq!(who("/a/b/c").await, "b");
        assert_eq!(who("/a/bc").await, "a");
        assert_eq!(who("/a").await, "a");
        assert_eq!(who("/b/anything").await, "b");

        let r = app.client.get("/a/some/path?x=1&y=2").await.unwrap();
        let d = r.text();
        assert_eq!(field(&d, "spin-path-info"), "/some/path");
        assert_eq!(
            field(&d, "spin-full-url"),
            format!("{}/a/some/path?x=1&y=2", app.base_url)
        );
        assert_eq!(field(&d, "spin-matched-route"), "/a/...");
        assert_eq!(field(&d, "spin-raw-component-route"), "/a/...");
        assert_eq!(field(&d, "spin-component-route"), "/a");
        assert_eq!(field(&d, "spin-base-path"), "/");
        assert!(field(&d, "spin-client-addr").starts_with("127.0.0.1:"));
        assert_eq!(
            field(&d, "uri"),
            format!("{}/a/some/path?x=1&y=2", app.base_url)
        );

        let d = app.client.get("/a/exact").await.unwrap().text();
        assert_eq!(field(&d, "spin-path-info"), "");
        assert_eq!(field(&d, "spin-matched-route"), "/a/exact");
        app.assert_no_traps();
    }
}

#[tokio::test]
async fn unrouted_paths_get_404_from_the_host() {
    let (app, _m) = start_probe(false).await;
    for path in ["/", "/nowhere", "/ab", "/denie"] {
        let r = app.client.get(path).await.unwrap();
        assert_eq!(r.status_code(), 404, "{path}");
        assert_eq!(
            r.text(),
            "",
            "{path}: the 404 comes from the host, not a component"
        );
    }
    let health = app.client.get("/.well-known/spin/health").await.unwrap();
    assert_eq!((health.status_code(), health.text().as_str()), (200, "OK"));
    app.assert_no_traps();
}

#[tokio::test]
async fn variables_resolve_defaults_overrides_and_templates() {
    let manifest = write_manifest(PROBE_APP);
    let app = TestApp::start(probe_options(&manifest, false).variable("days", "7"))
        .await
        .unwrap();
    let var = |path: &'static str| {
        let app = &app;
        async move {
            let r = app.client.get(path).await.unwrap();
            (r.status_code(), r.text())
        }
    };
    assert_eq!(
        var("/a/var?name=greeting").await,
        (200, "hello, s3cret".to_string())
    );
    assert_eq!(var("/a/var?name=days").await, (200, "7".to_string()));
    assert_eq!(
        var("/a/var?name=env_only").await,
        (200, "from-default".to_string())
    );
    // Only the component's own `[component.x.variables]` are visible; anything else,
    // including an invalid key, reads as `none` (Spin's wasi:config behaviour).
    assert_eq!(var("/b/var?name=greeting").await, (404, "none".to_string()));
    assert_eq!(
        var("/a/var?name=secret_token").await,
        (404, "none".to_string())
    );
    assert_eq!(
        var("/a/var?name=Not-Valid").await,
        (404, "none".to_string())
    );
    assert_eq!(
        var("/a/var-all").await,
        (
            200,
            "days=7\nenv_only=from-default\ngreeting=hello, s3cret\nwho=a".to_string()
        )
    );
    app.assert_no_traps();
}

#[tokio::test]
async fn required_variable_without_value_fails_startup() {
    let manifest = write_manifest(PROBE_APP);
    let mut opts = probe_options(&manifest, false);
    opts.variables.clear();
    let err = TestApp::start(opts).await.err().expect("startup must fail");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("secret_token") && msg.contains("SPIN_VARIABLE_SECRET_TOKEN"),
        "{msg}"
    );
}

#[tokio::test]
async fn startup_rejects_undefined_store_labels_and_missing_files() {
    let manifest = write_manifest(&PROBE_APP.replace(
        "[component.probe-b]\nsource = \"WASM\"\nkey_value_stores = [\"default\"]",
        "[component.probe-b]\nsource = \"WASM\"\nkey_value_stores = [\"default\", \"archive\"]",
    ));
    let err = TestApp::start(probe_options(&manifest, false))
        .await
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("unknown key_value_stores label \"archive\""),
        "{err:#}"
    );

    let manifest =
        write_manifest(&PROBE_APP.replacen("source = \"WASM\"", "source = \"nope.wasm\"", 1));
    let err = TestApp::start(probe_options(&manifest, false))
        .await
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("nope.wasm"), "{err:#}");
}

#[tokio::test]
async fn key_value_basics_and_store_shared_across_components() {
    for reuse in MODES {
        let (app, _m) = start_probe(reuse).await;
        let c = &app.client;
        assert_eq!(c.get("/a/kv/get?key=k").await.unwrap().status_code(), 404);
        assert_eq!(c.get("/a/kv/exists?key=k").await.unwrap().text(), "false");
        assert_eq!(c.put("/a/kv/set?key=k", "v1").await.unwrap().text(), "ok");
        // Written by probe-a, read by probe-b and by the test.
        assert_eq!(c.get("/b/kv/get?key=k").await.unwrap().text(), "v1");
        assert_eq!(c.get("/b/kv/exists?key=k").await.unwrap().text(), "true");
        assert_eq!(app.store.get_string("k").as_deref(), Some("v1"));
        // Seeded by the test, read by a component.
        app.store.set("seeded", "s");
        assert_eq!(c.get("/a/kv/get?key=seeded").await.unwrap().text(), "s");
        assert_eq!(c.get("/b/kv/list-keys").await.unwrap().text(), "k\nseeded");
        assert_eq!(c.delete("/b/kv/delete?key=k").await.unwrap().text(), "ok");
        assert_eq!(app.store.get("k"), None);
        assert_eq!(c.get("/a/kv/exists?key=k").await.unwrap().text(), "false");
        app.assert_no_traps();
    }
}

#[tokio::test]
async fn opening_a_store_not_granted_is_access_denied() {
    let manifest = write_manifest(&PROBE_APP.replace(
        "[component.probe-b]\nsource = \"WASM\"\nkey_value_stores = [\"default\"]",
        "[component.probe-b]\nsource = \"WASM\"\nkey_value_stores = [\"default\", \"archive\"]",
    ));
    let mut opts = probe_options(&manifest, false);
    opts.extra_stores = vec!["archive".to_string()];
    let app = TestApp::start(opts).await.unwrap();
    let open = |path: &'static str| {
        let app = &app;
        async move { app.client.get(path).await.unwrap().text() }
    };
    assert_eq!(open("/a/kv/open?store=default").await, "ok");
    assert_eq!(open("/b/kv/open?store=archive").await, "ok");
    // Defined in the app but not granted to probe-a; not defined at all; no grants.
    assert_eq!(open("/a/kv/open?store=archive").await, "access-denied");
    assert_eq!(open("/a/kv/open?store=nonexistent").await, "access-denied");
    assert_eq!(open("/denied/kv/open?store=default").await, "access-denied");
    let r = app.client.get("/denied/kv/get?key=k").await.unwrap();
    assert_eq!(
        (r.status_code(), r.text().as_str()),
        (503, "kv-error: access-denied")
    );

    // Labels are separate stores.
    app.client
        .put("/b/kv/set?key=k&store=archive", "in-archive")
        .await
        .unwrap();
    assert_eq!(
        app.store.get_in("archive", "k"),
        Some(b"in-archive".to_vec())
    );
    assert_eq!(app.store.get("k"), None);
    app.assert_no_traps();
}

#[tokio::test]
async fn increment_is_atomic_under_200_concurrent_requests() {
    for reuse in MODES {
        let (app, _m) = start_probe(reuse).await;
        let requests = (0..200).map(|i| {
            let path = if i % 2 == 0 {
                "/a/kv/incr?key=hits"
            } else {
                "/b/kv/incr?key=hits"
            };
            app.client.post(path, "")
        });
        let mut seen: Vec<i64> = join_all(requests)
            .await
            .into_iter()
            .map(|r| {
                let r = r.unwrap();
                assert_eq!(r.status_code(), 200, "{}", r.text());
                r.text().parse().unwrap()
            })
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            (1..=200).collect::<Vec<i64>>(),
            "every increment saw a distinct value"
        );
        assert_eq!(app.store.counter("hits"), Some(200));
        assert_eq!(
            app.store.get("hits"),
            Some(200i64.to_le_bytes().to_vec()),
            "8 LE bytes"
        );
        let read = app
            .client
            .post("/a/kv/incr?key=hits&delta=0", "")
            .await
            .unwrap();
        assert_eq!(read.text(), "200");
        let down = app
            .client
            .post("/a/kv/incr?key=hits&delta=-250", "")
            .await
            .unwrap();
        assert_eq!(down.text(), "-50");
        app.assert_no_traps();
    }
}

#[tokio::test]
async fn compare_and_swap_succeeds_and_detects_conflicts() {
    for reuse in MODES {
        let (app, _m) = start_probe(reuse).await;
        let c = &app.client;
        app.store.set("doc", "v0");
        let r = c.post("/a/kv/cas?key=doc&value=v1", "").await.unwrap();
        assert_eq!((r.status_code(), r.text().as_str()), (200, "ok"));
        assert_eq!(app.store.get_string("doc").as_deref(), Some("v1"));

        // Another write between `current()` and `swap`: cas-failed, with a fresh CAS
        // handle that sees the new value; the swap wrote nothing.
        let r = c
            .post("/a/kv/cas?key=doc&value=v2&interfere=other", "")
            .await
            .unwrap();
        assert_eq!(
            (r.status_code(), r.text().as_str()),
            (409, "cas-failed current=other")
        );
        assert_eq!(app.store.get_string("doc").as_deref(), Some("other"));

        // Optimistic increments from many requests: none lost.
        app.store.set("n", "0");
        let results = join_all((0..40).map(|_| c.post("/b/kv/cas-incr?key=n", ""))).await;
        for r in results {
            let r = r.unwrap();
            assert_eq!(r.status_code(), 200, "{}", r.text());
        }
        assert_eq!(app.store.get_string("n").as_deref(), Some("40"));
        app.assert_no_traps();
    }
}

#[tokio::test]
async fn compare_and_swap_quirks_follow_the_chosen_semantics() {
    // Spin's SQLite store: no `current()`, or no value when it was read, means the swap
    // writes unconditionally.
    let (app, _m) = start_probe(false).await;
    let c = &app.client;
    let r = c
        .post("/a/kv/cas?key=fresh&value=mine&interfere=theirs", "")
        .await
        .unwrap();
    assert_eq!(
        r.text(),
        "ok",
        "absent at current(): unconditional, as on Spin"
    );
    app.store.set("doc", "v0");
    let r = c
        .post(
            "/a/kv/cas?key=doc&value=mine&interfere=theirs&skip-current=1",
            "",
        )
        .await
        .unwrap();
    assert_eq!(r.text(), "ok", "no current(): unconditional, as on Spin");
    assert_eq!(app.store.get_string("doc").as_deref(), Some("mine"));

    // Strict: the snapshot is taken by `cas::new`, and presence counts.
    let manifest = write_manifest(PROBE_APP);
    let mut opts = probe_options(&manifest, false);
    opts.cas = CasSemantics::Strict;
    let app = TestApp::start(opts).await.unwrap();
    let c = &app.client;
    let r = c
        .post("/a/kv/cas?key=fresh&value=mine&interfere=theirs", "")
        .await
        .unwrap();
    assert_eq!(r.text(), "cas-failed current=theirs");
    app.store.set("doc", "v0");
    let r = c
        .post(
            "/a/kv/cas?key=doc&value=mine&interfere=theirs&skip-current=1",
            "",
        )
        .await
        .unwrap();
    assert_eq!(r.text(), "cas-failed current=theirs");
    let r = c.post("/a/kv/cas?key=doc&value=mine", "").await.unwrap();
    assert_eq!(r.text(), "ok");
    app.assert_no_traps();
}

#[tokio::test]
async fn batch_operations_are_all_or_nothing() {
    let (app, _m) = start_probe(true).await;
    let c = &app.client;
    let r = c.post("/a/kv/set-many", "x=1\ny=2\nz=3").await.unwrap();
    assert_eq!(r.text(), "ok");
    assert_eq!(app.store.keys(), vec!["x", "y", "z"]);
    // Missing keys are left out of the answer, as on Spin's SQLite store.
    let r = c.get("/b/kv/get-many?keys=x,missing,z,x").await.unwrap();
    assert_eq!(r.text(), "x=1\nz=3");

    app.store.fail_nth_call_of(KvOp::SetMany, 1);
    let r = c.post("/a/kv/set-many", "x=changed\nw=4").await.unwrap();
    assert_eq!(r.status_code(), 503);
    assert!(
        r.text()
            .starts_with("kv-error: other: injected fault: SetMany"),
        "{}",
        r.text()
    );
    assert_eq!(
        app.store.get_string("x").as_deref(),
        Some("1"),
        "a failed batch writes nothing"
    );
    assert_eq!(app.store.get("w"), None);

    app.store.fail_nth_call_of(KvOp::DeleteMany, 1);
    assert_eq!(
        c.post("/a/kv/delete-many?keys=x,y", "")
            .await
            .unwrap()
            .status_code(),
        503
    );
    assert_eq!(app.store.keys(), vec!["x", "y", "z"]);
    assert_eq!(
        c.post("/a/kv/delete-many?keys=x,y,nope", "")
            .await
            .unwrap()
            .text(),
        "ok"
    );
    assert_eq!(app.store.keys(), vec!["z"]);
    app.assert_no_traps();
}

#[tokio::test]
async fn injected_faults_reach_the_component_as_other_errors() {
    for reuse in MODES {
        let (app, _m) = start_probe(reuse).await;
        let c = &app.client;
        app.store.set("k", "v");
        // `/kv/get` makes two calls: open, then get. Fail the second from now.
        let before = app.store.call_count();
        app.store.fail_nth_call(2);
        let r = c.get("/a/kv/get?key=k").await.unwrap();
        assert_eq!(r.status_code(), 503);
        assert!(
            r.text()
                .starts_with("kv-error: other: injected fault: Get call #"),
            "{}",
            r.text()
        );
        assert_eq!(app.store.call_count(), before + 2);
        assert_eq!(
            c.get("/a/kv/get?key=k").await.unwrap().text(),
            "v",
            "only one call fails"
        );

        // Fail the open.
        app.store.fail_next_call();
        let r = c.get("/b/kv/get?key=k").await.unwrap();
        assert!(
            r.text()
                .starts_with("kv-error: other: injected fault: Open"),
            "{}",
            r.text()
        );

        // Everything fails until cleared.
        app.store.fail_all_calls();
        for path in [
            "/a/kv/get?key=k",
            "/b/kv/incr?key=n",
            "/a/kv/cas?key=k&value=x",
        ] {
            let r = c.post(path, "").await.unwrap();
            assert_eq!(r.status_code(), 503, "{path}");
            assert!(
                r.text().starts_with("kv-error: other: injected fault"),
                "{}",
                r.text()
            );
        }
        app.store.clear_faults();
        assert_eq!(c.get("/a/kv/get?key=k").await.unwrap().text(), "v");
        assert_eq!(
            app.store.get_string("k").as_deref(),
            Some("v"),
            "failed calls wrote nothing"
        );
        // A failed swap is a store-error, not a cas-failed.
        app.store.fail_nth_call_of(KvOp::Swap, 1);
        let r = c.post("/a/kv/cas?key=k&value=x", "").await.unwrap();
        assert!(
            r.text()
                .starts_with("kv-error: other: injected fault: Swap"),
            "{}",
            r.text()
        );
        app.assert_no_traps();
    }
}

#[tokio::test]
async fn a_trap_is_a_500_and_is_recorded() {
    for reuse in MODES {
        let (app, _m) = start_probe(reuse).await;
        assert_eq!(
            app.client
                .get("/a/kv/get?key=x")
                .await
                .unwrap()
                .status_code(),
            404
        );
        app.assert_no_traps();

        let r = app.client.get("/a/panic").await.unwrap();
        assert_eq!(r.status_code(), 500);
        let traps = app.traps();
        assert_eq!(traps.len(), 1, "one trap, recorded once: {traps:#?}");
        assert!(
            traps[0].contains("probe-a") && traps[0].contains("GET /a/panic"),
            "{traps:#?}"
        );
        assert!(
            traps[0].contains("unreachable"),
            "the trap's cause: {traps:#?}"
        );
        assert!(
            app.guest_output().contains("[probe-a stderr] ")
                && app.guest_output().contains("kv-probe was asked to panic"),
            "{}",
            app.guest_output()
        );

        // The app keeps serving (a new instance replaces the one that trapped).
        assert_eq!(
            app.client.get("/a/kv/exists?key=x").await.unwrap().text(),
            "false"
        );
        app.clear_traps();
        app.assert_no_traps();
    }
}

#[tokio::test]
async fn increment_of_a_non_counter_fails_the_request_like_spin() {
    let (app, _m) = start_probe(false).await;
    app.store.set("text", "12");
    let r = app.client.post("/a/kv/incr?key=text", "").await.unwrap();
    assert_eq!(r.status_code(), 500);
    assert!(
        app.traps()
            .iter()
            .any(|t| t.contains("not an 8-byte counter")),
        "{:#?}",
        app.traps()
    );
    assert_eq!(app.store.get_string("text").as_deref(), Some("12"));
}

#[tokio::test]
async fn fresh_mode_uses_a_new_instance_and_reuse_mode_reuses() {
    let (fresh, _m) = start_probe(false).await;
    for _ in 0..3 {
        assert_eq!(fresh.client.get("/a/served").await.unwrap().text(), "1");
    }
    let (reused, _m2) = start_probe(true).await;
    let counts: Vec<u64> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(
                reused
                    .client
                    .get("/a/served")
                    .await
                    .unwrap()
                    .text()
                    .parse()
                    .unwrap(),
            );
        }
        v
    };
    assert_eq!(
        counts,
        vec![1, 2, 3],
        "sequential requests share one instance"
    );
    // Concurrent requests may share an instance as well.
    let results = join_all((0..20).map(|_| reused.client.get("/b/served"))).await;
    let max = results
        .into_iter()
        .map(|r| r.unwrap().text().parse::<u64>().unwrap())
        .max()
        .unwrap();
    assert!(
        max > 1,
        "some instance of probe-b served more than one request"
    );
    fresh.assert_no_traps();
    reused.assert_no_traps();
}
