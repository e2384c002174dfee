//! Serves the API on a database without the `tach` binary, for profiling the API alone:
//! `cargo run --release -p tach-api --example serve -- sqlite:///tmp/x/tach.db 127.0.0.1:8913`.

use std::error::Error;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: serve DATABASE_URL [ADDR:PORT]")?;
    let bind = args.next().unwrap_or_else(|| "127.0.0.1:8913".to_owned());
    let config = tach_api::ApiConfig {
        bind: bind.parse()?,
        ..tach_api::ApiConfig::default()
    };
    let store = tach_store::Store::connect(&url).await?;
    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    println!("serving {url} on http://{bind}");
    tach_api::serve(config, store, listener, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
