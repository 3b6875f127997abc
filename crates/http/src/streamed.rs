//! JSON answers that may be large (decisions of thousands of items). A small one is written
//! whole, with its length. A large one is serialized off the HTTP worker, on the blocking
//! pool, and sent in chunks as it is written: the worker keeps answering other requests
//! meanwhile, and no second copy of the payload is held.

use std::io::Write;

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use tokio::sync::mpsc;

use crate::error::ApiError;

/// Payloads of at least this many bytes (estimated) are streamed.
pub const STREAM_FROM: usize = 256 * 1024;

/// The size of the chunks a streamed payload is sent in.
const CHUNK: usize = 64 * 1024;

/// Chunks written ahead of the connection.
const CHUNKS_AHEAD: usize = 4;

/// A 200 answer of the JSON that `write` writes, about `size` bytes long.
pub fn json_ok<F>(size: usize, write: F) -> HttpResponse
where
    F: FnOnce(&mut dyn Write) -> serde_json::Result<()> + Send + 'static,
{
    if size < STREAM_FROM {
        let mut body = Vec::with_capacity(size + 1024);
        return match write(&mut body) {
            Ok(()) => HttpResponse::Ok().content_type("application/json").body(body),
            Err(error) => failed(&error),
        };
    }
    let (sender, mut receiver) = mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut chunks = Chunks { sender, buffer: Vec::with_capacity(CHUNK) };
        let written = write(&mut chunks).map_err(std::io::Error::other);
        if let Err(error) = written.and_then(|()| chunks.send()) {
            // The client left (nothing to tell), or serializing failed: the answer is cut
            // short, which the client sees as a truncated body.
            if error.kind() != std::io::ErrorKind::BrokenPipe {
                tracing::error!(%error, "a streamed answer could not be written");
                let _ = chunks.sender.blocking_send(Err(error));
            }
        }
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx)))
}

fn failed(error: &serde_json::Error) -> HttpResponse {
    tracing::error!(%error, "an answer could not be serialized");
    actix_web::ResponseError::error_response(&ApiError::internal())
}

/// A writer that sends what it is given in chunks of [`CHUNK`] bytes.
struct Chunks {
    sender: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buffer: Vec<u8>,
}

impl Chunks {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK));
        self.sender
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| std::io::ErrorKind::BrokenPipe.into())
    }
}

impl Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
