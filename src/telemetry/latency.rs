//! Per-worker check latency: wait-free recording on the request path, hdrhistogram percentiles at
//! scrape time.
//!
//! Why not `hdrhistogram::sync::SyncHistogram`: its recorders hand their samples over only on
//! their *next* `record` after a scrape starts a phase shift. An idle worker therefore hides its
//! last samples until it gets traffic again, and every scrape waits out the timeout once per idle
//! worker. Instead each worker owns a flat array of atomic counters laid out exactly like an
//! hdrhistogram's buckets (1 ns .. 60 s, 3 significant digits). Recording is one relaxed
//! `fetch_add` on memory only that worker writes (no lock, no contention, no false sharing); a
//! scrape reads the counters, rebuilds an ordinary `Histogram` per worker (bucket for bucket, so
//! no precision is lost) and merges them. The counters only grow, so the export is cumulative
//! since start, and a scrape never waits for anyone.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::{CreationError, Histogram};

use super::names;

/// Lowest discernible latency: 1 ns.
const LOWEST_NS: u64 = 1;
/// Highest trackable latency: 60 s. Longer checks are recorded as 60 s (a check that slow has long
/// been abandoned by Envoy; what matters is that it is counted).
const HIGHEST_NS: u64 = 60_000_000_000;
/// 3 significant digits: 0.1 % relative error on every quantile.
const SIGFIG: u8 = 3;

/// For 3 significant digits hdrhistogram uses 2048 sub-buckets per bucket, the lower half of
/// every bucket after the first overlapping the previous one; these constants mirror its layout
/// so our indices are its indices.
const SUB_BUCKET_HALF_COUNT_MAGNITUDE: u32 = 10;
const SUB_BUCKET_HALF_COUNT: usize = 1 << SUB_BUCKET_HALF_COUNT_MAGNITUDE;
const SUB_BUCKET_MASK: u64 = (1 << (SUB_BUCKET_HALF_COUNT_MAGNITUDE + 1)) - 1;
/// `64 - unit_magnitude (0) - sub_bucket_half_count_magnitude - 1`, as in hdrhistogram.
const LEADING_ZERO_COUNT_BASE: u32 = 64 - SUB_BUCKET_HALF_COUNT_MAGNITUDE - 1;

/// The quantiles of the all-workers summary.
const QUANTILES: [(f64, &str); 4] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99"), (0.999, "0.999")];
/// The quantile exported per worker (enough to spot one slow core without multiplying series).
const WORKER_QUANTILE: (f64, &str) = (0.99, "0.99");

/// The counts index of `value` (in ns, already clamped to `HIGHEST_NS`): hdrhistogram's
/// `index_for` with `unit_magnitude = 0`.
fn index_for(value: u64) -> usize {
    let bucket = LEADING_ZERO_COUNT_BASE - (value | SUB_BUCKET_MASK).leading_zeros();
    let sub_bucket = value >> bucket;
    // `sub_bucket < 2048` and `bucket < 54`, so this fits and never underflows: for bucket 0 the
    // sub-bucket spans the whole 0..2048, otherwise it is at least 1024.
    (((bucket as usize) + 1) << SUB_BUCKET_HALF_COUNT_MAGNITUDE) + (sub_bucket as usize)
        - SUB_BUCKET_HALF_COUNT
}

/// The lowest value that lands in counts index `index`: the inverse of [`index_for`].
fn value_for(index: usize) -> u64 {
    let mut bucket = (index >> SUB_BUCKET_HALF_COUNT_MAGNITUDE) as i64 - 1;
    let mut sub_bucket = ((index & (SUB_BUCKET_HALF_COUNT - 1)) + SUB_BUCKET_HALF_COUNT) as u64;
    if bucket < 0 {
        sub_bucket -= SUB_BUCKET_HALF_COUNT as u64;
        bucket = 0;
    }
    sub_bucket << bucket
}

/// One worker's counters. Aligned to two cache lines so that no other worker's `sum_ns` (or any
/// other hot data) shares a line with it.
#[repr(align(128))]
struct WorkerLatency {
    /// One counter per hdrhistogram bucket index.
    counts: Box<[AtomicU64]>,
    /// Exact sum of recorded latencies in ns (wraps after ~584 years of summed latency, which
    /// Prometheus treats as a counter reset).
    sum_ns: AtomicU64,
}

impl WorkerLatency {
    fn new(len: usize) -> Self {
        Self {
            counts: (0..len).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    /// Rebuilds this worker's histogram from its counters. Counters written while we read may or
    /// may not be included; either is fine for a monotonic export.
    fn snapshot(&self, template: &Histogram<u64>) -> (Histogram<u64>, u64) {
        let mut histogram = Histogram::new_from(template);
        for (index, count) in self.counts.iter().enumerate() {
            let count = count.load(Ordering::Relaxed);
            if count != 0 {
                // Cannot fail: every index we write maps back to a value within the bounds.
                let _ = histogram.record_n(value_for(index), count);
            }
        }
        (histogram, self.sum_ns.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for WorkerLatency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerLatency")
            .field("buckets", &self.counts.len())
            .field("sum_ns", &self.sum_ns.load(Ordering::Relaxed))
            .finish()
    }
}

/// A worker's handle for recording check latencies. Owned by one worker thread; recording never
/// blocks and never touches memory another worker writes.
#[derive(Debug)]
pub struct LatencyRecorder {
    worker: Arc<WorkerLatency>,
}

impl LatencyRecorder {
    /// Records one check's latency. Durations above 60 s are counted as 60 s.
    ///
    /// Takes `&mut self` because a recorder belongs to one worker; this keeps the door open for
    /// a plain (non-atomic) single-writer layout without changing callers.
    #[inline]
    pub fn record(&mut self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos())
            .unwrap_or(u64::MAX)
            .min(HIGHEST_NS);
        let index = index_for(ns);
        // The array is sized from the same bounds, so this always hits; `get` keeps a layout bug
        // from turning into a panic on the request path.
        if let Some(count) = self
            .worker
            .counts
            .get(index)
            .or_else(|| self.worker.counts.last())
        {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.worker.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// All workers' latency counters, and their rendering as a Prometheus summary.
#[derive(Debug)]
pub(crate) struct Latency {
    /// An empty histogram with the configured bounds, cloned (shape only) for every snapshot.
    template: Histogram<u64>,
    /// Workers by index, sorted so the exposition is stable. Locked only when a worker registers
    /// and when a scrape copies the list, never while recording.
    workers: Mutex<BTreeMap<usize, Arc<WorkerLatency>>>,
}

impl Latency {
    /// An empty set of per-worker histograms.
    pub(crate) fn new() -> Result<Self, CreationError> {
        Ok(Self {
            template: Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGFIG)?,
            workers: Mutex::new(BTreeMap::new()),
        })
    }

    /// The recorder for `worker`. Calling it again for the same worker returns a handle to the
    /// same counters (they are atomic, so two handles stay correct, merely slower).
    pub(crate) fn recorder(&self, worker: usize) -> LatencyRecorder {
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        let len = self.template.distinct_values();
        let slot = workers
            .entry(worker)
            .or_insert_with(|| Arc::new(WorkerLatency::new(len)));
        LatencyRecorder {
            worker: Arc::clone(slot),
        }
    }

    /// Appends the summary (all workers, since start), its `_max` gauge and the per-worker p99 to
    /// `out` in the Prometheus text format.
    pub(crate) fn render_into(&self, out: &mut String) {
        let workers: Vec<(usize, Arc<WorkerLatency>)> = self
            .workers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(index, slot)| (*index, Arc::clone(slot)))
            .collect();

        let mut merged = Histogram::new_from(&self.template);
        let mut sum_ns: u64 = 0;
        let mut per_worker = Vec::with_capacity(workers.len());
        for (index, slot) in &workers {
            let (histogram, worker_sum) = slot.snapshot(&self.template);
            // Same bounds on both sides, so the merge cannot fail.
            let _ = merged.add(&histogram);
            sum_ns = sum_ns.wrapping_add(worker_sum);
            per_worker.push((*index, histogram));
        }

        let name = names::CHECK_DURATION_SECONDS;
        // `fmt::Write` for `String` never fails; the results are ignored for that reason.
        let _ = writeln!(
            out,
            "# HELP {name} Check latency from request to answer, all workers, since start."
        );
        let _ = writeln!(out, "# TYPE {name} summary");
        for (q, label) in QUANTILES {
            let _ = writeln!(
                out,
                "{name}{{quantile=\"{label}\"}} {}",
                quantile_seconds(&merged, q)
            );
        }
        let _ = writeln!(out, "{name}_sum {}", ns_to_seconds(sum_ns));
        let _ = writeln!(out, "{name}_count {}", merged.len());
        let (q, label) = WORKER_QUANTILE;
        for (index, histogram) in &per_worker {
            let _ = writeln!(
                out,
                "{name}{{worker=\"{index}\",quantile=\"{label}\"}} {}",
                quantile_seconds(histogram, q)
            );
        }
        out.push('\n');

        let max = names::CHECK_DURATION_SECONDS_MAX;
        let _ = writeln!(
            out,
            "# HELP {max} Largest check latency since start (within 0.1 %)."
        );
        let _ = writeln!(out, "# TYPE {max} gauge");
        let _ = writeln!(out, "{max} {}", ns_to_seconds(merged.max()));
        out.push('\n');
    }
}

/// Nanoseconds as Prometheus seconds (shortest round-trip float formatting).
fn ns_to_seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// A quantile in seconds, or `NaN` (the Prometheus convention) when nothing was recorded yet.
fn quantile_seconds(histogram: &Histogram<u64>, q: f64) -> f64 {
    if histogram.is_empty() {
        f64::NAN
    } else {
        ns_to_seconds(histogram.value_at_quantile(q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `name{labels} value` lines of a rendering into a lookup by the text before the value.
    fn sample(rendered: &str, series: &str) -> f64 {
        rendered
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no series {series} in:\n{rendered}"))
            .parse()
            .expect("sample value is a float")
    }

    #[test]
    fn layout_matches_hdrhistogram() {
        let latency = Latency::new().expect("valid bounds");
        let template = &latency.template;
        assert!(index_for(HIGHEST_NS) < template.distinct_values());
        let mut values: Vec<u64> = (0..5000).collect();
        let mut v = 1u64;
        while v < HIGHEST_NS {
            values.extend([v - 1, v, v + 1, v * 3 / 2]);
            v *= 2;
        }
        values.push(HIGHEST_NS);
        for value in values.into_iter().filter(|v| *v <= HIGHEST_NS) {
            let index = index_for(value);
            assert_eq!(
                value_for(index),
                template.lowest_equivalent(value),
                "value {value} index {index}"
            );
        }
    }

    #[test]
    fn percentiles_across_two_workers() {
        let latency = Latency::new().expect("valid bounds");
        let mut even = latency.recorder(0);
        let mut odd = latency.recorder(1);
        for us in 1..=1000u64 {
            let recorder = if us % 2 == 0 { &mut even } else { &mut odd };
            recorder.record(Duration::from_micros(us));
        }
        let mut out = String::new();
        latency.render_into(&mut out);

        let name = names::CHECK_DURATION_SECONDS;
        let within = |got: f64, want: f64| {
            assert!(
                (got - want).abs() <= want * 0.002,
                "got {got}, want {want} ± 0.2 %\n{out}"
            );
        };
        within(sample(&out, &format!("{name}{{quantile=\"0.5\"}}")), 500e-6);
        within(sample(&out, &format!("{name}{{quantile=\"0.9\"}}")), 900e-6);
        within(
            sample(&out, &format!("{name}{{quantile=\"0.99\"}}")),
            990e-6,
        );
        within(
            sample(&out, &format!("{name}{{quantile=\"0.999\"}}")),
            999e-6,
        );
        assert_eq!(sample(&out, &format!("{name}_count")), 1000.0);
        // Exact: the sum is kept beside the buckets. 1 + 2 + … + 1000 µs = 500 500 µs.
        within(sample(&out, &format!("{name}_sum")), 0.5005);
        within(sample(&out, &format!("{name}_max")), 1000e-6);
        within(
            sample(&out, &format!("{name}{{worker=\"0\",quantile=\"0.99\"}}")),
            990e-6,
        );
        within(
            sample(&out, &format!("{name}{{worker=\"1\",quantile=\"0.99\"}}")),
            989e-6,
        );

        // Cumulative: a second scrape after more samples includes the first ones too, and a
        // second handle for the same worker adds to the same counters.
        let mut again = latency.recorder(1);
        again.record(Duration::from_secs(3600));
        let mut out = String::new();
        latency.render_into(&mut out);
        assert_eq!(sample(&out, &format!("{name}_count")), 1001.0);
        within(sample(&out, &format!("{name}_max")), 60.0);
    }

    #[test]
    fn empty_summary_is_nan_not_zero() {
        let latency = Latency::new().expect("valid bounds");
        let mut out = String::new();
        latency.render_into(&mut out);
        let name = names::CHECK_DURATION_SECONDS;
        assert!(sample(&out, &format!("{name}{{quantile=\"0.99\"}}")).is_nan());
        assert_eq!(sample(&out, &format!("{name}_count")), 0.0);
    }

    #[test]
    fn zero_duration_is_recorded() {
        let latency = Latency::new().expect("valid bounds");
        latency.recorder(7).record(Duration::ZERO);
        let mut out = String::new();
        latency.render_into(&mut out);
        assert_eq!(
            sample(&out, &format!("{}_count", names::CHECK_DURATION_SECONDS)),
            1.0
        );
    }
}
