//! Load test: is the stub ever the bottleneck? Sends `--requests` chat
//! completions at `--concurrency` to an in-process stub with `--latency-ms`,
//! and prints the throughput next to the ideal concurrency / latency.
//!
//! cargo run --release -p promptgate-stub --example load -- --requests 10000

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use promptgate_stub::{Stub, StubConfig};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    requests: usize,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let latency = Duration::from_millis(args.latency_ms);
    let stub = Stub::start(StubConfig {
        latency,
        ..StubConfig::default()
    })
    .await?;
    let url = format!("{}/chat/completions", stub.base_url());
    let client = new_client();
    let body = json!({
        "model": "stub",
        "messages": [
            {"role": "system", "content": "You grade answers."},
            {"role": "user", "content": "Is the sky blue on a clear day? Answer yes or no."},
        ],
    });

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (client, url, body, next) =
                (client.clone(), url.clone(), body.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                let mut failures = 0_usize;
                while next.fetch_add(1, Ordering::Relaxed) < args.requests {
                    let ok = match client.post(&url).json(&body).send().await {
                        Ok(response) => {
                            response.status().is_success() && response.bytes().await.is_ok()
                        }
                        Err(_) => false,
                    };
                    failures += usize::from(!ok);
                }
                failures
            })
        })
        .collect();
    let mut failures = 0;
    for worker in workers {
        failures += worker.await?;
    }
    let elapsed = started.elapsed();

    let throughput = args.requests as f64 / elapsed.as_secs_f64();
    print!(
        "{} requests, concurrency {}, latency {latency:?}: {elapsed:.2?}, {throughput:.0} req/s",
        args.requests, args.concurrency
    );
    if !latency.is_zero() {
        let ideal = args.concurrency as f64 / latency.as_secs_f64();
        print!(
            " (ideal {ideal:.0} req/s, {:.1}%)",
            100.0 * throughput / ideal
        );
    }
    println!(", {failures} failed");
    assert_eq!(stub.requests().len(), args.requests);
    Ok(())
}

/// A plain reqwest client. In a workspace build reqwest comes with rustls but no crypto
/// provider (the root crate installs its own), so install one first.
fn new_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
