//! `serve` on a real socket: answers HTTP and stops on the shutdown signal.

use tach_api::{ApiConfig, serve};
use tach_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn serves_over_tcp_until_shutdown() {
    let store = Store::connect("sqlite::memory:").await.expect("connect");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(ApiConfig::default(), store, listener, async {
        let _ = stopped.await;
    }));
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: tach\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    conn.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("{\"status\":\"ok\"}"), "{answer}");
    stop.send(()).expect("server waiting");
    server.await.expect("joined").expect("clean shutdown");
}
