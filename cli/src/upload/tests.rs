use super::*;
use crate::error::exit;
use std::sync::Mutex;

const HEADER: &str = "nhs_number,case_ref,plan_type,start_date,la_ods_code,la_name,office_hours_phone,emergency_duty_team_phone\n";

fn row(case_ref: &str, nhs: &str) -> String {
    format!("{nhs},{case_ref},342191000000101,2026-01-10,LA1,Leeds,0113 222 4401,0113 535 0600\n")
}

/// A CP-IS stand-in: rejects records whose case_ref starts with `SRV-BAD`, and answers its
/// `fail_on`-th call (from 1) with a 401.
#[derive(Default)]
struct FakeCpis {
    sent: Mutex<Vec<Vec<String>>>,
    fail_on: Option<usize>,
}

impl BatchSender for FakeCpis {
    fn send_batch(&self, records: Vec<Value>) -> Result<Value, CliError> {
        let mut sent = self.sent.lock().unwrap();
        if self.fail_on == Some(sent.len() + 1) {
            sent.push(vec![]);
            return Err(CliError::Api(ApiFailure {
                status: 401,
                code: "unauthenticated".into(),
                field: Some("authorization".into()),
                message: "revoked".into(),
            }));
        }
        sent.push(
            records
                .iter()
                .map(|r| r["case_ref"].as_str().unwrap().to_string())
                .collect(),
        );
        let results: Vec<Value> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                if r["case_ref"].as_str().unwrap().starts_with("SRV-BAD") {
                    json!({"outcome": "rejected", "index": i, "error": {"code": "forbidden",
                           "field": format!("records[{i}].case_ref"), "message": "no"}})
                } else {
                    json!({"outcome": "accepted", "index": i, "applied": "created"})
                }
            })
            .collect();
        Ok(json!({ "results": results }))
    }
}

fn options(dir: &Path, text: &str, batch_size: usize) -> Options {
    let input = dir.join("plans.csv");
    std::fs::write(&input, text).unwrap();
    Options {
        input,
        format: None,
        state: None,
        rejects: None,
        batch_size,
        parallel: 1,
        la: None,
        progress: false,
    }
}

fn rejects(options: &Options) -> Vec<Vec<String>> {
    csv::Reader::from_path(options.rejects_path())
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect()
}

#[test]
fn bad_rows_are_never_sent_and_every_rejection_is_in_the_rejects_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = HEADER.to_string();
    text += &row("C-1", "9434765919");
    text += &row("C-2", "9434765918"); // check digit
    text += &row("SRV-BAD-1", "9434765919");
    text += "9434765919,C-4,1,2026-01-10,LA1,Leeds,0113 222 4401,0113 535 0600\n"; // plan type
    text += "too,short\n";
    text += &row("C-6", "");
    let options = options(dir.path(), &text, 2);
    let cpis = FakeCpis::default();
    let report = upload(&cpis, &options).unwrap();
    assert_eq!(
        *cpis.sent.lock().unwrap(),
        [vec!["C-1", "SRV-BAD-1"], vec!["C-6"]]
    );
    assert_eq!(
        (
            report.rows,
            report.accepted,
            report.rejected_locally,
            report.rejected_by_cpis
        ),
        (6, 2, 3, 1)
    );
    assert_eq!(report.applied, BTreeMap::from([("created".to_string(), 2)]));
    let rows = rejects(&options);
    let brief: Vec<[&str; 5]> = rows
        .iter()
        .map(|r| [&*r[0], &*r[1], &*r[3], &*r[4], &*r[6]])
        .collect();
    assert_eq!(
        brief,
        [
            ["3", "C-2", "nhs_number", "invalid_nhs_number", "cpis"],
            ["4", "SRV-BAD-1", "case_ref", "forbidden", "cp-is"],
            ["5", "C-4", "plan_type", "invalid_field", "cpis"],
            ["6", "", "", "malformed_row", "cpis"],
        ]
    );
    assert!(rows[0][5].contains("check digit"), "{:?}", rows[0]);
    assert!(
        report
            .summary()
            .contains("rejected: 4 (3 by the checks before sending, 1 by CP-IS)"),
        "{}",
        report.summary()
    );
    assert_eq!(options.rejects_path(), dir.path().join("plans.rejects.csv"));
    assert_eq!(
        options.state_path(),
        dir.path().join("plans.csv.cpis-state")
    );
    let _ = exit::REJECTED;
}

#[test]
fn an_interrupted_upload_resumes_without_resending_answered_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = HEADER.to_string();
    for i in 0..10 {
        text += &row(&format!("C-{i}"), "");
    }
    text += &row("SRV-BAD-10", "");
    let options = options(dir.path(), &text, 3);
    let failing = FakeCpis {
        fail_on: Some(3),
        ..Default::default()
    };
    let err = upload(&failing, &options).unwrap_err();
    assert!(matches!(&err, CliError::Api(f) if f.status == 401), "{err}");
    assert_eq!(failing.sent.lock().unwrap().len(), 3);

    let cpis = FakeCpis::default();
    let report = upload(&cpis, &options).unwrap();
    // Batches 0 and 1 were answered: only 2 and 3 go.
    assert_eq!(
        *cpis.sent.lock().unwrap(),
        [vec!["C-6", "C-7", "C-8"], vec!["C-9", "SRV-BAD-10"]]
    );
    assert_eq!(
        (
            report.batches,
            report.batches_skipped,
            report.batches_sent,
            report.records_sent
        ),
        (4, 2, 2, 5)
    );
    assert_eq!((report.accepted, report.rejected()), (10, 1));
    assert_eq!(report.opened, Opened::Resumed);
    assert_eq!(rejects(&options).len(), 1);

    // Finished: a third run sends nothing and reports the same.
    let idle = FakeCpis::default();
    let again = upload(&idle, &options).unwrap();
    assert!(idle.sent.lock().unwrap().is_empty());
    assert_eq!(
        (again.accepted, again.rejected(), again.batches_skipped),
        (10, 1, 4)
    );

    // A changed file starts afresh once the old upload is finished.
    let changed = Options { ..options.clone() };
    std::fs::write(&changed.input, format!("{text}{}", row("C-11", ""))).unwrap();
    let fresh = FakeCpis::default();
    let report = upload(&fresh, &changed).unwrap();
    assert_eq!((report.opened, report.batches_sent), (Opened::Replaced, 4));
}

#[test]
fn several_batches_in_flight_all_get_answered_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = HEADER.to_string();
    for i in 0..50 {
        text += &row(&format!("C-{i}"), "");
    }
    let mut options = options(dir.path(), &text, 4);
    options.parallel = 4;
    let cpis = FakeCpis::default();
    let report = upload(&cpis, &options).unwrap();
    let mut sent: Vec<String> = cpis.sent.lock().unwrap().concat();
    sent.sort();
    sent.dedup();
    assert_eq!(
        (sent.len(), report.accepted, report.batches_sent),
        (50, 50, 13)
    );
    let (journal, _) = Journal::open(
        &options.state_path(),
        Header::new(hex::encode(Sha256::digest(text.as_bytes())), 4, 13),
    )
    .unwrap();
    assert_eq!(journal.done().len(), 13);
}

#[test]
fn a_batch_size_over_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let options = options(dir.path(), HEADER, 501);
    assert!(
        matches!(upload(&FakeCpis::default(), &options), Err(CliError::Usage(m)) if m.contains("--batch-size"))
    );
}

#[test]
fn answers_of_the_wrong_shape_stop_the_upload() {
    let lines = [4, 5];
    let err = batch_done(
        0,
        &lines,
        &json!({"results": [{"outcome": "accepted", "index": 0}]}),
    )
    .unwrap_err();
    assert!(err.to_string().contains("result count"), "{err}");
    let err = batch_done(0, &lines, &json!({"results": [{"outcome": "accepted", "index": 0}, {"outcome": "accepted", "index": 7}]})).unwrap_err();
    assert!(err.to_string().contains("valid index"), "{err}");
    let done = batch_done(0, &lines, &json!({"results": [{"outcome": "accepted", "index": 1, "applied": "unchanged"},
        {"outcome": "rejected", "index": 0, "error": {"code": "invalid_field", "field": "records[0].local_authority.name", "message": "m"}}]})).unwrap();
    assert_eq!(done.rejects[0].line, 4);
    assert_eq!(done.rejects[0].problem.field, "local_authority.name");
    assert_eq!(record_field("records[12]"), "");
    assert_eq!(record_field("plan_type"), "plan_type");
}
