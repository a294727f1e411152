//! `access-notify`: an NHS user opens a child's CP-IS information (JSON or FHIR); the access is
//! recorded and the LAs notified before anything is shown. The API lives in
//! `cpis_shared::api::access`.

#[spin_sdk::http_service]
async fn handle(req: spin_sdk::http::Request) -> impl spin_sdk::http::IntoResponse {
    cpis_spin::serve(req, cpis_shared::api::access::handle).await
}
