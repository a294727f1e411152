//! `alert`: each LA reads and acknowledges its own alert feed, and sees its children's recent
//! visits. The API lives in `cpis_shared::api::alert`.

#[spin_sdk::http_service]
async fn handle(req: spin_sdk::http::Request) -> impl spin_sdk::http::IntoResponse {
    cpis_spin::serve(req, cpis_shared::api::alert::handle).await
}
