//! Counters for `/metrics`, in the Prometheus text format (version 0.0.4).
//!
//! A fixed set of series in one static, updated with relaxed atomics: the request path never
//! takes a lock or allocates for them (a registry keyed by label values would do both per
//! request). Endpoints and outcomes are closed sets, so every series exists from the start.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// The request forms, as the `endpoint` label.
pub const ENDPOINTS: [&str; 5] = ["command", "url", "pipeline", "multi-exec", "metrics"];

/// `ok`, then every [`crate::errors::GatewayError::kind`], as the `outcome` label.
pub const OUTCOMES: [&str; 14] = [
    "ok",
    "missing-token",
    "wrong-token",
    "method-not-allowed",
    "body-too-large",
    "body-unreadable",
    "malformed",
    "refused",
    "forbidden",
    "command-error",
    "redis-unavailable",
    "redis-timeout",
    "redis-protocol",
    "other",
];

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] =
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct Gauge(AtomicI64);

/// Decrements its gauge when dropped, whichever way the tracked work ends.
pub struct GaugeGuard<'a>(&'a Gauge);

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Gauge {
    const fn new() -> Gauge {
        Gauge(AtomicI64::new(0))
    }
    pub fn track(&self) -> GaugeGuard<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(self)
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

pub struct Histogram {
    /// Per bucket (not cumulative); the last one is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS.len() + 1],
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let index = BUCKETS.iter().position(|&bound| seconds <= bound).unwrap_or(BUCKETS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(elapsed.as_nanos().min(u64::MAX as u128) as u64, Ordering::Relaxed);
    }
}

pub struct Metrics {
    requests: [[Counter; OUTCOMES.len()]; ENDPOINTS.len()],
    latency: [Histogram; ENDPOINTS.len()],
    /// New connections to Redis after the first (a drop, a READONLY, a failover).
    pub redis_reconnects: Counter,
    pub redis_connect_failures: Counter,
    /// Reconnects that landed on a different address (with Sentinels: a failover).
    pub redis_primary_changes: Counter,
    /// Batches (a command, a pipeline, a transaction) sent or waiting to be sent to Redis.
    pub in_flight_batches: Gauge,
    pub tls_reloads: Counter,
    pub tls_reload_failures: Counter,
}

pub static METRICS: Metrics = Metrics::new();

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every count at zero (a `const fn`, so the process-wide instance is a plain static).
    pub const fn new() -> Metrics {
        Metrics {
            requests: [const { [const { Counter::new() }; OUTCOMES.len()] }; ENDPOINTS.len()],
            latency: [const { Histogram::new() }; ENDPOINTS.len()],
            redis_reconnects: Counter::new(),
            redis_connect_failures: Counter::new(),
            redis_primary_changes: Counter::new(),
            in_flight_batches: Gauge::new(),
            tls_reloads: Counter::new(),
            tls_reload_failures: Counter::new(),
        }
    }
}

impl Metrics {
    /// Counts one finished request. `endpoint` indexes [`ENDPOINTS`]; `outcome` is `ok` or an
    /// error kind.
    pub fn record(&self, endpoint: usize, outcome: &str, elapsed: Duration) {
        let endpoint = endpoint.min(ENDPOINTS.len() - 1);
        let outcome = OUTCOMES.iter().position(|&o| o == outcome).unwrap_or(OUTCOMES.len() - 1);
        self.requests[endpoint][outcome].inc();
        self.latency[endpoint].observe(elapsed);
    }

    pub fn requests(&self, endpoint: &str, outcome: &str) -> u64 {
        let e = ENDPOINTS.iter().position(|&x| x == endpoint);
        let o = OUTCOMES.iter().position(|&x| x == outcome);
        match (e, o) {
            (Some(e), Some(o)) => self.requests[e][o].get(),
            _ => 0,
        }
    }

    /// The whole exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let _ = self.write_all(&mut out);
        out
    }

    fn write_all(&self, out: &mut String) -> std::fmt::Result {
        let p = "redis_rest_gateway";
        writeln!(out, "# HELP {p}_build_info The running version.")?;
        writeln!(out, "# TYPE {p}_build_info gauge")?;
        writeln!(out, "{p}_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"))?;
        writeln!(out, "# HELP {p}_requests_total HTTP requests by endpoint and outcome.")?;
        writeln!(out, "# TYPE {p}_requests_total counter")?;
        for (e, endpoint) in ENDPOINTS.iter().enumerate() {
            for (o, outcome) in OUTCOMES.iter().enumerate() {
                let n = self.requests[e][o].get();
                writeln!(out, "{p}_requests_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}} {n}")?;
            }
        }
        writeln!(out, "# HELP {p}_request_duration_seconds Time from request to response, by endpoint.")?;
        writeln!(out, "# TYPE {p}_request_duration_seconds histogram")?;
        for (e, endpoint) in ENDPOINTS.iter().enumerate() {
            let h = &self.latency[e];
            let mut cumulative = 0;
            for (i, bucket) in h.buckets.iter().enumerate() {
                cumulative += bucket.load(Ordering::Relaxed);
                let le = BUCKETS.get(i).map(|b| b.to_string()).unwrap_or_else(|| "+Inf".into());
                writeln!(
                    out,
                    "{p}_request_duration_seconds_bucket{{endpoint=\"{endpoint}\",le=\"{le}\"}} {cumulative}"
                )?;
            }
            let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            writeln!(out, "{p}_request_duration_seconds_sum{{endpoint=\"{endpoint}\"}} {sum}")?;
            writeln!(out, "{p}_request_duration_seconds_count{{endpoint=\"{endpoint}\"}} {cumulative}")?;
        }
        let counters = [
            ("redis_reconnects_total", "New connections to Redis after the first.", &self.redis_reconnects),
            (
                "redis_connect_failures_total",
                "Failed attempts to connect to Redis.",
                &self.redis_connect_failures,
            ),
            (
                "redis_primary_changes_total",
                "Reconnects that reached a different Redis address (failovers).",
                &self.redis_primary_changes,
            ),
            ("tls_reloads_total", "Successful reloads of the HTTPS certificate (SIGHUP).", &self.tls_reloads),
            (
                "tls_reload_failures_total",
                "Failed reloads of the HTTPS certificate.",
                &self.tls_reload_failures,
            ),
        ];
        for (name, help, counter) in counters {
            writeln!(out, "# HELP {p}_{name} {help}")?;
            writeln!(out, "# TYPE {p}_{name} counter")?;
            writeln!(out, "{p}_{name} {}", counter.get())?;
        }
        writeln!(out, "# HELP {p}_in_flight_batches Commands, pipelines and transactions waiting on Redis.")?;
        writeln!(out, "# TYPE {p}_in_flight_batches gauge")?;
        writeln!(out, "{p}_in_flight_batches {}", self.in_flight_batches.get())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_in_the_exposition() {
        let metrics = Metrics::new();
        metrics.record(2, "ok", Duration::from_micros(300));
        metrics.record(2, "ok", Duration::from_millis(3));
        metrics.record(2, "redis-timeout", Duration::from_secs(11));
        metrics.record(0, "no-such-kind", Duration::from_millis(1));
        let text = metrics.render();
        let line = |prefix: &str| text.lines().find(|l| l.starts_with(prefix)).unwrap_or("").to_string();
        let b = "redis_rest_gateway_request_duration_seconds_bucket{endpoint=\"pipeline\"";
        assert_eq!(line(&format!("{b},le=\"0.0005\"}}")), format!("{b},le=\"0.0005\"}} 1"));
        assert_eq!(line(&format!("{b},le=\"0.005\"}}")), format!("{b},le=\"0.005\"}} 2"));
        assert_eq!(line(&format!("{b},le=\"10\"}}")), format!("{b},le=\"10\"}} 2"));
        assert_eq!(line(&format!("{b},le=\"+Inf\"}}")), format!("{b},le=\"+Inf\"}} 3"));
        assert!(text.contains("redis_rest_gateway_requests_total{endpoint=\"pipeline\",outcome=\"ok\"} 2\n"));
        assert!(
            text.contains("redis_rest_gateway_requests_total{endpoint=\"command\",outcome=\"other\"} 1\n")
        );
        assert_eq!(metrics.requests("pipeline", "redis-timeout"), 1);
        {
            let _a = metrics.in_flight_batches.track();
            assert_eq!(metrics.in_flight_batches.get(), 1);
        }
        assert_eq!(metrics.in_flight_batches.get(), 0);
        // Every sample line is `name{labels} value` or `name value`.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let value = l.rsplit(' ').next().unwrap_or("");
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }
}
