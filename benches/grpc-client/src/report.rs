//! The report of one run: throughput and latency percentiles, failures by code.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::load::Stats;
use crate::workload::{Rpc, Workload};
use crate::{Args, Mode};

#[derive(Serialize)]
pub struct Report {
    target: SocketAddr,
    rpc: Rpc,
    mode: Mode,
    concurrency: u32,
    rate: Option<f64>,
    duration_s: f64,
    elapsed_s: f64,
    warmup_calls: usize,
    calls: u64,
    ok: u64,
    errors: BTreeMap<String, u64>,
    error_samples: BTreeMap<String, String>,
    calls_per_s: f64,
    rows_per_call: u64,
    rows_per_s: f64,
    latency_us: Latency,
}

#[derive(Serialize)]
pub struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Report {
    pub fn new(args: &Args, target: SocketAddr, work: &Workload, stats: Stats, elapsed: Duration) -> Self {
        let us = |ns: u64| ns as f64 / 1e3;
        let h = &stats.latency;
        let calls_per_s = stats.ok as f64 / elapsed.as_secs_f64();
        Report {
            target,
            rpc: args.rpc,
            mode: args.mode,
            concurrency: args.concurrency,
            rate: args.rate.filter(|_| matches!(args.mode, Mode::Rate)),
            duration_s: args.duration,
            elapsed_s: elapsed.as_secs_f64(),
            warmup_calls: args.warmup * args.concurrency as usize,
            calls: stats.ok + stats.failed(),
            ok: stats.ok,
            calls_per_s,
            rows_per_call: work.rows_per_call(),
            rows_per_s: calls_per_s * work.rows_per_call() as f64,
            latency_us: Latency {
                p50: us(h.value_at_quantile(0.50)),
                p90: us(h.value_at_quantile(0.90)),
                p99: us(h.value_at_quantile(0.99)),
                max: us(h.max()),
                mean: h.mean() / 1e3,
            },
            errors: stats.errors,
            error_samples: stats.error_samples,
        }
    }

    pub fn print_text(&self) {
        let mode = match self.rate {
            Some(rate) => format!("at {rate} calls/s over {} connections", self.concurrency),
            None => format!("closed loop x{}", self.concurrency),
        };
        println!("{:?} {mode} against {}: {:.2} s", self.rpc, self.target, self.elapsed_s);
        println!("  {} ok, {} failed, {:.1} calls/s", self.ok, self.calls - self.ok, self.calls_per_s);
        if self.rows_per_call > 1 {
            println!("  {} profiles per call, {:.0} profiles/s", self.rows_per_call, self.rows_per_s);
        }
        let l = &self.latency_us;
        println!("  latency p50 {:.0} us, p90 {:.0} us, p99 {:.0} us, max {:.0} us", l.p50, l.p90, l.p99, l.max);
        for (code, n) in &self.errors {
            println!("  error {code}: {n} (e.g. {:?})", self.error_samples[code]);
        }
    }

    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }
}
