//! Least-loaded connection balancing across workers, observed from outside through `/metrics`.
mod common;

use common::*;
use std::time::{Duration, Instant};

const ISS: &str = "https://idp.example.com";
const AUD: &str = "api://orders";

fn two_worker_config() -> String {
    format!(
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\nworkers = 2\n{EXAMPLE_PROVIDER}"
    )
}

fn worker_connections(server: &Server, worker: &str) -> f64 {
    server
        .metric_where("verdict_worker_connections", &[("worker", worker)])
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_connections_split_four_four_over_two_workers() {
    let server = Server::start(&two_worker_config(), &[("jwks.json", &example_jwks())]);
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "alice"));

    // Eight channels: tonic opens one TCP connection per Channel. A Check on each makes sure the
    // connection is established and handed to a worker, not merely queued.
    let mut clients = Vec::with_capacity(8);
    for index in 0..8 {
        let mut client = server.authz().await;
        let response = check(&mut client, bearer_check(&token)).await;
        assert_eq!(grpc_code(&response), 0, "channel {index}: {response:?}");
        clients.push(client);
    }
    // Once more on every connection, now that all are open (they stay distinct).
    for client in &mut clients {
        let response = check(client, bearer_check(&token)).await;
        assert_eq!(grpc_code(&response), 0);
    }

    // The gauges are published as connections arrive; give the last one a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut w0, mut w1) = (0.0, 0.0);
    while Instant::now() < deadline {
        w0 = worker_connections(&server, "0");
        w1 = worker_connections(&server, "1");
        if w0 + w1 >= 8.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let exposition = server.metrics_text();
    assert_eq!(
        w0 + w1,
        8.0,
        "eight open connections expected:\n{exposition}"
    );
    assert!(
        (3.0..=5.0).contains(&w0) && (3.0..=5.0).contains(&w1),
        "connections split {w0}:{w1}, expected 4:4 (±1):\n{exposition}"
    );
    // Every connection was accepted once, by one of the two workers.
    let accepted: f64 = ["0", "1"]
        .iter()
        .filter_map(|w| {
            find_series(
                &exposition,
                "verdict_connections_accepted_total",
                &[("worker", w)],
            )
        })
        .sum();
    assert_eq!(accepted, 8.0, "{exposition}");
    assert!(
        find_series(
            &exposition,
            "verdict_worker_connections",
            &[("worker", "2")]
        )
        .is_none(),
        "only two workers were configured:\n{exposition}"
    );

    // Both workers report the runtime they run.
    for worker in ["0", "1"] {
        let kinds: Vec<String> = exposition
            .lines()
            .filter_map(parse_series)
            .filter(|(name, labels, value)| {
                name == "verdict_worker_runtime"
                    && *value == 1.0
                    && labels.iter().any(|(k, v)| k == "worker" && v == worker)
            })
            .filter_map(|(_, labels, _)| {
                labels
                    .into_iter()
                    .find(|(k, _)| k == "kind")
                    .map(|(_, v)| v)
            })
            .collect();
        assert_eq!(
            kinds.len(),
            1,
            "worker {worker} runtime: {kinds:?}\n{exposition}"
        );
        assert!(
            kinds.iter().all(|k| k == "io_uring" || k == "tokio"),
            "worker {worker} runtime kind {kinds:?}"
        );
    }

    // Closing them all releases every slot.
    drop(clients);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.open_connections() > 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(server.open_connections(), 0.0, "{}", server.metrics_text());
}

/// Polls until both gauges read `want` (bounded); returns the last reading.
fn wait_split(server: &Server, want: (f64, f64)) -> (f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = (
            worker_connections(server, "0"),
            worker_connections(server, "1"),
        );
        if now == want || Instant::now() >= deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Opens one connection, checks on it, and returns it with the worker it landed on (learnt from
/// which gauge went up).
async fn open_and_locate(
    server: &Server,
    token: &str,
) -> (
    envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient<
        tonic::transport::Channel,
    >,
    usize,
) {
    let before = (
        worker_connections(server, "0"),
        worker_connections(server, "1"),
    );
    let mut client = server.authz().await;
    assert_eq!(grpc_code(&check(&mut client, bearer_check(token)).await), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let now = (
            worker_connections(server, "0"),
            worker_connections(server, "1"),
        );
        if now == (before.0 + 1.0, before.1) {
            return (client, 0);
        }
        if now == (before.0, before.1 + 1.0) {
            return (client, 1);
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("a new connection was not counted on exactly one worker (before {before:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_connections_refill_the_emptier_worker() {
    let server = Server::start(&two_worker_config(), &[("jwks.json", &example_jwks())]);
    let token = TestKey::example_rsa().mint(&claims(ISS, AUD, "alice"));
    let mut on = [Vec::new(), Vec::new()];
    for _ in 0..6 {
        let (client, worker) = open_and_locate(&server, &token).await;
        on[worker].push(client);
    }
    assert_eq!(
        (on[0].len(), on[1].len()),
        (3, 3),
        "six connections split unevenly"
    );
    // Close every connection of worker 0: it is now the emptier one.
    on[0].clear();
    assert_eq!(wait_split(&server, (0.0, 3.0)), (0.0, 3.0));
    // The next three connections all go to worker 0, then ties alternate again.
    for round in 0..3 {
        let (client, worker) = open_and_locate(&server, &token).await;
        assert_eq!(
            worker, 0,
            "connection {round} after the drain went to worker {worker}"
        );
        on[0].push(client);
    }
    assert_eq!(wait_split(&server, (3.0, 3.0)), (3.0, 3.0));
}
