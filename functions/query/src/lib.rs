//! `query`: is there a CP-IS record for this NHS number? A system lookup with no side effects.
//! The API lives in `cpis_shared::api::query`.

#[spin_sdk::http_service]
async fn handle(req: spin_sdk::http::Request) -> impl spin_sdk::http::IntoResponse {
    cpis_spin::serve(req, cpis_shared::api::query::handle).await
}
