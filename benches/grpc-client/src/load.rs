//! The two load shapes: a closed loop (N tasks, each sending its next call when the last
//! answered) and a fixed rate (calls sent on a time schedule whatever the answers do, latency
//! measured from the scheduled send time so a stall is not hidden: no coordinated omission).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::runtime::Runtime;

use crate::workload::{Client, Failure, Workload};

/// Latencies of the calls that succeeded (ns) and the failures by code.
pub struct Stats {
    pub latency: Histogram<u64>,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// The first message seen for each code.
    pub error_samples: BTreeMap<String, String>,
}

impl Stats {
    pub fn new() -> Self {
        // 1 ns .. 1 h at 3 significant digits.
        let latency = Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds");
        Self { latency, ok: 0, errors: BTreeMap::new(), error_samples: BTreeMap::new() }
    }

    pub fn record(&mut self, latency: Duration, result: Result<(), Failure>) {
        match result {
            Ok(()) => {
                self.ok += 1;
                self.latency.saturating_record(latency.as_nanos().try_into().unwrap_or(u64::MAX));
            }
            Err(failure) => {
                *self.errors.entry(failure.code.clone()).or_default() += 1;
                self.error_samples.entry(failure.code).or_insert(failure.message);
            }
        }
    }

    pub fn merge(&mut self, other: Stats) {
        self.latency.add(&other.latency).expect("histograms of the same bounds");
        self.ok += other.ok;
        for (code, n) in other.errors {
            *self.errors.entry(code).or_default() += n;
        }
        for (code, message) in other.error_samples {
            self.error_samples.entry(code).or_insert(message);
        }
    }

    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Unmeasured calls on every connection first, for at most 10 s: warms both ends up.
async fn warm_up(clients: &mut [Client], work: &Workload, calls: usize) {
    let all = async {
        for client in clients.iter_mut() {
            for i in 0..calls {
                let _ = work.call(client, i).await;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), all).await;
}

/// Each client in its own task, calling back to back for `duration`. Returns the stats and
/// the time from the start to the last answer.
pub fn closed_loop(
    runtime: &Runtime,
    mut clients: Vec<Client>,
    work: Arc<Workload>,
    duration: Duration,
    warmup: usize,
) -> (Stats, Duration) {
    runtime.block_on(async move {
        warm_up(&mut clients, &work, warmup).await;
        let n = clients.len();
        let start = Instant::now();
        let end = start + duration;
        let tasks: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(t, mut client)| {
                let work = Arc::clone(&work);
                tokio::spawn(async move {
                    let mut stats = Stats::new();
                    let mut i = t;
                    while Instant::now() < end {
                        let sent = Instant::now();
                        let result = work.call(&mut client, i).await;
                        stats.record(sent.elapsed(), result);
                        i += n;
                    }
                    stats
                })
            })
            .collect();
        let mut stats = Stats::new();
        for task in tasks {
            stats.merge(task.await.expect("load task panicked"));
        }
        (stats, start.elapsed())
    })
}

/// `rate` calls per second for `duration`, spread round-robin over the clients. This thread
/// paces (a precise OS sleep); the calls run on the runtime. Returns the stats and the time
/// from the first scheduled send to the last answer.
pub fn fixed_rate(
    runtime: &Runtime,
    mut clients: Vec<Client>,
    work: Arc<Workload>,
    rate: f64,
    duration: Duration,
    warmup: usize,
) -> (Stats, Duration) {
    runtime.block_on(warm_up(&mut clients, &work, warmup));
    let calls = (rate * duration.as_secs_f64()).round() as usize;
    let stats = Arc::new(Mutex::new(Stats::new()));
    let mut tasks = Vec::with_capacity(calls);
    let start = Instant::now() + Duration::from_millis(10);
    for i in 0..calls {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut client = clients[i % clients.len()].clone();
        let (work, stats) = (Arc::clone(&work), Arc::clone(&stats));
        tasks.push(runtime.spawn(async move {
            let result = work.call(&mut client, i).await;
            let latency = due.elapsed(); // from when it was due, not when it went out
            stats.lock().expect("stats lock").record(latency, result);
        }));
    }
    runtime.block_on(async {
        for task in tasks {
            task.await.expect("call task panicked");
        }
    });
    let elapsed = start.elapsed();
    let stats = Arc::try_unwrap(stats).ok().expect("every task joined").into_inner().expect("stats lock");
    (stats, elapsed)
}
