//! The REST API, wire-compatible with StackTach.v3's quincy v1 (klugman keeps working): events
//! and streams read from the [`Store`], stream delete and reset, and health probes.
//!
//! - [`router`] builds the axum app for an [`ApiState`]; [`serve`] runs it on a listener.
//! - [`ApiConfig`] is the `api:` section of winchester.yaml.
//! - [`ROUTES`] lists every method and path served (schemas/openapi.json documents them).

mod config;
mod error;
mod json;
mod params;
mod routes;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use tach_store::Store;

pub use config::{ApiConfig, DEFAULT_LIMIT, DEFAULT_MAX_STREAM_EVENTS};
pub use error::{ApiError, Result};

/// Every `(method, path)` the API serves, paths in OpenAPI/axum `{param}` form.
pub const ROUTES: [(&str, &str); 10] = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/events"),
    ("GET", "/v1/events/count"),
    ("GET", "/v1/events/{message_id}"),
    ("GET", "/v1/streams"),
    ("GET", "/v1/streams/count"),
    ("GET", "/v1/streams/{id}"),
    ("DELETE", "/v1/streams/{id}"),
    ("PUT", "/v1/streams/{id}"),
];

/// What every handler shares: the store and the configuration.
#[derive(Clone)]
pub struct ApiState {
    store: Store,
    config: Arc<ApiConfig>,
}

impl ApiState {
    /// State for serving `store` with `config`.
    pub fn new(config: ApiConfig, store: Store) -> ApiState {
        ApiState {
            store,
            config: Arc::new(config),
        }
    }
}

/// The API's routes, with the token/size guard on `/v1` and JSON 404s elsewhere.
pub fn router(state: ApiState) -> Router {
    let v1 = Router::new()
        .route("/v1/events", get(routes::list_events))
        .route("/v1/events/count", get(routes::count_events))
        .route("/v1/events/{message_id}", get(routes::get_event))
        .route("/v1/streams", get(routes::list_streams))
        .route("/v1/streams/count", get(routes::count_streams))
        .route(
            "/v1/streams/{id}",
            get(routes::get_stream)
                .delete(routes::delete_stream)
                .put(routes::reset_stream),
        )
        .route_layer(from_fn_with_state(state.clone(), routes::guard));
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .merge(v1)
        .fallback(routes::no_route)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then finishes open requests.
///
/// # Errors
/// [`ApiError::Serve`] when accepting connections fails.
pub async fn serve(
    config: ApiConfig,
    store: Store,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener.local_addr().map_err(ApiError::Serve)?;
    tracing::info!(
        %addr,
        auth = config.auth_token.is_some(),
        auth_reads = config.auth_reads,
        max_limit = config.max_limit,
        "REST API listening"
    );
    let app = router(ApiState::new(config, store));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ApiError::Serve)
}
