//! [`Error`]: what can go wrong talking to the API or writing the answer.

/// Errors of klug; `main` prints them and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The `--url` is not an `http://host[:port][/prefix]` URL.
    #[error("invalid API URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request could not be sent or no answer came.
    #[error("cannot reach the API at {url}")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// Why.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The answer's body could not be read (or was larger than klug accepts).
    #[error("reading the answer from {url} failed: {reason}")]
    Body {
        /// The URL requested.
        url: String,
        /// Why.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("the server answered {status}: {message}")]
    Server {
        /// HTTP status code and reason, e.g. `400 Bad Request`.
        status: String,
        /// The server's `error` message (or the body as text).
        message: String,
    },
    /// The answer was not the JSON expected.
    #[error("the server's answer from {url} is not what klug expected: {reason}")]
    Unexpected {
        /// The URL requested.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// Writing the output failed.
    #[error("writing the output failed")]
    Io(#[from] std::io::Error),
}
