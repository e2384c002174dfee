//! The files and stdin sources: JSON lines, read once to the end (tests and backfills), each
//! distilled before it is sent to the pipeline.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, watch};

use crate::distil::Distil;
use crate::error::{Error, Result};
use crate::message::{Message, Origin};

/// Reads the files in order, one message per non-blank line, distilled with `distil`, until
/// the end or `stop`.
///
/// # Errors
/// [`Error::Read`] when a file cannot be opened or read.
pub(crate) async fn run_files(
    index: usize,
    paths: Vec<std::path::PathBuf>,
    tx: mpsc::Sender<Message>,
    distil: Arc<Distil>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    for path in paths {
        let name = path.display().to_string();
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|source| Error::Read {
                path: name.clone(),
                source,
            })?;
        if !read_lines(index, file, &name, &tx, &distil, &mut stop).await? {
            break;
        }
    }
    Ok(())
}

/// Reads standard input to the end or `stop`, distilling each line with `distil`.
///
/// # Errors
/// [`Error::Read`] when stdin cannot be read.
pub(crate) async fn run_stdin(
    index: usize,
    tx: mpsc::Sender<Message>,
    distil: Arc<Distil>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    read_lines(index, tokio::io::stdin(), "-", &tx, &distil, &mut stop).await?;
    Ok(())
}

/// Distils and sends every non-blank line; false when stopped before the end.
async fn read_lines(
    index: usize,
    input: impl AsyncRead + Unpin,
    name: &str,
    tx: &mpsc::Sender<Message>,
    distil: &Distil,
    stop: &mut watch::Receiver<bool>,
) -> Result<bool> {
    let source: Arc<str> = Arc::from(format!("file:{name}"));
    let mut reader = BufReader::with_capacity(1 << 16, input);
    loop {
        if *stop.borrow() {
            return Ok(false);
        }
        let mut line = Vec::with_capacity(4096);
        let n = reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(|source| Error::Read {
                path: name.to_owned(),
                source,
            })?;
        if n == 0 {
            return Ok(true);
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        let message = Message {
            distilled: distil.distil(&line),
            payload: line,
            source: Arc::clone(&source),
            origin: Origin::Line,
            source_index: index,
        };
        tokio::select! {
            sent = tx.send(message) => if sent.is_err() { return Ok(false) },
            _ = stop.changed() => return Ok(false),
        }
    }
}
