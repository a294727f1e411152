//! End to end: `cpis worktray`, `cpis match-rate` and the `stage` column, against the worktray
//! and match-rate endpoints and the plan records' `stage` field that are built on another
//! branch. These tests pass once that branch is merged; before, they fail with CP-IS's
//! `not_found` (no such endpoint) and `malformed_record` (unknown field `stage`).

mod support;

use serde_json::Value;
use support::*;

#[test]
fn worktray_and_match_rate_show_an_las_cases_waiting_for_nhs_numbers() {
    for reuse in MODES {
        let cpis = Cpis::start(reuse);
        let la = cpis.credential("LA1", "local_authority");
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("plans.csv");
        let header = HEADER.replace("\n", ",stage\n");
        let mut text = header;
        for i in 0..7 {
            text += &row("LA1", &nhs_number(i), &format!("C-{i}")).replace('\n', ",\n");
        }
        text += &row("LA1", "", "W-1").replace('\n', ",icpc\n");
        text += &row("LA1", "", "W-2").replace('\n', ",s47_enquiry\n");
        text += &row("LA1", "", "W-3").replace('\n', ",\n");
        write(&input, &text);
        let run = cpis.run(&la, &["upload", input.to_str().unwrap()]);
        run.assert_status(0);

        let run = cpis.run(&la, &["worktray"]);
        run.assert_status(0);
        assert!(
            run.stdout.contains("3 cases waiting for an NHS number"),
            "{run:#?}"
        );
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("W-1") && l.contains("icpc")),
            "{run:#?}"
        );
        let run = cpis.run(&la, &["--json", "worktray", "--page-size", "1"]);
        let refs: Vec<String> = run
            .stdout
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["case_ref"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(refs.len(), 3, "{run:#?}");

        let run = cpis.run(&la, &["match-rate"]);
        run.assert_status(0);
        assert!(run.stdout.starts_with("LA1: match rate "), "{run:#?}");
        assert!(
            run.stdout.contains("shareable plans: CPP 7, LAC 0, UCPP 0"),
            "{run:#?}"
        );
        assert!(
            run.stdout.contains("waiting for an NHS number: 3"),
            "{run:#?}"
        );
        let run = cpis.run(ADMIN, &["match-rate", "--all"]);
        run.assert_status(0);
        assert!(
            run.stdout.lines().any(|l| l.starts_with("LA1 ")),
            "{run:#?}"
        );
        cpis.app.assert_no_traps();
    }
}
