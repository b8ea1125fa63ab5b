//! `[server]`: listeners, workers, connection handling, size caps, logging.
#![forbid(unsafe_code)]

use super::error::{Invalid, invalid};
use crate::jose::Limits;
use serde::Deserialize;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Largest accepted `server.workers`.
pub const MAX_WORKERS: usize = 1024;
/// Largest accepted `server.max_token_bytes` (1 MiB): far above any real bearer token.
pub const MAX_TOKEN_BYTES_CAP: usize = 1 << 20;

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// `grpc_listen` (default `127.0.0.1:9191`): the gRPC listener serving ext_authz v3,
    /// `verdict.v1`, `grpc.health.v1` and reflection. Port 0 picks a free port.
    pub grpc_listen: SocketAddr,
    /// `admin_listen` (default `127.0.0.1:9901`): the HTTP listener serving `/metrics`,
    /// `/healthz`, `/readyz` and the admin API. Must differ from `grpc_listen` (port 0 excepted).
    pub admin_listen: SocketAddr,
    /// `forward_auth_listen` (default unset = off): the HTTP listener answering gateways'
    /// forward-auth calls (nginx `auth_request`, Traefik `ForwardAuth`, Caddy `forward_auth`,
    /// Envoy ext_authz `http_service`) over HTTP/1.1 and h2c, served by the same workers as
    /// `grpc_listen`. Must differ from the other two listeners (port 0 excepted).
    pub forward_auth_listen: Option<SocketAddr>,
    /// `forward_auth_idle_timeout_s` (default 3700): seconds a forward-auth HTTP/1.1
    /// connection may stay idle between requests before it is closed; longer than gateways'
    /// own pools (Envoy keeps idle connections for an hour). At least 1.
    pub forward_auth_idle_timeout_s: u64,
    /// `workers` (default 0): worker threads, one pinned per core; 0 = one per CPU in the
    /// process affinity mask. At most [`MAX_WORKERS`].
    pub workers: usize,
    /// `max_connection_age_s` (default 300): after this many seconds a connection is sent a
    /// GOAWAY so clients reconnect and rebalance across workers; 0 = unlimited.
    pub max_connection_age_s: u64,
    /// `grpc_max_concurrent_streams` (default 200): the `SETTINGS_MAX_CONCURRENT_STREAMS`
    /// verdict advertises on the gRPC listener. Envoy opens another connection to its ext_authz
    /// cluster when every stream of its connections is busy, and each new connection is given
    /// to the least-loaded worker, so a smaller value spreads one gateway over more workers
    /// (set the same limit on Envoy's cluster: streams over it are refused); grpc-go and tonic
    /// clients queue calls instead. 1 to 2^31 - 1.
    pub grpc_max_concurrent_streams: u32,
    /// `max_connections` (default 10000): open connections accepted across all workers; further
    /// connections wait in the listen backlog. At least 1.
    pub max_connections: usize,
    /// `drain_timeout_s` (default 10): on shutdown, seconds to let in-flight requests finish
    /// after GOAWAY before connections are closed.
    pub drain_timeout_s: u64,
    /// `io_uring` (default true): use tokio-uring for file I/O where the kernel supports it;
    /// false (or no support) = ordinary blocking file I/O on a helper thread.
    pub io_uring: bool,
    /// `max_token_bytes` (default 8192): longest accepted compact token, checked before any
    /// parsing; longer credentials are rejected. 1 to [`MAX_TOKEN_BYTES_CAP`].
    pub max_token_bytes: usize,
    /// `max_header_bytes` (default 1024): longest accepted decoded JOSE header. At least 1.
    pub max_header_bytes: usize,
    /// `max_payload_bytes` (default 6144): longest accepted decoded claims set. At least 1.
    pub max_payload_bytes: usize,
    /// `log_format` (default `"text"`): `"text"` for humans, `"json"` for one JSON object per
    /// line.
    pub log_format: LogFormat,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let limits = Limits::default();
        ServerConfig {
            grpc_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9191),
            admin_listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9901),
            forward_auth_listen: None,
            forward_auth_idle_timeout_s: 3700,
            workers: 0,
            max_connection_age_s: 300,
            grpc_max_concurrent_streams: 200,
            max_connections: 10_000,
            drain_timeout_s: 10,
            io_uring: true,
            max_token_bytes: limits.max_token_bytes,
            max_header_bytes: limits.max_header_bytes,
            max_payload_bytes: limits.max_payload_bytes,
            log_format: LogFormat::Text,
        }
    }
}

impl ServerConfig {
    /// The parser's size caps.
    pub fn limits(&self) -> Limits {
        Limits {
            max_token_bytes: self.max_token_bytes,
            max_header_bytes: self.max_header_bytes,
            max_payload_bytes: self.max_payload_bytes,
        }
    }
}

/// `server.log_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `"text"` (the default): human-readable lines.
    #[default]
    Text,
    /// `"json"`: one JSON object per line.
    Json,
}

impl LogFormat {
    /// The config spelling.
    pub const fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

pub(super) fn check_server(server: &ServerConfig) -> Result<(), Invalid> {
    if server.workers > MAX_WORKERS {
        return Err(invalid(
            "server.workers",
            format!(
                "must be at most {MAX_WORKERS} (0 = one per CPU), got {}",
                server.workers
            ),
        ));
    }
    if listeners_conflict(server.grpc_listen, server.admin_listen) {
        return Err(invalid(
            "server.admin_listen",
            format!(
                "{} conflicts with server.grpc_listen {}: the listeners must be distinct",
                server.admin_listen, server.grpc_listen
            ),
        ));
    }
    if let Some(forward_auth) = server.forward_auth_listen {
        for (other, name) in [
            (server.grpc_listen, "server.grpc_listen"),
            (server.admin_listen, "server.admin_listen"),
        ] {
            if listeners_conflict(forward_auth, other) {
                return Err(invalid(
                    "server.forward_auth_listen",
                    format!(
                        "{forward_auth} conflicts with {name} {other}: the listeners must be distinct"
                    ),
                ));
            }
        }
    }
    if server.forward_auth_idle_timeout_s == 0 {
        return Err(invalid(
            "server.forward_auth_idle_timeout_s",
            "must be at least 1",
        ));
    }
    if server.grpc_max_concurrent_streams == 0
        || server.grpc_max_concurrent_streams > i32::MAX as u32
    {
        return Err(invalid(
            "server.grpc_max_concurrent_streams",
            format!(
                "must be between 1 and {}, got {}",
                i32::MAX,
                server.grpc_max_concurrent_streams
            ),
        ));
    }
    if server.max_connections == 0 {
        return Err(invalid("server.max_connections", "must be at least 1"));
    }
    if server.max_token_bytes == 0 || server.max_token_bytes > MAX_TOKEN_BYTES_CAP {
        return Err(invalid(
            "server.max_token_bytes",
            format!(
                "must be between 1 and {MAX_TOKEN_BYTES_CAP}, got {}",
                server.max_token_bytes
            ),
        ));
    }
    if server.max_header_bytes == 0 {
        return Err(invalid("server.max_header_bytes", "must be at least 1"));
    }
    if server.max_payload_bytes == 0 {
        return Err(invalid("server.max_payload_bytes", "must be at least 1"));
    }
    Ok(())
}

/// Two listeners conflict when they would bind the same port on overlapping addresses: the
/// same IP, or a wildcard covering the other (`0.0.0.0` covers IPv4, `[::]` both families).
/// Port 0 (pick a free port) never conflicts.
fn listeners_conflict(a: SocketAddr, b: SocketAddr) -> bool {
    let covers =
        |wild: IpAddr, other: IpAddr| wild.is_unspecified() && (wild.is_ipv6() || other.is_ipv4());
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || covers(a.ip(), b.ip()) || covers(b.ip(), a.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{PROVIDER, ok, rejects, server};

    #[test]
    fn server_listeners() {
        let c = ok(&server(
            "grpc_listen = \"0.0.0.0:7000\"\nadmin_listen = \"[::1]:7001\"",
        ));
        assert_eq!(c.server.grpc_listen, "0.0.0.0:7000".parse().expect("addr"));
        assert_eq!(c.server.admin_listen, "[::1]:7001".parse().expect("addr"));
        let d = ok(PROVIDER);
        assert_eq!(d.server.grpc_listen.to_string(), "127.0.0.1:9191");
        assert_eq!(d.server.admin_listen.to_string(), "127.0.0.1:9901");
        rejects(
            &server("grpc_listen = \"localhost:9191\""),
            "server.grpc_listen",
        );
        rejects(
            &server("admin_listen = \"127.0.0.1\""),
            "server.admin_listen",
        );
    }

    #[test]
    fn server_listeners_must_be_distinct() {
        let e = rejects(
            &server("grpc_listen = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.1:9000\""),
            "server.admin_listen",
        );
        assert!(e.reason.contains("server.grpc_listen"), "{e}");
        rejects(
            &server("grpc_listen = \"0.0.0.0:9000\"\nadmin_listen = \"127.0.0.1:9000\""),
            "server.admin_listen",
        );
        rejects(
            &server("admin_listen = \"127.0.0.1:9191\""),
            "server.admin_listen",
        );
        rejects(
            &server("grpc_listen = \"[::]:9000\"\nadmin_listen = \"127.0.0.1:9000\""),
            "server.admin_listen",
        );
        // Port 0 picks a free port for each: no conflict. Different IPs: no conflict.
        ok(&server(
            "grpc_listen = \"0.0.0.0:9000\"\nadmin_listen = \"[::1]:9000\"",
        ));
        ok(&server(
            "grpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"",
        ));
        ok(&server(
            "grpc_listen = \"127.0.0.1:9000\"\nadmin_listen = \"127.0.0.2:9000\"",
        ));
    }

    #[test]
    fn server_forward_auth_listener() {
        let d = ok(PROVIDER).server;
        assert_eq!(d.forward_auth_listen, None);
        assert_eq!(d.forward_auth_idle_timeout_s, 3700);
        let c = ok(&server(
            "forward_auth_listen = \"127.0.0.1:9192\"\nforward_auth_idle_timeout_s = 60",
        ))
        .server;
        assert_eq!(
            c.forward_auth_listen,
            Some("127.0.0.1:9192".parse().expect("addr"))
        );
        assert_eq!(c.forward_auth_idle_timeout_s, 60);
        rejects(
            &server("forward_auth_listen = \"127.0.0.1:9191\""),
            "server.forward_auth_listen",
        );
        rejects(
            &server("forward_auth_listen = \"0.0.0.0:9901\""),
            "server.forward_auth_listen",
        );
        ok(&server(
            "grpc_listen = \"127.0.0.1:0\"\nforward_auth_listen = \"127.0.0.1:0\"",
        ));
        rejects(
            &server("forward_auth_idle_timeout_s = 0"),
            "server.forward_auth_idle_timeout_s",
        );
    }

    #[test]
    fn server_workers() {
        assert_eq!(ok(PROVIDER).server.workers, 0);
        assert_eq!(ok(&server("workers = 8")).server.workers, 8);
        assert_eq!(ok(&server("workers = 1024")).server.workers, 1024);
        rejects(&server("workers = 1025"), "server.workers");
    }

    #[test]
    fn server_connection_settings() {
        let d = ok(PROVIDER).server;
        assert_eq!(
            (d.max_connection_age_s, d.max_connections, d.drain_timeout_s),
            (300, 10_000, 10)
        );
        let c = ok(&server(
            "max_connection_age_s = 0\nmax_connections = 1\ndrain_timeout_s = 0",
        ))
        .server;
        assert_eq!(
            (c.max_connection_age_s, c.max_connections, c.drain_timeout_s),
            (0, 1, 0)
        );
        rejects(&server("max_connections = 0"), "server.max_connections");
    }

    #[test]
    fn server_io_uring() {
        assert!(ok(PROVIDER).server.io_uring);
        assert!(!ok(&server("io_uring = false")).server.io_uring);
    }

    #[test]
    fn server_size_caps() {
        assert_eq!(ok(PROVIDER).server.limits(), Limits::default());
        let c = ok(&server(
            "max_token_bytes = 4096\nmax_header_bytes = 512\nmax_payload_bytes = 3000",
        ));
        assert_eq!(
            c.server.limits(),
            Limits {
                max_token_bytes: 4096,
                max_header_bytes: 512,
                max_payload_bytes: 3000
            }
        );
        rejects(&server("max_token_bytes = 0"), "server.max_token_bytes");
        rejects(
            &server("max_token_bytes = 1048577"),
            "server.max_token_bytes",
        );
        ok(&server("max_token_bytes = 1048576"));
        rejects(&server("max_header_bytes = 0"), "server.max_header_bytes");
        rejects(&server("max_payload_bytes = 0"), "server.max_payload_bytes");
    }

    #[test]
    fn server_log_format() {
        assert_eq!(ok(PROVIDER).server.log_format, LogFormat::Text);
        assert_eq!(
            ok(&server("log_format = \"json\"")).server.log_format,
            LogFormat::Json
        );
        assert_eq!(
            ok(&server("log_format = \"text\"")).server.log_format,
            LogFormat::Text
        );
        assert_eq!(LogFormat::Json.to_string(), "json");
        let e = rejects(&server("log_format = \"xml\""), "server.log_format");
        assert!(e.reason.contains("text"), "{e}");
    }
}
