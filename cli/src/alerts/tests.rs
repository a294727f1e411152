use super::*;
use std::cell::RefCell;

/// A feed of `total` alerts, paged as CP-IS pages it, remembering the acknowledgement.
struct FakeFeed {
    total: u64,
    acked: RefCell<u64>,
    fail_ack: bool,
}

impl FakeFeed {
    fn new(total: u64) -> Self {
        Self {
            total,
            acked: RefCell::new(0),
            fail_ack: false,
        }
    }
}

impl Feed for FakeFeed {
    fn page(&self, after: Option<u64>, limit: u32) -> Result<Value, CliError> {
        let from = after.unwrap_or(*self.acked.borrow());
        let to = (from + limit as u64).min(self.total);
        let alerts: Vec<Value> = (from + 1..=to)
            .map(|seq| json!({"seq": seq, "created_at": "2026-11-25T10:00:00Z", "kind": "attendance", "nhs_number": "9434765919",
                              "plans": [{"plan_type": "342191000000101", "case_ref": "L-1"}, {"plan_type": "764841000000100", "case_ref": "L-2"}],
                              "setting": {"ods_code": "RR8", "name": "Leeds ED"}, "attended_at": "2026-11-25T10:00:00Z"}))
            .collect();
        Ok(json!({"alerts": alerts, "next_cursor": to, "more": to < self.total}))
    }

    fn ack(&self, up_to: u64) -> Result<(), CliError> {
        if self.fail_ack {
            return Err(CliError::Unreachable {
                url: "u".into(),
                message: "gone".into(),
            });
        }
        *self.acked.borrow_mut() = up_to;
        Ok(())
    }
}

fn options(out: PathBuf, ack: bool) -> Options {
    Options {
        out,
        format: None,
        ack,
        after: None,
        page_size: 2,
        crash_before_ack: false,
    }
}

#[test]
fn a_pull_with_ack_takes_every_page_and_acknowledges_what_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.jsonl");
    let feed = FakeFeed::new(5);
    let report = pull(&feed, &options(out.clone(), true)).unwrap();
    assert_eq!(
        (report.alerts, report.seqs, report.acknowledged),
        (5, Some((1, 5)), Some(5))
    );
    assert_eq!(seqs_in(&out).unwrap(), [1, 2, 3, 4, 5]);
    assert_eq!(*feed.acked.borrow(), 5);
    // Nothing new: nothing written.
    let report = pull(&feed, &options(out.clone(), true)).unwrap();
    assert_eq!(
        report.summary(true),
        format!("no new alerts; {} unchanged", out.display())
    );
    assert_eq!(seqs_in(&out).unwrap().len(), 5);
}

#[test]
fn without_ack_nothing_is_acknowledged_and_the_next_pull_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.jsonl");
    let feed = FakeFeed::new(3);
    let report = pull(&feed, &options(out.clone(), false)).unwrap();
    assert!(
        report.summary(false).contains("not acknowledged"),
        "{}",
        report.summary(false)
    );
    assert_eq!(*feed.acked.borrow(), 0);
    pull(&feed, &options(out.clone(), false)).unwrap();
    assert_eq!(seqs_in(&out).unwrap(), [1, 2, 3, 1, 2, 3]);
}

#[test]
fn a_failed_acknowledgement_loses_nothing_and_the_rerun_repeats_only_unacknowledged_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.jsonl");
    let mut feed = FakeFeed::new(3);
    feed.fail_ack = true;
    assert!(pull(&feed, &options(out.clone(), true)).is_err());
    assert_eq!(seqs_in(&out).unwrap(), [1, 2]);
    feed.fail_ack = false;
    pull(&feed, &options(out.clone(), true)).unwrap();
    let seqs = seqs_in(&out).unwrap();
    assert_eq!(seqs, [1, 2, 1, 2, 3]);
    let mut unique = seqs.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique, [1, 2, 3]);
}

#[test]
fn csv_output_has_one_header_and_one_row_per_alert() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.csv");
    let feed = FakeFeed::new(3);
    pull(&feed, &options(out.clone(), true)).unwrap();
    let mut opts = options(out.clone(), true);
    opts.after = Some(1);
    pull(&feed, &opts).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text.lines().filter(|l| l.starts_with("seq,")).count(), 1);
    assert_eq!(seqs_in(&out).unwrap(), [1, 2, 3, 2, 3]);
    let row: Vec<String> = csv::Reader::from_path(&out)
        .unwrap()
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        &row[2..9],
        [
            "attendance",
            "9434765919",
            "342191000000101;764841000000100",
            "L-1;L-2",
            "RR8",
            "Leeds ED",
            "2026-11-25T10:00:00Z"
        ]
    );
    let alert: Value = serde_json::from_str(&row[11]).unwrap();
    assert_eq!(alert["seq"], 1);

    let other = dir.path().join("other.csv");
    std::fs::write(&other, "a,b\n1,2\n").unwrap();
    let err = pull(&feed, &options(other, true)).unwrap_err();
    assert!(
        err.to_string()
            .contains("not written by `cpis alerts pull`"),
        "{err}"
    );
}

#[test]
fn a_missing_case_alert_fills_the_case_columns() {
    let row = alert_csv_row(
        &json!({"seq": 4, "created_at": "t", "kind": "missing_nhs_number_resolved",
        "case": {"plan_type": "764841000000100", "case_ref": "C-9"}, "resolves": 2, "resolution": "case_withdrawn"}),
    );
    assert_eq!(
        &row[..6],
        [
            "4",
            "t",
            "missing_nhs_number_resolved",
            "",
            "764841000000100",
            "C-9"
        ]
    );
    assert_eq!(&row[9..11], ["2", "case_withdrawn"]);
}

#[test]
fn a_page_of_the_wrong_shape_is_named() {
    struct Broken;
    impl Feed for Broken {
        fn page(&self, _: Option<u64>, _: u32) -> Result<Value, CliError> {
            Ok(json!({"alerts": [{"no_seq": 1}], "next_cursor": 1}))
        }
        fn ack(&self, _: u64) -> Result<(), CliError> {
            unreachable!("nothing to acknowledge")
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let err = pull(&Broken, &options(dir.path().join("a.jsonl"), true)).unwrap_err();
    assert!(err.to_string().contains("unexpected_answer"), "{err}");
}
