//! [`Client`]: plain HTTP/1.1 requests to the API with an optional bearer token.

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, Uri, header};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::error::Error;

/// The largest answer klug reads (the API caps rows per page, so this is generous).
const MAX_BODY: usize = 256 * 1024 * 1024;

/// A client of one API base URL.
pub struct Client {
    base: String,
    token: Option<String>,
    http: HyperClient<HttpConnector, Empty<Bytes>>,
}

impl Client {
    /// A client of `url` (e.g. `http://127.0.0.1:8000`), sending `token` as a bearer token.
    ///
    /// # Errors
    /// [`Error::BadUrl`] when `url` is not a plain `http://` URL.
    pub fn new(url: &str, token: Option<String>) -> Result<Client, Error> {
        let bad = |reason: &str| Error::BadUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => return Err(bad("https is not supported; use http://")),
            _ => return Err(bad("expected http://host[:port]")),
        }
        if uri.host().is_none_or(str::is_empty) || uri.query().is_some() {
            return Err(bad("expected http://host[:port][/prefix]"));
        }
        Ok(Client {
            base: url.trim_end_matches('/').to_owned(),
            token,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// Sends `method path?query`; returns the JSON answer (`None` for an empty body).
    ///
    /// # Errors
    /// [`Error::Server`] for an error status (with the server's message), and the transport
    /// and decoding errors of [`Error`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<Value>, Error> {
        let mut url = format!("{}{path}", self.base);
        if !query.is_empty() {
            let q = serde_urlencoded::to_string(query).map_err(|e| Error::BadUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            url.push('?');
            url.push_str(&q);
        }
        let mut req = Request::builder()
            .method(method)
            .uri(&url)
            .header(header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let req = req.body(Empty::new()).map_err(|e| Error::BadUrl {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|source| Error::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| Error::Body {
                url: url.clone(),
                reason: e.to_string(),
            })?
            .to_bytes();
        if !status.is_success() {
            return Err(server_error(status, &body));
        }
        if body.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| Error::Unexpected {
                url,
                reason: format!("invalid JSON: {e}"),
            })
    }
}

fn server_error(status: StatusCode, body: &[u8]) -> Error {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    Error::Server {
        status: status.to_string(),
        message: if message.is_empty() {
            "(no message)".to_owned()
        } else {
            message
        },
    }
}

/// `s` percent-encoded for use as one path segment.
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(Client::new("http://127.0.0.1:8000", None).is_ok());
        assert!(Client::new("http://api.example/tach/", None).is_ok());
        let err = Client::new("https://x", None).err().unwrap();
        assert_eq!(
            err.to_string(),
            "invalid API URL \"https://x\": https is not supported; use http://"
        );
        assert!(Client::new("127.0.0.1:8000", None).is_err());
        assert!(Client::new("http://x/?a=b", None).is_err());
    }

    #[test]
    fn server_errors_carry_the_message() {
        let e = server_error(StatusCode::BAD_REQUEST, br#"{"error": "bad limit"}"#);
        assert_eq!(
            e.to_string(),
            "the server answered 400 Bad Request: bad limit"
        );
        let e = server_error(StatusCode::BAD_GATEWAY, b"");
        assert_eq!(
            e.to_string(),
            "the server answered 502 Bad Gateway: (no message)"
        );
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
