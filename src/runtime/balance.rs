//! Connection balancing: each accepted connection goes to the worker with the fewest open
//! connections. Gateways hold few long-lived HTTP/2 connections, so kernel hashing
//! (SO_REUSEPORT) leaves cores idle; counting is exact and cheap.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Open connections per worker.
#[derive(Debug)]
pub struct Loads {
    open: Vec<AtomicUsize>,
    next_start: AtomicUsize,
}

impl Loads {
    /// Zero loads for `workers` workers.
    pub fn new(workers: usize) -> Arc<Loads> {
        Arc::new(Loads {
            open: (0..workers.max(1)).map(|_| AtomicUsize::new(0)).collect(),
            next_start: AtomicUsize::new(0),
        })
    }

    /// Picks the least-loaded worker and counts the new connection on it. Ties go round-robin so
    /// equal loads spread evenly.
    pub fn assign(&self) -> usize {
        let snapshot: Vec<usize> = self
            .open
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .collect();
        let start = self.next_start.fetch_add(1, Ordering::Relaxed);
        let worker = least_loaded(&snapshot, start);
        if let Some(load) = self.open.get(worker) {
            load.fetch_add(1, Ordering::Relaxed);
        }
        worker
    }

    /// Counts a closed connection.
    pub fn release(&self, worker: usize) {
        if let Some(load) = self.open.get(worker) {
            load.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Current open connections of a worker.
    pub fn open(&self, worker: usize) -> usize {
        self.open
            .get(worker)
            .map_or(0, |l| l.load(Ordering::Relaxed))
    }

    /// Total open connections.
    pub fn total(&self) -> usize {
        self.open.iter().map(|l| l.load(Ordering::Relaxed)).sum()
    }
}

/// The index of the smallest load, scanning from `start` (mod len) so ties rotate.
pub fn least_loaded(loads: &[usize], start: usize) -> usize {
    let len = loads.len().max(1);
    (0..len)
        .map(|offset| (start + offset) % len)
        .min_by_key(|index| loads.get(*index).copied().unwrap_or(usize::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_minimum_and_rotates_ties() {
        assert_eq!(least_loaded(&[3, 1, 2], 0), 1);
        assert_eq!(least_loaded(&[1, 1], 0), 0);
        assert_eq!(least_loaded(&[1, 1], 1), 1);
        assert_eq!(least_loaded(&[], 5), 0);
    }

    #[test]
    fn eight_connections_on_two_workers_split_evenly() {
        let loads = Loads::new(2);
        for _ in 0..8 {
            loads.assign();
        }
        assert_eq!((loads.open(0), loads.open(1)), (4, 4));
        loads.release(0);
        loads.release(0);
        assert_eq!(loads.assign(), 0, "refills the emptier worker");
        assert_eq!(loads.total(), 7);
    }
}
