//! Request bodies are read by their HTTP framing (`api::body_to_read`): up to `Content-Length`,
//! chunked to their end, none for methods that take none; a declared length over the limit is
//! refused before the body is read.

use crate::support::*;

fn request(method: &str, path: &str, token: &str, framing: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\n{framing}Connection: close\r\n\r\n{body}"
    )
    .into_bytes()
}

fn status(response: &str) -> &str {
    response.get(9..12).unwrap_or(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_read_by_their_framing() {
    for target in targets() {
        let cpis = Cpis::start(target).await;
        let la = cpis.la("LA1").await;
        let ed = cpis.setting("RR8").await;

        // A chunked body (no Content-Length) is read to its end.
        let body = record("LA1", Some(&nhs_number(70)), "C-70", CPP).to_string();
        let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
        let response = cpis
            .send_raw(request(
                "POST",
                "/api/v1/plans",
                &la,
                "Transfer-Encoding: chunked\r\n",
                &chunked,
            ))
            .await;
        assert_eq!(status(&response), "201", "{target:?}: {response}");

        // A declared length over 1 MiB is refused at once, though no body byte was sent.
        let response = cpis
            .send_raw(request(
                "POST",
                "/api/v1/plans",
                &la,
                "Content-Length: 2000000\r\n",
                "",
            ))
            .await;
        assert_eq!(status(&response), "413", "{target:?}: {response}");
        assert!(
            response.contains("body_too_large"),
            "{target:?}: {response}"
        );

        // A GET's body is not read: the look-up is answered as without one.
        let path = format!("/api/v1/flag/{}", nhs_number(70));
        let response = cpis
            .send_raw(request("GET", &path, &ed, "Content-Length: 5\r\n", "hello"))
            .await;
        assert_eq!(status(&response), "200", "{target:?}: {response}");
        assert!(response.contains("\"flag\":true"), "{target:?}: {response}");
        cpis.assert_no_traps();
    }
}
