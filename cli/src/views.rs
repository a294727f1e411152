//! The read-only and administrative commands: what they ask CP-IS, and how the answers are shown
//! to a person (or, with `--json`, passed through as CP-IS's JSON).

use crate::client::{Client, Idempotent};
use crate::error::CliError;
use cpis_shared::auth::CredentialId;
use cpis_shared::identifiers::OdsCode;
use cpis_shared::nhs_number::NhsNumber;
use cpis_shared::plan::PlanType;
use serde_json::{Value, json};

/// Checks an NHS number locally (the domain crate's check) before it goes into a path.
pub fn nhs_number(text: &str) -> Result<NhsNumber, CliError> {
    NhsNumber::parse(text).map_err(|e| CliError::Usage(format!("NHS number {text:?}: {e}")))
}

pub fn ods_code(text: &str) -> Result<OdsCode, CliError> {
    OdsCode::parse(text).map_err(|e| CliError::Usage(format!("ODS code {text:?}: {e}")))
}

/// CPP, LAC or UCPP for a SNOMED CT plan type code (the code itself if unknown).
pub fn plan_type_short(code: &str) -> String {
    match PlanType::from_snomed_code(code) {
        Ok(PlanType::ChildProtectionPlan) => "CPP".into(),
        Ok(PlanType::LookedAfterChild) => "LAC".into(),
        Ok(PlanType::UnbornChildProtectionPlan) => "UCPP".into(),
        Err(_) => code.into(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Left-aligned columns separated by two spaces.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

pub fn flag(client: &Client, nhs: &str) -> Result<Value, CliError> {
    client.get(&format!("/api/v1/flag/{}", nhs_number(nhs)?))
}

pub fn show_flag(body: &Value) -> String {
    let on = body["flag"].as_bool() == Some(true);
    format!(
        "{}: {}",
        text(&body["nhs_number"]),
        if on {
            "on CP-IS (flag true)"
        } else {
            "not on CP-IS (flag false)"
        }
    )
}

pub fn child(client: &Client, nhs: &str) -> Result<Value, CliError> {
    client.get(&format!("/api/v1/la/children/{}", nhs_number(nhs)?))
}

pub fn show_child(body: &Value) -> String {
    let empty = Vec::new();
    let plans = body["plans"].as_array().unwrap_or(&empty);
    let visits = body["visits"].as_array().unwrap_or(&empty);
    let plan_rows: Vec<Vec<String>> = plans
        .iter()
        .map(|p| {
            vec![
                plan_type_short(p["plan_type"].as_str().unwrap_or_default()),
                text(&p["case_ref"]),
                text(&p["start_date"]),
                text(&p["end_date"]),
                text(&p["delete_date"]),
            ]
        })
        .collect();
    let visit_rows: Vec<Vec<String>> = visits
        .iter()
        .map(|v| {
            vec![
                text(&v["accessed_at"]),
                text(&v["setting"]["ods_code"]),
                text(&v["setting"]["name"]),
                text(&v["viewer_role"]),
            ]
        })
        .collect();
    format!(
        "NHS number {}\n\nyour plans ({}):\n{}\nvisits ({}, newest first):\n{}",
        text(&body["nhs_number"]),
        plans.len(),
        table(&["plan", "case_ref", "start", "end", "delete"], &plan_rows),
        visits.len(),
        table(
            &["accessed_at", "ods_code", "setting", "viewer_role"],
            &visit_rows
        ),
    )
}

/// Every case on the LA's worktray, page after page (`GET /api/v1/la/worktray`).
pub fn worktray(client: &Client, page_size: u32) -> Result<Vec<Value>, CliError> {
    let mut cases = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let page = client.get(&format!("/api/v1/la/worktray?limit={page_size}{cursor}"))?;
        cases.extend(page["cases"].as_array().cloned().unwrap_or_default());
        let next = page["next_cursor"].as_u64();
        if page["more"].as_bool() != Some(true) || next.is_none() || next == after {
            return Ok(cases);
        }
        after = next;
    }
}

pub fn show_worktray(cases: &[Value]) -> String {
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|c| {
            vec![
                text(&c["case_ref"]),
                plan_type_short(c["plan_type"].as_str().unwrap_or_default()),
                text(&c["stage"]),
                text(&c["recorded_at"]),
                text(&c["due_date"]),
                text(&c["days_waiting"]),
                if c["overdue"].as_bool() == Some(true) {
                    "OVERDUE".into()
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    let overdue = cases
        .iter()
        .filter(|c| c["overdue"].as_bool() == Some(true))
        .count();
    format!(
        "{}{} cases waiting for an NHS number, {overdue} overdue",
        table(
            &[
                "case_ref",
                "plan",
                "stage",
                "recorded_at",
                "due_date",
                "days_waiting",
                "overdue"
            ],
            &rows
        ),
        cases.len()
    )
}

/// The LA's own figures, or with `all` (administrator) every LA's.
pub fn match_rate(client: &Client, all: bool) -> Result<Value, CliError> {
    client.get(if all {
        "/api/v1/admin/match-rate"
    } else {
        "/api/v1/la/match-rate"
    })
}

fn rate(v: &Value) -> String {
    v["match_rate"]
        .as_f64()
        .map_or("n/a (no plans yet)".into(), |r| {
            format!("{:.1}%", r * 100.0)
        })
}

fn go_live(v: &Value) -> &'static str {
    if v["meets_go_live_threshold"].as_bool() == Some(true) {
        "yes"
    } else {
        "not yet"
    }
}

pub fn show_match_rate(body: &Value) -> String {
    let plans = &body["shareable_plans"];
    format!(
        "{}: match rate {}; meets the go-live threshold: {}\nshareable plans: CPP {}, LAC {}, UCPP {}\nwaiting for an NHS number: {} ({} overdue)",
        text(&body["ods_code"]),
        rate(body),
        go_live(body),
        text(&plans["cpp"]),
        text(&plans["lac"]),
        text(&plans["ucpp"]),
        text(&body["waiting_for_nhs_number"]),
        text(&body["overdue"]),
    )
}

pub fn show_all_match_rates(body: &Value) -> String {
    let empty = Vec::new();
    let rows: Vec<Vec<String>> = body["local_authorities"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|la| {
            let plans = &la["shareable_plans"];
            vec![
                text(&la["ods_code"]),
                text(&plans["cpp"]),
                text(&plans["lac"]),
                text(&plans["ucpp"]),
                text(&la["waiting_for_nhs_number"]),
                text(&la["overdue"]),
                rate(la),
                go_live(la).into(),
            ]
        })
        .collect();
    table(
        &[
            "ods_code",
            "cpp",
            "lac",
            "ucpp",
            "waiting",
            "overdue",
            "match_rate",
            "go_live",
        ],
        &rows,
    )
}

/// `POST /api/v1/admin/credentials`. Not retried: a lost answer would leave an unknown token.
pub fn issue_credential(
    client: &Client,
    ods: &str,
    name: &str,
    kind: &str,
) -> Result<Value, CliError> {
    let body = json!({"ods_code": ods_code(ods)?, "name": name, "kind": kind});
    client.post("/api/v1/admin/credentials", &body, Idempotent::No)
}

pub fn show_issued(body: &Value) -> String {
    let org = &body["organisation"];
    format!(
        "credential_id: {}\ntoken: {}\norganisation: {} {} ({})\nThe token is shown once: give it to the organisation now (CP-IS keeps only its hash).",
        text(&body["credential_id"]),
        text(&body["token"]),
        text(&org["ods_code"]),
        text(&org["name"]),
        text(&org["kind"]),
    )
}

fn credential_id(id: &str) -> Result<CredentialId, CliError> {
    CredentialId::parse(id).ok_or_else(|| {
        CliError::Usage(format!(
            "credential id {id:?}: a credential id is 16 lower-case hex digits"
        ))
    })
}

pub fn revoke_credential(client: &Client, id: &str) -> Result<Value, CliError> {
    client.delete(&format!("/api/v1/admin/credentials/{}", credential_id(id)?))
}

/// Registers a care setting's system and its nominated responsible person (id, name, role).
pub fn register_system(
    client: &Client,
    id: &str,
    system: &str,
    [person_id, name, role]: &[String; 3],
) -> Result<Value, CliError> {
    let body = json!({"system": system,
                      "responsible_person": {"id": person_id, "name": name, "role": role}});
    client.send(
        reqwest::Method::PUT,
        &format!("/api/v1/admin/credentials/{}/system", credential_id(id)?),
        Some(&body),
        Idempotent::Yes,
    )
}

pub fn revoke_organisation(client: &Client, ods: &str) -> Result<Value, CliError> {
    client.delete(&format!("/api/v1/admin/organisations/{}", ods_code(ods)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worktray_cases_are_a_table_with_overdue_marked() {
        let cases = vec![
            json!({"case_ref": "C-1", "plan_type": "342191000000101", "stage": "icpc", "recorded_at": "2026-11-01T09:00:00Z",
                   "due_date": "2026-11-15", "days_waiting": 24, "overdue": true}),
            json!({"case_ref": "C-22", "plan_type": "764841000000100", "stage": null, "recorded_at": "2026-11-20T09:00:00Z",
                   "due_date": "2026-12-04", "days_waiting": 5, "overdue": false}),
        ];
        let shown = show_worktray(&cases);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(
            lines[0],
            "case_ref  plan  stage  recorded_at           due_date    days_waiting  overdue"
        );
        assert_eq!(
            lines[1],
            "C-1       CPP   icpc   2026-11-01T09:00:00Z  2026-11-15  24            OVERDUE"
        );
        assert_eq!(
            lines[2],
            "C-22      LAC   -      2026-11-20T09:00:00Z  2026-12-04  5"
        );
        assert_eq!(lines[3], "2 cases waiting for an NHS number, 1 overdue");
    }

    #[test]
    fn match_rates_show_the_figures_and_the_go_live_answer() {
        let la = json!({"ods_code": "LA1", "shareable_plans": {"cpp": 120, "lac": 80, "ucpp": 2},
                        "waiting_for_nhs_number": 5, "overdue": 2, "match_rate": 0.9758, "meets_go_live_threshold": true});
        assert_eq!(
            show_match_rate(&la),
            "LA1: match rate 97.6%; meets the go-live threshold: yes\nshareable plans: CPP 120, LAC 80, UCPP 2\nwaiting for an NHS number: 5 (2 overdue)"
        );
        let new = json!({"ods_code": "LA2", "shareable_plans": {"cpp": 0, "lac": 0, "ucpp": 0},
                         "waiting_for_nhs_number": 0, "overdue": 0, "match_rate": null, "meets_go_live_threshold": false});
        let all = show_all_match_rates(&json!({"local_authorities": [la, new]}));
        assert!(
            all.lines()
                .nth(1)
                .unwrap()
                .ends_with("97.6%               yes"),
            "{all}"
        );
        assert!(
            all.lines()
                .nth(2)
                .unwrap()
                .ends_with("n/a (no plans yet)  not yet"),
            "{all}"
        );
    }

    #[test]
    fn flag_child_and_credentials_read_plainly() {
        assert_eq!(
            show_flag(&json!({"nhs_number": "9434765919", "flag": true})),
            "9434765919: on CP-IS (flag true)"
        );
        assert_eq!(
            show_flag(&json!({"nhs_number": "9434765919", "flag": false})),
            "9434765919: not on CP-IS (flag false)"
        );
        let child = json!({"nhs_number": "9434765919",
            "plans": [{"plan_type": "818901000000100", "case_ref": "L-1", "start_date": "2026-01-10", "end_date": null}],
            "visits": [{"accessed_at": "2026-11-20T02:14:09Z", "setting": {"ods_code": "RAE", "name": "Bradford ED"}, "viewer_role": "ED Nurse"}]});
        let shown = show_child(&child);
        assert!(
            shown.contains("UCPP  L-1       2026-01-10  -    -"),
            "{shown}"
        );
        assert!(
            shown.contains("2026-11-20T02:14:09Z  RAE       Bradford ED  ED Nurse"),
            "{shown}"
        );
        let issued = json!({"credential_id": "3f9c0c2d8a1b4e77", "token": "cpis_x",
                            "organisation": {"ods_code": "LA1", "name": "Leeds", "kind": "local_authority"}});
        assert!(show_issued(&issued).starts_with("credential_id: 3f9c0c2d8a1b4e77\ntoken: cpis_x\norganisation: LA1 Leeds (local_authority)"));
    }

    #[test]
    fn identifiers_are_checked_before_anything_is_sent() {
        let err = nhs_number("9434765918").unwrap_err();
        assert!(
            matches!(&err, CliError::Usage(m) if m.contains("check digit")),
            "{err}"
        );
        assert!(matches!(ods_code("L/1"), Err(CliError::Usage(_))));
        assert_eq!(plan_type_short("1"), "1");
    }
}
