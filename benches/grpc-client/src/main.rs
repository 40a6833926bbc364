//! decision-engine-load: drives a decision-engine gRPC server on loopback with Ping, Decide or
//! DecideBatch, in a closed loop or at a fixed rate, and prints throughput and latency
//! percentiles (JSON with --json). Every answer is checked; failures are counted by code.
//!
//!     decision-engine-load --target 127.0.0.1:50051 --rpc decide --mode closed --concurrency 8 \
//!         --duration 3 --features-file features.json --json
//!
//! The features file: `{"placements": ["hero"], "consents": ["web"], "features": [[...32 floats], ...]}`.
//! Decide cycles through the vectors, one profile per call in every placement; DecideBatch sends
//! all of them as one matrix in the first placement. Exit status: 0, 1 when a call failed, 2 on
//! bad arguments or no connection.

mod load;
mod report;
mod workload;

#[allow(clippy::all, dead_code)]
mod proto {
    tonic::include_proto!("decision_engine.v1");
}

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde::Serialize;
use tonic::transport::Endpoint;

use report::Report;
use workload::{Client, Rpc, Workload};

const MAX_DURATION: f64 = 120.0;

#[derive(Clone, Copy, Debug, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// N tasks, each sending its next call when the last one answered.
    Closed,
    /// Calls sent at --rate per second on a fixed schedule (open loop).
    Rate,
}

#[derive(Parser)]
#[command(version, about = "Load client for the decision-engine gRPC service (loopback only).")]
pub struct Args {
    /// Server address, host:port; it must be a loopback address (127.0.0.0/8, ::1, localhost).
    #[arg(long)]
    pub target: String,
    #[arg(long, value_enum, default_value = "ping")]
    pub rpc: Rpc,
    #[arg(long, value_enum, default_value = "closed")]
    pub mode: Mode,
    /// Connections; in closed mode also the calls in flight.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Calls per second (rate mode).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds of measured load, at most 120.
    #[arg(long, default_value_t = 3.0)]
    pub duration: f64,
    /// JSON with the feature vector(s), placements and consents to send (not needed for ping).
    #[arg(long)]
    pub features_file: Option<PathBuf>,
    /// Sent as `authorization: Bearer <token>`.
    #[arg(long)]
    pub token: Option<String>,
    /// Unmeasured calls per connection before the load.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Deadline of one call, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Runtime worker threads (the server shares the machine).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The target's address, refused unless every address it names is on loopback.
fn loopback(target: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = target.to_socket_addrs().map_err(|e| format!("--target {target}: {e}"))?.collect();
    match addrs.first() {
        Some(first) if addrs.iter().all(|a| a.ip().is_loopback()) => Ok(*first),
        _ => Err(format!("--target {target}: only loopback addresses are allowed")),
    }
}

fn check(args: &Args) -> Result<(), String> {
    if !(args.duration > 0.0 && args.duration <= MAX_DURATION) {
        return Err(format!("--duration must be in (0, {MAX_DURATION}] seconds"));
    }
    if !(args.timeout > 0.0 && args.timeout <= MAX_DURATION) || args.threads == 0 {
        return Err("--timeout must be in (0, 120] seconds and --threads at least 1".into());
    }
    match (args.mode, args.rate) {
        (Mode::Rate, Some(r)) if r > 0.0 && r <= 1e6 => Ok(()),
        (Mode::Rate, _) => Err("--mode rate needs --rate in (0, 1e6] calls/s".into()),
        (Mode::Closed, _) => Ok(()),
    }
}

fn run(args: &Args) -> Result<Report, String> {
    check(args)?;
    let target = loopback(&args.target)?;
    let work = Arc::new(Workload::load(args.features_file.as_deref(), args.rpc, args.token.as_deref())?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // One HTTP/2 connection per client, as separate clients would have.
    let endpoint = Endpoint::from_shared(format!("http://{target}"))
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs_f64(args.timeout));
    let clients = runtime.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..args.concurrency {
            let channel = endpoint.connect().await.map_err(|e| format!("connecting to {target}: {e}"))?;
            clients
                .push(Client::new(channel).max_decoding_message_size(256 << 20).max_encoding_message_size(256 << 20));
        }
        Ok::<_, String>(clients)
    })?;
    let duration = Duration::from_secs_f64(args.duration);
    let (stats, elapsed) = match args.mode {
        Mode::Closed => load::closed_loop(&runtime, clients, Arc::clone(&work), duration, args.warmup),
        Mode::Rate => {
            load::fixed_rate(&runtime, clients, Arc::clone(&work), args.rate.unwrap_or(1.0), duration, args.warmup)
        }
    };
    Ok(Report::new(args, target, &work, stats, elapsed))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(report) => {
            if args.json {
                println!("{}", serde_json::to_string(&report).expect("report serializes"));
            } else {
                report.print_text();
            }
            if report.failed() { ExitCode::from(1) } else { ExitCode::SUCCESS }
        }
        Err(message) => {
            eprintln!("decision-engine-load: {message}");
            ExitCode::from(2)
        }
    }
}
