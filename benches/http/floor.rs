//! The floor of the HTTP benchmark: a bare axum server that answers `GET /readyz` with the
//! same bytes as runward's status-only answer (`{"status":"pass"}`, `application/health+json`)
//! and does nothing else: no checks, no snapshot, no limits.
//!
//!     cargo build --release -p runward --example http_floor
//!     target/release/examples/http_floor 127.0.0.1:18084

use axum::Router;
use axum::http::header;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18084".to_owned());
    let app = Router::new().route(
        "/readyz",
        get(|| async {
            (
                [
                    (header::CONTENT_TYPE, "application/health+json"),
                    (header::CACHE_CONTROL, "max-age=1"),
                ],
                r#"{"status":"pass"}"#,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("floor: serving on http://{addr}/readyz");
    axum::serve(listener, app).await
}
