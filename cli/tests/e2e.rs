//! End to end: the built `cpis` binary against the app started here (the four release-built
//! components on the test host), for each way Spin may run them.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::*;

/// 3,000 generated rows: every 97th with a wrong check digit, every 331st with a bad date, and
/// every 499th for another LA (which only CP-IS can refuse, the upload not being told the LA).
fn generated(la: &str, rows: u32) -> (String, BTreeSet<u64>, BTreeSet<u64>) {
    let (mut text, mut local, mut server) = (HEADER.to_string(), BTreeSet::new(), BTreeSet::new());
    for i in 0..rows {
        let line = i as u64 + 2;
        let nhs = nhs_number(i);
        let case_ref = format!("C-{i}");
        text += &if i % 97 == 5 {
            local.insert(line);
            let wrong = format!(
                "{}{}",
                &nhs[..9],
                (nhs[9..].parse::<u32>().unwrap() + 1) % 10
            );
            row(la, &wrong, &case_ref)
        } else if i % 331 == 7 {
            local.insert(line);
            row(la, &nhs, &case_ref).replace("2026-01-10", "10/01/2026")
        } else if i % 499 == 11 {
            server.insert(line);
            row("LA9", &nhs, &case_ref)
        } else {
            row(la, &nhs, &case_ref)
        };
    }
    (text, local, server)
}

fn rejects(path: &std::path::Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn an_upload_of_thousands_of_rows_sends_the_good_ones_and_names_every_bad_one() {
    for reuse in MODES {
        let cpis = Cpis::start(reuse);
        let la = cpis.credential("LA1", "local_authority");
        let ed = cpis.credential("RR8", "care_setting");
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("plans.csv");
        let (text, local, server) = generated("LA1", 3000);
        write(&input, &text);

        let started = Instant::now();
        let run = cpis.run(&la, &["upload", input.to_str().unwrap()]);
        let elapsed = started.elapsed();
        run.assert_status(1);
        let bad = local.len() + server.len();
        assert!(
            run.stdout.contains(&format!(
                "accepted: {} (created {})",
                3000 - bad,
                3000 - bad
            )),
            "{run:#?}"
        );
        assert!(
            run.stdout.contains(&format!(
                "rejected: {bad} ({} by the checks before sending, {} by CP-IS)",
                local.len(),
                server.len()
            )),
            "{run:#?}"
        );
        eprintln!(
            "reuse={reuse}: 3000 rows uploaded in {:.2} s ({:.0} rows/s overall); cpis said: {}",
            elapsed.as_secs_f64(),
            3000.0 / elapsed.as_secs_f64(),
            run.stdout.lines().nth(1).unwrap_or_default()
        );

        let rejected = rejects(&dir.path().join("plans.rejects.csv"));
        let lines: BTreeSet<u64> = rejected.iter().map(|r| r[0].parse().unwrap()).collect();
        assert_eq!(lines, local.union(&server).copied().collect());
        for r in &rejected {
            let line: u64 = r[0].parse().unwrap();
            let expected = if server.contains(&line) {
                ("local_authority.ods_code", "forbidden", "cp-is")
            } else if r[3] == *"nhs_number" {
                ("nhs_number", "invalid_nhs_number", "cpis")
            } else {
                ("start_date", "invalid_field", "cpis")
            };
            assert_eq!((&r[3], &r[4], &r[6]), expected, "{r:?}");
            assert!(
                !r[5].is_empty() && r[1] == format!("C-{}", line - 2),
                "{r:?}"
            );
        }

        // What was accepted is on CP-IS, what was refused is not.
        let flag = |n: u32| cpis.run(&ed, &["flag", &nhs_number(n)]);
        assert!(
            flag(0).stdout.contains("on CP-IS (flag true)"),
            "{:#?}",
            flag(0)
        );
        assert!(
            flag(11).stdout.contains("not on CP-IS"),
            "row 13 was another LA's"
        );
        assert!(
            flag(7).stdout.contains("not on CP-IS"),
            "row 9 had a bad date"
        );
        cpis.app.assert_no_traps();
    }
}

/// The number of batches the state file records as answered.
fn answered(state: &std::path::Path) -> usize {
    std::fs::read_to_string(state).map_or(0, |t| t.lines().count().saturating_sub(1))
}

#[test]
fn an_interrupted_upload_resumes_without_resending_what_was_answered() {
    for reuse in MODES {
        let cpis = Cpis::start(reuse);
        let la = cpis.credential("LA1", "local_authority");
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("plans.csv");
        let rows_text: String = (0..3000)
            .map(|i| row("LA1", &nhs_number(i), &format!("C-{i}")))
            .collect();
        let text = format!("{HEADER}{rows_text}");
        let rows: usize = 3000;
        write(&input, &text);
        let state = dir.path().join("plans.csv.cpis-state");
        let (batch, batches) = (5, rows.div_ceil(5));

        // Killed (as by a crash or Ctrl-C) once a few batches are answered.
        let mut child = cpis
            .cpis(
                &la,
                &[
                    "upload",
                    input.to_str().unwrap(),
                    "--batch-size",
                    "5",
                    "--parallel",
                    "1",
                ],
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while answered(&state) < 3 {
            assert!(Instant::now() < deadline, "the upload made no progress");
            assert!(
                child.try_wait().unwrap().is_none(),
                "the upload ended before it could be interrupted"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let done_before = answered(&state);
        assert!(
            done_before < batches,
            "the upload finished before the kill: use more rows"
        );

        let run = cpis.run(
            &la,
            &[
                "upload",
                input.to_str().unwrap(),
                "--batch-size",
                "5",
                "--parallel",
                "1",
            ],
        );
        run.assert_status(0);
        let resent = rows - done_before * batch;
        assert!(
            run.stdout.contains(&format!("sent: {resent} records in {} of {batches} batches ({done_before} answered in an earlier run, not sent again)", batches - done_before)),
            "{run:#?}"
        );
        // Every row is on CP-IS once. Sent twice at most: the batch in flight at the kill, and
        // the one answered but not yet recorded in the state file.
        let applied = run
            .stdout
            .lines()
            .find(|l| l.starts_with("accepted: "))
            .unwrap()
            .to_string();
        let count = |kind: &str| {
            applied
                .split([',', '(', ')'])
                .find_map(|p| p.trim().strip_prefix(kind))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap())
        };
        assert_eq!(count("created") + count("unchanged"), rows, "{applied}");
        assert!(count("unchanged") <= 2 * batch, "{applied}");
        assert!(run.stdout.contains("rejected: 0"), "{run:#?}");
        cpis.app.assert_no_traps();
    }
}

fn seqs(path: &std::path::Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[test]
fn a_pull_interrupted_between_writing_and_acknowledging_loses_nothing() {
    for reuse in MODES {
        let cpis = Cpis::start(reuse);
        let la = cpis.credential("LA1", "local_authority");
        let dir = tempfile::tempdir().unwrap();
        // 25 cases without an NHS number: 25 missing_nhs_number alerts.
        let input = dir.path().join("cases.csv");
        write(
            &input,
            &format!(
                "{HEADER}{}",
                (0..25)
                    .map(|i| row("LA1", "", &format!("W-{i}")))
                    .collect::<String>()
            ),
        );
        cpis.run(&la, &["upload", input.to_str().unwrap()])
            .assert_status(0);

        // Without --ack nothing is acknowledged: a second pull takes the same alerts.
        let peek = dir.path().join("peek.jsonl");
        for _ in 0..2 {
            let run = cpis.run(&la, &["alerts", "pull", "--out", peek.to_str().unwrap()]);
            run.assert_status(0);
            assert!(run.stdout.contains("not acknowledged"), "{run:#?}");
        }
        assert_eq!(
            seqs(&peek),
            [(1..=25).collect::<Vec<u64>>(), (1..=25).collect()].concat()
        );

        // Crash after the first page is synced, before it is acknowledged.
        let out = dir.path().join("alerts.jsonl");
        let crashed = Run::of(
            cpis.cpis(
                &la,
                &[
                    "alerts",
                    "pull",
                    "--out",
                    out.to_str().unwrap(),
                    "--ack",
                    "--page-size",
                    "10",
                ],
            )
            .env(cpis_cli::CRASH_BEFORE_ACK_VAR, "1")
            .output()
            .unwrap(),
        );
        assert_ne!(crashed.status, Some(0), "{crashed:#?}");
        assert_eq!(seqs(&out), (1..=10).collect::<Vec<u64>>());

        // The next pull repeats the unacknowledged page and takes the rest: nothing is lost.
        let run = cpis.run(
            &la,
            &[
                "alerts",
                "pull",
                "--out",
                out.to_str().unwrap(),
                "--ack",
                "--page-size",
                "10",
            ],
        );
        run.assert_status(0);
        assert!(
            run.stdout.contains("pulled 25 alerts (seq 1 to 25)")
                && run.stdout.contains("acknowledged up to seq 25"),
            "{run:#?}"
        );
        let got = seqs(&out);
        assert_eq!(got.len(), 35);
        assert_eq!(
            got.iter().copied().collect::<BTreeSet<u64>>(),
            (1..=25).collect()
        );
        let lines: Vec<Value> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            lines.iter().all(|a| a["kind"] == "missing_nhs_number"),
            "{lines:?}"
        );

        // Acknowledged: nothing more.
        let run = cpis.run(
            &la,
            &["alerts", "pull", "--out", out.to_str().unwrap(), "--ack"],
        );
        assert!(run.stdout.starts_with("no new alerts"), "{run:#?}");
        assert_eq!(seqs(&out).len(), 35);
        cpis.app.assert_no_traps();
    }
}

#[test]
fn every_error_body_is_shown_clearly_with_its_exit_status() {
    for reuse in MODES {
        let cpis = Cpis::start(reuse);
        let la = cpis.credential("LA1", "local_authority");
        let ed = cpis.credential("RR8", "care_setting");
        let child = nhs_number(3);
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("one.jsonl");
        let record = serde_json::json!({"nhs_number": child, "case_ref": "L-1", "plan_type": CPP, "start_date": "2026-01-10",
            "local_authority": {"ods_code": "LA1", "name": "Council LA1", "office_hours_phone": "0113 222 4401", "emergency_duty_team_phone": "0113 535 0600"}});
        write(&input, &format!("{record}\n"));
        cpis.run(&la, &["upload", input.to_str().unwrap()])
            .assert_status(0);

        // The LA sees its child; a care setting the flag.
        let run = cpis.run(&la, &["child", &child]);
        run.assert_status(0);
        assert!(
            run.stdout.contains("CPP   L-1       2026-01-10"),
            "{run:#?}"
        );
        assert!(
            cpis.run(&ed, &["flag", &child])
                .stdout
                .contains("on CP-IS (flag true)")
        );
        let run = cpis.run(&la, &["--json", "flag", &child]);
        run.assert_status(3);
        assert!(
            run.stderr.contains("CP-IS answered 403 forbidden") && run.stderr.contains("hint:"),
            "{run:#?}"
        );

        // 404 with its field, a bad token, a bad NHS number caught before sending.
        let run = cpis.run(&la, &["child", &nhs_number(4)]);
        run.assert_status(3);
        assert!(
            run.stderr
                .contains("CP-IS answered 404 not_found (field nhs_number): LA1 holds no plan"),
            "{run:#?}"
        );
        let run = cpis.run("cpis_0000000000000000_nope", &["flag", &child]);
        run.assert_status(3);
        assert!(
            run.stderr
                .contains("401 unauthenticated (field authorization)")
                && run.stderr.contains("CPIS_TOKEN"),
            "{run:#?}"
        );
        let run = cpis.run(&ed, &["flag", "9434765918"]);
        run.assert_status(2);
        assert!(run.stderr.contains("check digit"), "{run:#?}");

        // The administrator registers the ED's system and its nominated responsible person; an
        // LA's credential has none.
        let register = |token: &str| {
            let id = token.split('_').nth(1).unwrap().to_string();
            let args = ["admin", "register-system", &id, "--system", "Symphony ED"];
            let person = ["--person-id", "R-1", "--person-name", "Dr Jo Bloggs"];
            let role = ["--person-role", "ED Clinical Lead"];
            cpis.run(ADMIN, &[&args[..], &person[..], &role[..]].concat())
        };
        let run = register(&ed);
        run.assert_status(0);
        assert!(
            run.stdout
                .contains("belongs to Symphony ED; responsible person Dr Jo Bloggs"),
            "{run:#?}"
        );
        let run = register(&la);
        run.assert_status(3);
        assert!(run.stderr.contains("409 not_a_care_setting"), "{run:#?}");

        // The administrator: a second credential with another name, then revocations.
        let run = cpis.run(
            ADMIN,
            &[
                "admin",
                "issue",
                "--ods-code",
                "LA1",
                "--name",
                "Elsewhere",
                "--kind",
                "local-authority",
            ],
        );
        run.assert_status(3);
        assert!(run.stderr.contains("409 organisation_mismatch"), "{run:#?}");
        let run = cpis.run(
            ADMIN,
            &[
                "--json",
                "admin",
                "issue",
                "--ods-code",
                "LA1",
                "--name",
                "Org LA1",
                "--kind",
                "local-authority",
            ],
        );
        run.assert_status(0);
        let issued: Value = serde_json::from_str(&run.stdout).unwrap();
        let (id, second) = (
            issued["credential_id"].as_str().unwrap(),
            issued["token"].as_str().unwrap(),
        );
        let run = cpis.run(ADMIN, &["admin", "revoke", id]);
        assert_eq!(
            run.stdout.trim(),
            format!("revoked credential {id}"),
            "{run:#?}"
        );
        cpis.run(second, &["child", &child]).assert_status(3);
        let run = cpis.run(ADMIN, &["admin", "revoke-organisation", "RR8"]);
        assert_eq!(
            run.stdout.trim(),
            "revoked 1 credentials of RR8",
            "{run:#?}"
        );
        assert!(
            cpis.run(&ed, &["flag", &child])
                .stderr
                .contains("401 unauthenticated")
        );
        let run = cpis.run(&la, &["admin", "revoke", "not-an-id"]);
        run.assert_status(2);

        // A failed upload keeps its state: the revoked credential sends nothing.
        let run = cpis.run(
            second,
            &[
                "upload",
                input.to_str().unwrap(),
                "--state",
                dir.path().join("s").to_str().unwrap(),
            ],
        );
        run.assert_status(3);
        assert!(
            run.stderr
                .contains("run the same command again to send the rest"),
            "{run:#?}"
        );
        cpis.app.assert_no_traps();
    }
}

#[test]
fn configuration_errors_and_an_unreachable_server_are_named() {
    let run = Run::of(
        std::process::Command::new(env!("CARGO_BIN_EXE_cpis"))
            .env_remove("CPIS_URL")
            .env_remove("CPIS_TOKEN")
            .args(["flag", "9434765919"])
            .output()
            .unwrap(),
    );
    run.assert_status(2);
    assert!(
        run.stderr.contains("set CPIS_URL or pass --url"),
        "{run:#?}"
    );
    let run = Run::of(
        std::process::Command::new(env!("CARGO_BIN_EXE_cpis"))
            .args([
                "--url",
                "http://127.0.0.1:9",
                "--token",
                "t",
                "--retries",
                "0",
                "flag",
                "9434765919",
            ])
            .output()
            .unwrap(),
    );
    run.assert_status(4);
    assert!(
        run.stderr
            .contains("could not reach CP-IS at http://127.0.0.1:9"),
        "{run:#?}"
    );
    let help = Run::of(
        std::process::Command::new(env!("CARGO_BIN_EXE_cpis"))
            .args(["upload", "--help"])
            .output()
            .unwrap(),
    );
    help.assert_status(0);
    assert!(
        help.stdout.contains("emergency_duty_team_phone") && help.stdout.contains("state file"),
        "{help:#?}"
    );
}
