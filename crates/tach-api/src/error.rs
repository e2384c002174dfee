//! [`ApiError`]: every way a request can fail, and the HTTP response each one becomes.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to the client (and, for server faults, logged with its cause).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query or path parameter could not be used (400, names the parameter).
    #[error("invalid parameter {param}: {reason}")]
    BadParam {
        /// The parameter's name, e.g. `from_datetime`.
        param: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No such stream or event (404).
    #[error("{what} {id} not found")]
    NotFound {
        /// `stream` or `event`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The stream's state does not allow the operation (409).
    #[error("{0}")]
    Conflict(#[source] tach_store::Error),
    /// A bearer token is required and was missing or wrong (401).
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The database work took longer than the configured query timeout (504).
    #[error("the query took longer than {0:?}; narrow the filter or lower the limit")]
    Timeout(std::time::Duration),
    /// The store failed (500, or 503 when the database is unreachable).
    #[error("store error")]
    Store(#[from] tach_store::Error),
    /// Serving HTTP failed (binding or accepting).
    #[error("serving the API failed")]
    Serve(#[source] std::io::Error),
}

/// Result type of this crate.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

impl ApiError {
    /// A 400 for parameter `param`.
    pub fn bad(param: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError::BadParam {
            param,
            reason: reason.into(),
        }
    }

    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadParam { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Store(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) | ApiError::Serve(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The error and each of its sources, joined by `: `.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::BadParam { param, .. } => json!({
                "error": self.to_string(),
                "parameter": param,
            }),
            ApiError::Store(_) | ApiError::Serve(_) => {
                tracing::error!(error = %chain(&self), "request failed");
                let message = if status == StatusCode::SERVICE_UNAVAILABLE {
                    "the database is unavailable; try again later"
                } else {
                    "internal server error"
                };
                json!({ "error": message })
            }
            _ => json!({ "error": self.to_string() }),
        };
        let mut response = (status, Json(body)).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
