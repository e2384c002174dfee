//! The handlers: quincy v1's events and streams, the health probes, and the guard middleware
//! (bearer token and request size).

use std::future::Future;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ApiState;
use crate::error::{ApiError, Result};
use crate::json::Out;
use crate::params::{Params, stream_id};

type Q = std::result::Result<Query<Vec<(String, String)>>, QueryRejection>;

fn params(q: Q) -> Result<Params> {
    q.map(|Query(v)| Params(v))
        .map_err(|e| ApiError::bad("query", format!("malformed query string: {e}")))
}

fn json(status: StatusCode, out: Out) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], out.0).into_response()
}

impl ApiState {
    /// Runs store work under the configured query timeout.
    async fn timed<T>(&self, work: impl Future<Output = tach_store::Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.config.query_timeout, work).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(ApiError::Timeout(self.config.query_timeout)),
        }
    }
}

/// `GET /v1/events`.
pub(crate) async fn list_events(State(s): State<ApiState>, q: Q) -> Result<Response> {
    let filter = params(q)?.event_filter(s.config.max_limit)?;
    let events = s.timed(s.store.list_event_docs(&filter)).await?;
    let mut out = Out::with_capacity(256 + events.len() * 1024);
    out.event_docs(&events, filter.direction)?;
    Ok(json(StatusCode::OK, out))
}

/// `GET /v1/events/count`.
pub(crate) async fn count_events(State(s): State<ApiState>, q: Q) -> Result<Response> {
    let filter = params(q)?.event_filter(s.config.max_limit)?;
    let n = s.timed(s.store.count_events(&filter)).await?;
    let mut out = Out::with_capacity(32);
    out.count(n);
    Ok(json(StatusCode::OK, out))
}

/// `GET /v1/events/{message_id}`.
pub(crate) async fn get_event(
    State(s): State<ApiState>,
    Path(message_id): Path<String>,
) -> Result<Response> {
    let event = s
        .timed(s.store.get_event(&message_id))
        .await?
        .ok_or(ApiError::NotFound {
            what: "event",
            id: message_id,
        })?;
    let mut out = Out::with_capacity(1024);
    out.events(std::slice::from_ref(&event), tach_store::Direction::Desc);
    Ok(json(StatusCode::OK, out))
}

/// `GET /v1/streams`.
pub(crate) async fn list_streams(State(s): State<ApiState>, q: Q) -> Result<Response> {
    let mut filter = params(q)?.stream_filter(s.config.max_limit)?;
    // One event more than shown tells a cut stream from one that has exactly the maximum.
    filter.max_events = Some(s.config.max_stream_events.saturating_add(1));
    let mut streams = s.timed(s.store.list_streams(&filter)).await?;
    let truncated: Vec<bool> = streams
        .iter_mut()
        .map(|st| cap_events(st, s.config.max_stream_events))
        .collect();
    let mut out = Out::with_capacity(256 + streams.len() * 512);
    out.streams(&streams, &truncated, filter.direction);
    Ok(json(StatusCode::OK, out))
}

/// Cuts the loaded events of `stream` to `max`; true when there were more.
fn cap_events(stream: &mut tach_store::StreamRow, max: u32) -> bool {
    match &mut stream.events {
        Some(events) if events.len() > max as usize => {
            events.truncate(max as usize);
            true
        }
        _ => false,
    }
}

/// `GET /v1/streams/count`.
pub(crate) async fn count_streams(State(s): State<ApiState>, q: Q) -> Result<Response> {
    let filter = params(q)?.stream_filter(s.config.max_limit)?;
    let n = s.timed(s.store.count_streams(&filter)).await?;
    let mut out = Out::with_capacity(32);
    out.count(n);
    Ok(json(StatusCode::OK, out))
}

fn stream_not_found(id: i64) -> ApiError {
    ApiError::NotFound {
        what: "stream",
        id: id.to_string(),
    }
}

/// `GET /v1/streams/{id}`: a one-element list; `details=true` adds the events.
pub(crate) async fn get_stream(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    q: Q,
) -> Result<Response> {
    let id = stream_id(&id)?;
    let details = params(q)?.details()?;
    let mut stream = s
        .timed(s.store.get_stream(id, false))
        .await?
        .ok_or_else(|| stream_not_found(id))?;
    let mut truncated = false;
    if details {
        let max = s.config.max_stream_events;
        let events = s
            .timed(s.store.first_stream_events(id, Some(max.saturating_add(1))))
            .await?;
        stream.events = Some(events);
        truncated = cap_events(&mut stream, max);
    }
    let mut out = Out::with_capacity(1024);
    out.streams(
        std::slice::from_ref(&stream),
        &[truncated],
        tach_store::Direction::Desc,
    );
    Ok(json(StatusCode::OK, out))
}

/// `DELETE /v1/streams/{id}`: 204 when deleted.
pub(crate) async fn delete_stream(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = stream_id(&id)?;
    if !s.timed(s.store.delete_stream(id)).await? {
        return Err(stream_not_found(id));
    }
    tracing::info!(stream = id, "stream deleted through the API");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `PUT /v1/streams/{id}`: resets an errored stream; answers the stream as it is now.
pub(crate) async fn reset_stream(
    State(s): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = stream_id(&id)?;
    let stream = match tokio::time::timeout(s.config.query_timeout, s.store.reset_stream(id)).await
    {
        Err(_) => return Err(ApiError::Timeout(s.config.query_timeout)),
        Ok(Err(e)) if e.is_not_found() => return Err(stream_not_found(id)),
        Ok(Err(e)) if e.is_conflict() => return Err(ApiError::Conflict(e)),
        Ok(r) => r?,
    };
    tracing::info!(stream = id, state = %stream.state, "stream reset through the API");
    let mut out = Out::with_capacity(1024);
    out.streams(
        std::slice::from_ref(&stream),
        &[],
        tach_store::Direction::Desc,
    );
    Ok(json(StatusCode::OK, out))
}

/// `GET /healthz`: the process is up.
pub(crate) async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({ "status": "ok" }))).into_response()
}

/// `GET /readyz`: the database answers and its schema is the one this build needs.
pub(crate) async fn readyz(State(s): State<ApiState>) -> Response {
    let problem = match tokio::time::timeout(s.config.query_timeout, s.store.check_schema()).await {
        Ok(Ok(())) => {
            return (StatusCode::OK, axum::Json(json!({ "status": "ready" }))).into_response();
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %crate::error::chain(&e), "not ready");
            e.to_string()
        }
        Err(_) => format!(
            "the database did not answer within {:?}",
            s.config.query_timeout
        ),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({ "status": "unavailable", "error": problem })),
    )
        .into_response()
}

/// Any path no route serves.
pub(crate) async fn no_route(method: Method, uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "error": format!("no such endpoint: {method} {}", uri.path()) })),
    )
        .into_response()
}

/// True when `headers` carry `Authorization: Bearer <token>` (compared in constant time).
fn has_token(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    constant_time_eq(given.trim().as_bytes(), token.as_bytes())
}

/// Compares without an early exit, so timing does not reveal how much of a guess was right.
fn constant_time_eq(given: &[u8], want: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != want.len());
    for (i, &g) in given.iter().enumerate() {
        let w = if want.is_empty() {
            0
        } else {
            want[i % want.len()]
        };
        diff |= g ^ w;
    }
    std::hint::black_box(diff) == 0
}

/// Rejects oversized requests (413) and, when a token is configured, requests without it (401):
/// DELETE and PUT always, reads when `auth_reads`.
pub(crate) async fn guard(State(s): State<ApiState>, req: Request, next: Next) -> Response {
    let too_big = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > s.config.max_body_bytes as u64);
    if too_big {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(json!({ "error": "request body too large" })),
        )
            .into_response();
    }
    if let Some(token) = &s.config.auth_token {
        let read = matches!(*req.method(), Method::GET | Method::HEAD);
        if (!read || s.config.auth_reads) && !has_token(req.headers(), token) {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn store_work_past_the_query_timeout_is_a_504() {
        let store = tach_store::Store::connect("sqlite::memory:").await.unwrap();
        let config = crate::ApiConfig {
            query_timeout: std::time::Duration::from_millis(20),
            ..crate::ApiConfig::default()
        };
        let state = ApiState::new(config, store);
        let err = state
            .timed(std::future::pending::<tach_store::Result<()>>())
            .await
            .unwrap_err();
        assert_eq!(err.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            err.to_string(),
            "the query took longer than 20ms; narrow the filter or lower the limit"
        );
        assert_eq!(state.timed(async { Ok(7) }).await.unwrap(), 7);
    }

    #[test]
    fn tokens_compare_exactly() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secreT", b"secret"));
        assert!(!constant_time_eq(b"secret1", b"secret"));
        assert!(!constant_time_eq(b"secre", b"secret"));
        assert!(!constant_time_eq(b"", b"secret"));
        let mut h = HeaderMap::new();
        assert!(!has_token(&h, "secret"));
        h.insert(header::AUTHORIZATION, "Bearer secret".parse().unwrap());
        assert!(has_token(&h, "secret"));
        h.insert(header::AUTHORIZATION, "Basic secret".parse().unwrap());
        assert!(!has_token(&h, "secret"));
    }
}
