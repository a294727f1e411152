//! The FHIR R4 searches over HTTP, through the built `access-notify` component: the same rules as
//! the JSON API, in the national API's shape.

use crate::support::*;
use http::Method;
use std::path::PathBuf;

fn search(resource: &str, nhs: &str) -> String {
    format!("/fhir/r4/{resource}?patient:identifier=https://fhir.nhs.uk/Id/nhs-number%7C{nhs}")
}

const USER: [(&str, &str); 3] = [
    ("NHSD-End-User-Id", "555021935107"),
    ("NHSD-End-User-Name", "Dr Asha Patel"),
    ("NHSD-End-User-Role", "Emergency Department Doctor"),
];

/// LA1 holds a CPP for the `n`-th test child; RR8 is a care setting: (LA1, RR8, child).
async fn one_plan_and_a_setting(cpis: &Cpis, n: u32) -> (String, String, String) {
    let la = cpis.la("LA1").await;
    let ed = cpis.setting("RR8").await;
    let child = nhs_number(n);
    let reply = cpis
        .post(
            "/api/v1/plans",
            &la,
            &record("LA1", Some(&child), "L-1", CPP),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    (la, ed, child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_care_team_search_is_the_access_and_audit_event_search_reads_it() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let (la, ed, child) = one_plan_and_a_setting(&cpis, 70).await;

        let trace = "6ede3b9d-a81b-4c75-9d77-e1d64d85c323";
        let mut headers = USER.to_vec();
        headers.push(("TraceID", trace));
        let auth = format!("Bearer {ed}");
        headers.push(("authorization", &auth));
        let response = cpis
            .client()
            .request(Method::GET, &search("CareTeam", &child), &headers, "")
            .await
            .unwrap();
        assert_eq!(response.status_code(), 200, "{}", response.text());
        assert_eq!(
            response.header("content-type"),
            Some("application/fhir+json")
        );
        assert_eq!(response.header("traceid"), Some(trace));
        let bundle: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
        assert_eq!(
            (bundle["type"].as_str(), bundle["total"].as_u64()),
            (Some("searchset"), Some(1))
        );
        let team = &bundle["entry"][0]["resource"];
        assert_eq!(
            bundle["entry"][0]["fullUrl"],
            format!(
                "{}/fhir/r4/CareTeam/{}",
                cpis.base_url(),
                team["id"].as_str().unwrap()
            ),
            "absolute, under the base the request came to"
        );
        assert_eq!(team["category"][0]["coding"][0]["code"], CPP);
        assert_eq!(team["telecom"][1]["use"], "mobile");

        // The search was the access: the LA is notified, once.
        assert_eq!(cpis.feed(&la).await.len(), 1);
        let history = cpis
            .send(
                Method::GET,
                &search("AuditEvent", &child),
                Some(&ed),
                &USER,
                "",
            )
            .await;
        assert_eq!(history.status, 200);
        assert_eq!(history.body["total"], 1);
        assert_eq!(
            history.body["entry"][1]["resource"]["practitioner"]["display"], "Dr Asha Patel",
            "the viewer, an included PractitionerRole"
        );
        assert_eq!(
            cpis.feed(&la).await.len(),
            1,
            "reading the history notifies nobody"
        );

        // Errors are OperationOutcomes with the national codes.
        let bad = cpis
            .send(
                Method::GET,
                &search("CareTeam", "9434765918"),
                Some(&ed),
                &USER,
                "",
            )
            .await;
        assert_eq!(bad.status, 400);
        assert_eq!(bad.body["resourceType"], "OperationOutcome");
        assert_eq!(
            bad.body["issue"][0]["details"]["coding"][0]["code"],
            "INVALID_SEARCH_DATA"
        );
        let no_user = cpis
            .send(Method::GET, &search("CareTeam", &child), Some(&ed), &[], "")
            .await;
        assert_eq!(
            no_user.body["issue"][0]["details"]["coding"][0]["code"],
            "PRECONDITION_FAILED"
        );
        let la_reading = cpis
            .send(
                Method::GET,
                &search("CareTeam", &child),
                Some(&la),
                &USER,
                "",
            )
            .await;
        assert_eq!(la_reading.status, 403);
        assert_eq!(
            la_reading.body["issue"][0]["details"]["coding"][0]["code"],
            "ACCESS_DENIED"
        );
        let metadata = cpis
            .send(Method::GET, "/fhir/r4/metadata", None, &[], "")
            .await;
        assert_eq!(metadata.body["resourceType"], "CapabilityStatement");
        assert_eq!(
            cpis.feed(&la).await.len(),
            1,
            "refused searches record nothing"
        );
        cpis.assert_no_traps();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accented_user_names_in_fhir_headers_reach_the_history_unchanged() {
    let name = "Siân Ó'Brien-Llŷr";
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let (_, ed, child) = one_plan_and_a_setting(&cpis, 71).await;
        let user = [
            ("NHSD-End-User-Id", "555021935108"),
            ("NHSD-End-User-Name", name),
            ("NHSD-End-User-Role", "Nyrs Gofal Brys"),
        ];
        let care_team = cpis
            .send(
                Method::GET,
                &search("CareTeam", &child),
                Some(&ed),
                &user,
                "",
            )
            .await;
        assert_eq!(care_team.status, 200, "{target}: {}", care_team.body);
        let history = cpis
            .send(
                Method::GET,
                &search("AuditEvent", &child),
                Some(&ed),
                &USER,
                "",
            )
            .await;
        assert_eq!(history.status, 200, "{target}: {}", history.body);
        assert!(
            history.body.to_string().contains(name),
            "{target}: the viewer's name is in the history: {}",
            history.body
        );
        cpis.assert_no_traps();
    }
}

/// An NHS system built to the national guide, as a FHIR client library no one here wrote drives
/// it: `tests/fhir/consumer.py` (fhirpy) against the live app, both header sets, both AuditEvent
/// search forms and every error case, each body parsed by the independent R4 validators.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fhir_a_client_library_built_for_the_national_api_works_unchanged() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("target/fhir-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tests/fhir/run.sh (or tests/fhir/venv.sh) first, which makes the \
         venv with fhirpy and the FHIR validators",
        python.display()
    );
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let la = cpis.la("LA1").await;
        let system = cpis.setting("RR8").await;
        let bare = cpis.setting("RX1").await;
        cpis.register_system(&system, "Symphony ED", "Dr Jo Bloggs", "ED Clinical Lead")
            .await;
        let (child, unknown) = (nhs_number(71), nhs_number(72));
        let reply = cpis
            .post(
                "/api/v1/plans",
                &la,
                &record("LA1", Some(&child), "L-1", CPP),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);

        let base = format!("{}/fhir/r4", cpis.base_url());
        let args = [
            ("--base", base.as_str()),
            ("--child", &child),
            ("--unknown-child", &unknown),
            ("--system-token", &system),
            ("--system", "Symphony ED"),
            ("--responsible-person", "Dr Jo Bloggs"),
            ("--responsible-role", "ED Clinical Lead"),
            ("--bare-token", &bare),
            ("--la-token", &la),
            ("--plans", "1"),
        ];
        let mut command = std::process::Command::new(&python);
        command.arg(root.join("tests/fhir/consumer.py"));
        for (name, value) in args {
            command.args([name, value]);
        }
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("the consumer runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        assert!(
            output.status.success() && stdout.contains(" 0 failed"),
            "{target}: the consumer failed:\n{stdout}\n{stderr}"
        );
        // Its two unscheduled CareTeam searches were accesses: the LA heard of both.
        assert_eq!(cpis.feed(&la).await.len(), 2, "{target}");
        cpis.assert_no_traps();
    }
}
