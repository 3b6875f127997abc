//! The benchmark's HTTP client: one HTTP/1.1 connection per worker (hyper's connection API),
//! driven in the worker's own task, so that a request costs this process its bytes and little
//! else — the client shares the cores with the server it measures.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Driver = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// A connection to the server under test, on `127.0.0.1`.
pub struct Connection {
    port: u16,
    sender: SendRequest<Full<Bytes>>,
    driver: std::pin::Pin<Box<Driver>>,
}

impl Connection {
    pub async fn open(port: u16) -> Option<Connection> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream.set_nodelay(true).ok()?;
        let (sender, driver) = http1::handshake(TokioIo::new(stream)).await.ok()?;
        Some(Connection { port, sender, driver: Box::pin(driver) })
    }

    /// Sends a request with `key` as its API key, and `body` as JSON when given, and reads the
    /// whole answer: its status, or `None` when the connection failed (it is then of no use).
    pub async fn send(
        &mut self, method: Method, path: &str, key: &str, body: Option<Vec<u8>>,
    ) -> Option<StatusCode> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, format!("127.0.0.1:{}", self.port))
            .header("x-api-key", key);
        if body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(Full::new(Bytes::from(body.unwrap_or_default()))).ok()?;
        let Connection { sender, driver, .. } = self;
        let exchange = async {
            sender.ready().await.ok()?;
            let response = sender.send_request(request).await.ok()?;
            let status = response.status();
            response.into_body().collect().await.ok()?;
            Some(status)
        };
        // The connection makes progress only while it is polled: here, beside the exchange.
        tokio::select! {
            answer = exchange => answer,
            _ = driver.as_mut() => None,
        }
    }
}
