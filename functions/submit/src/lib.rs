//! `submit`: LAs submit and withdraw plans and cases; the administrator manages credentials.
//! The API lives in `cpis_shared::api::submit`.

#[spin_sdk::http_service]
async fn handle(req: spin_sdk::http::Request) -> impl spin_sdk::http::IntoResponse {
    cpis_spin::serve(req, cpis_shared::api::submit::handle).await
}
