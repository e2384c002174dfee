//! A publisher for synchronous callers: it lives on its own thread with its own tokio runtime,
//! so a caller blocks on a std channel and never calls `block_on` on someone else's runtime.

use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::{Error, Publisher, Result, Target};

/// One batch to publish and where to send the outcome.
struct Request {
    messages: Vec<(String, Vec<u8>)>,
    reply: std_mpsc::Sender<Result<u64>>,
}

/// A handle to a publisher thread; clones share the thread and its connection.
#[derive(Debug, Clone)]
pub struct BlockingPublisher {
    requests: mpsc::UnboundedSender<Request>,
    target: String,
}

impl BlockingPublisher {
    /// Starts the thread. It connects on the first batch, keeps the connection between
    /// batches, and reconnects on the next batch after any failure. A batch (connecting,
    /// publishing, waiting for confirms) that takes longer than `timeout` fails.
    ///
    /// # Errors
    /// [`Error::Thread`] when the thread cannot be started.
    pub fn spawn(target: Target, timeout: Duration) -> Result<BlockingPublisher> {
        let (tx, rx) = mpsc::unbounded_channel();
        let description = target.describe();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Thread(format!("cannot build a runtime: {e}")))?;
        std::thread::Builder::new()
            .name("tach-publish".to_string())
            .spawn(move || runtime.block_on(serve(target, timeout, rx)))
            .map_err(|e| Error::Thread(format!("cannot start a thread: {e}")))?;
        Ok(BlockingPublisher {
            requests: tx,
            target: description,
        })
    }

    /// Where it publishes (no secrets).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Publishes `(key, body)` messages in order and blocks until all are confirmed; returns
    /// how many were.
    ///
    /// # Errors
    /// The first failure (connection, nack, returned message, delivery error, timeout).
    pub fn publish_all(&self, messages: Vec<(String, Vec<u8>)>) -> Result<u64> {
        if messages.is_empty() {
            return Ok(0);
        }
        let (reply, outcome) = std_mpsc::channel();
        self.requests
            .send(Request { messages, reply })
            .map_err(|_| Error::Thread(format!("publisher of {} stopped", self.target)))?;
        outcome
            .recv()
            .map_err(|_| Error::Thread(format!("publisher of {} stopped", self.target)))?
    }
}

/// The thread's loop: one batch at a time, one connection kept between batches.
async fn serve(target: Target, timeout: Duration, mut requests: mpsc::UnboundedReceiver<Request>) {
    let mut publisher: Option<Publisher> = None;
    while let Some(request) = requests.recv().await {
        let outcome = tokio::time::timeout(
            timeout,
            publish_batch(&target, &mut publisher, &request.messages),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::Timeout(format!(
                "publishing {} messages to {} (limit {timeout:?})",
                request.messages.len(),
                target.describe()
            )))
        });
        if outcome.is_err()
            && let Some(broken) = publisher.take()
        {
            broken.close().await;
        }
        // The caller may have given up; nothing to do then.
        let _ = request.reply.send(outcome);
    }
    if let Some(publisher) = publisher {
        publisher.close().await;
    }
}

/// Connects when needed, publishes every message and waits for all confirms.
async fn publish_batch(
    target: &Target,
    publisher: &mut Option<Publisher>,
    messages: &[(String, Vec<u8>)],
) -> Result<u64> {
    if let Some(Publisher::Amqp(p)) = publisher.as_ref()
        && !p.is_connected()
    {
        *publisher = None;
    }
    let publisher = match publisher {
        Some(p) => p,
        None => publisher.insert(Publisher::connect(target).await?),
    };
    let before = publisher.confirmed();
    for (key, body) in messages {
        publisher.publish(key, body).await?;
    }
    publisher.flush().await?;
    Ok(publisher.confirmed() - before)
}
