//! `promptgate-stub`: the stub server as a process, for trying a client by
//! hand or driving it from outside Rust.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use promptgate_stub::{Reply, Stub, StubConfig};

/// Serve a stub OpenAI- and Anthropic-compatible API on 127.0.0.1 until killed.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Port to listen on; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Delay before answering every completion request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Answer every completion with this text instead of echoing the last user
    /// message.
    #[arg(long)]
    reply: Option<String>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let config = StubConfig {
        latency: Duration::from_millis(args.latency_ms),
        default_reply: args.reply.map_or(Reply::Echo, Reply::Text),
        ..StubConfig::default()
    };
    let stub = Stub::start_on(SocketAddr::from(([127, 0, 0, 1], args.port)), config).await?;
    println!("listening on {}", stub.base_url());
    tokio::signal::ctrl_c().await
}
