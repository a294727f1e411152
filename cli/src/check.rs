//! Checking a record before it is sent, with the domain crate's own checks
//! ([`cpis_shared::submit::RecordInput::validate`]): a row the server would reject is reported
//! with the same field, code and message, and never sent.

use cpis_shared::identifiers::OdsCode;
use cpis_shared::submit::RecordInput;
use serde_json::Value;

/// Why a row is rejected: the field at fault (empty for the whole row), a stable code and a
/// sentence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Problem {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// Checks one record as CP-IS would for the LA `la` (or, when the LA is not given, for the LA
/// the record names: CP-IS then checks that it is the credential's own).
pub fn check_record(record: &Value, la: Option<&OdsCode>) -> Result<(), Problem> {
    if !record.is_object() {
        return Err(Problem::new(
            "",
            "malformed_record",
            "the record is not a JSON object",
        ));
    }
    let input: RecordInput = serde_json::from_value(record.clone())
        .map_err(|e| Problem::new("", "malformed_record", e.to_string()))?;
    let named = input
        .local_authority
        .as_ref()
        .and_then(|la| la.ods_code.as_deref())
        .and_then(|code| OdsCode::parse(code).ok());
    // Without an LA of either kind the record fails before the LA is compared.
    let fallback = OdsCode::parse("LA0").expect("a valid ODS code");
    let caller = la.or(named.as_ref()).unwrap_or(&fallback);
    // Today as CP-IS reckons it (UTC): a waiting case's due date must be within a year of it.
    let today = time::OffsetDateTime::now_utc().date();
    input
        .validate(caller, today)
        .map(|_| ())
        .map_err(|e| Problem {
            field: e.field.unwrap_or_default(),
            code: e.code.to_string(),
            message: e.message,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record() -> Value {
        json!({"nhs_number": "943 476 5919", "case_ref": "C-1", "plan_type": "342191000000101",
               "start_date": "2026-01-10",
               "local_authority": {"ods_code": "LA1", "name": "Leeds", "office_hours_phone": "0113 222 4401",
                                   "emergency_duty_team_phone": "0113 535 0600"}})
    }

    fn check_with(change: impl FnOnce(&mut Value), la: Option<&str>) -> Result<(), Problem> {
        let mut r = record();
        change(&mut r);
        check_record(&r, la.map(|c| OdsCode::parse(c).unwrap()).as_ref())
    }

    fn check(change: impl FnOnce(&mut Value)) -> Result<(), Problem> {
        check_with(change, None)
    }

    #[test]
    fn a_good_record_passes_with_or_without_a_stage() {
        assert_eq!(check(|_| {}), Ok(()));
        assert_eq!(check(|r| r["stage"] = json!("icpc")), Ok(()));
        assert_eq!(check(|r| r["nhs_number"] = Value::Null), Ok(()));
        assert_eq!(check_with(|_| {}, Some("LA1")), Ok(()));
    }

    #[test]
    fn the_domain_checks_name_the_field_and_code() {
        type Case = (fn(&mut Value), &'static str, &'static str);
        let cases: [Case; 6] = [
            (
                |r| r["nhs_number"] = json!("9434765918"),
                "nhs_number",
                "invalid_nhs_number",
            ),
            (
                |r| r["plan_type"] = json!("12345"),
                "plan_type",
                "invalid_field",
            ),
            (
                |r| r["start_date"] = json!("10/01/2026"),
                "start_date",
                "invalid_field",
            ),
            (
                |r| r["end_date"] = json!("2025-01-01"),
                "end_date",
                "invalid_field",
            ),
            (
                |r| r["local_authority"]["office_hours_phone"] = json!("call us"),
                "local_authority.office_hours_phone",
                "invalid_field",
            ),
            (|r| r["stage"] = json!("court"), "stage", "invalid_field"),
        ];
        for (change, field, code) in cases {
            let problem = check(change).unwrap_err();
            assert_eq!(
                (problem.field.as_str(), problem.code.as_str()),
                (field, code),
                "{problem:?}"
            );
            assert!(!problem.message.is_empty());
        }
        let missing = check(|r| {
            r.as_object_mut().unwrap().remove("case_ref");
        })
        .unwrap_err();
        assert_eq!(
            (missing.field.as_str(), missing.message.as_str()),
            ("case_ref", "case_ref is required")
        );
        let unknown = check(|r| r["colour"] = json!("red")).unwrap_err();
        assert_eq!(unknown.code, "malformed_record");
        assert!(unknown.message.contains("colour"), "{unknown:?}");
    }

    #[test]
    fn another_las_record_is_forbidden_when_the_la_is_given() {
        let problem = check_with(|_| {}, Some("LA2")).unwrap_err();
        assert_eq!(
            (problem.field.as_str(), problem.code.as_str()),
            ("local_authority.ods_code", "forbidden")
        );
    }

    #[test]
    fn withdrawals_need_only_what_names_the_plan() {
        assert_eq!(
            check_record(
                &json!({"action": "withdraw", "nhs_number": "9434765919", "plan_type": "342191000000101"}),
                None
            ),
            Ok(())
        );
        assert_eq!(
            check_record(&json!({"action": "withdraw", "case_ref": "C-9"}), None),
            Ok(())
        );
        assert_eq!(
            check_record(&json!({"action": "shred"}), None)
                .unwrap_err()
                .field,
            "action"
        );
    }
}
