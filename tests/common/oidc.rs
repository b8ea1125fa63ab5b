//! A real OpenID provider for integration tests: the npm package `oidc-provider` (pinned in
//! `tests/support/oidc/package.json`), run by `tests/support/oidc/server.mjs` with the machine's
//! Node on 127.0.0.1, plus a control API that rotates and retires its signing keys, breaks its
//! JWKS endpoint on purpose and counts requests.
//!
//! Include it with `#[path = "common/oidc.rs"] mod oidc;`. It uses only std and `serde_json`.
//!
//! ```ignore
//! let idp = oidc::OidcProvider::start();
//! let token = idp.token(oidc::RESOURCE_RS256, "read");   // a JWT signed RS256, with a kid
//! let jwks_uri = idp.jwks_uri();                        // configure verdict with this
//! let rotation = idp.rotate();                          // new kids first, old ones kept
//! idp.retire();                                         // only the newest key of each type
//! assert_eq!(idp.jwks_requests(), 1);
//! ```
//!
//! The client is `CLIENT_ID`/`CLIENT_SECRET` (grant `client_credentials`, client_secret_basic or
//! client_secret_post). Resources: `api://rs256` (JWT, RS256), `api://es256` (JWT, ES256) and
//! `api://opaque` (opaque tokens, introspectable and revocable); scopes `read` and `write`.
//!
//! [`OidcProvider::start_with_pkjwt`] also registers [`PKJWT_CLIENT_ID`], a client that
//! authenticates with RFC 7523 `private_key_jwt` (client assertions signed with a key of the
//! public JWKS given) at the token and introspection endpoints, and may introspect tokens issued
//! to [`CLIENT_ID`] (and the other way round). The provider accepts an assertion whose `aud` is
//! the issuer, the token endpoint or the endpoint being called (the latter two as seen through
//! the request's Host header), `alg` RS256/384/512, PS256/384/512, ES256/384 or EdDSA, and each
//! `jti` once. It answers a bad assertion 401 `invalid_client` and logs why (see
//! [`OidcProvider::logs`]).
//!
//! The provider's keys and opaque tokens live in a state file in a scratch directory, so
//! [`OidcProvider::restart`] brings the same provider (same port, issuer, keys, tokens) back;
//! its request log starts from zero again.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use serde_json::{Value, json};

/// The `client_credentials` client's id.
pub const CLIENT_ID: &str = "verdict-test";
/// The `client_credentials` client's secret.
pub const CLIENT_SECRET: &str = "verdict-secret";
/// The resource whose access tokens are JWTs signed RS256.
pub const RESOURCE_RS256: &str = "api://rs256";
/// The resource whose access tokens are JWTs signed ES256.
pub const RESOURCE_ES256: &str = "api://es256";
/// The resource whose access tokens are opaque (introspect them).
pub const RESOURCE_OPAQUE: &str = "api://opaque";
/// Every scope the client may ask for.
pub const SCOPES: &str = "read write";
/// The `private_key_jwt` client's id (registered by [`OidcProvider::start_with_pkjwt`]).
pub const PKJWT_CLIENT_ID: &str = "verdict-pkjwt";
/// The `client_assertion_type` of an RFC 7523 JWT client assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long start and restart wait for the server's READY line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The read timeout of the helper's HTTP requests.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tests/support/ensure_oidc.sh` once per test process (it installs the pinned npm
/// packages when they are missing or stale); panics with its output when it fails.
pub fn ensure_installed() {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = DONE.get_or_init(|| {
        let script = repo().join("tests/support/ensure_oidc.sh");
        let out = Command::new("bash")
            .arg(&script)
            .current_dir(repo())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
                script.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(message) = result {
        panic!("the OpenID provider fixture cannot be installed: {message}");
    }
}

/// What `POST /__control/jwks-mode` makes the JWKS endpoint do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwksMode {
    /// Serve the JWKS (the default).
    Normal,
    /// Answer 500 with a JSON error body.
    Error500,
    /// Answer 200 `application/json` with a body that is not JSON.
    NotJson,
    /// Never answer (the request is dropped when the mode changes or the server stops).
    Hang,
}

impl JwksMode {
    fn name(self) -> &'static str {
        match self {
            JwksMode::Normal => "normal",
            JwksMode::Error500 => "error500",
            JwksMode::NotJson => "notjson",
            JwksMode::Hang => "hang",
        }
    }
}

/// The answer of [`OidcProvider::rotate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The new RSA and EC kids (published first: new tokens are signed with them).
    pub new_kids: Vec<String>,
    /// The kids published before the rotation (still published).
    pub old_kids: Vec<String>,
    /// Every kid now published, in JWKS order.
    pub published_kids: Vec<String>,
}

/// A running `tests/support/oidc/server.mjs`.
pub struct OidcProvider {
    child: Option<Child>,
    addr: SocketAddr,
    ready: Value,
    extra_args: Vec<String>,
    state_dir: PathBuf,
    logs: Arc<Mutex<String>>,
}

impl OidcProvider {
    /// A verdict `[[providers]]` table named `oidc` reading this provider's discovery document,
    /// trusting its RS256 and ES256 JWT access tokens, with `extra` provider keys.
    pub fn verdict_provider_toml(&self, extra: &str) -> String {
        format!(
            r#"
[[providers]]
name = "oidc"
issuer = "{issuer}"
discovery_uri = "{discovery}"
audiences = ["{RESOURCE_RS256}", "{RESOURCE_ES256}"]
algorithms = ["RS256", "ES256"]
typ = "at+jwt"
{extra}
"#,
            issuer = self.issuer(),
            discovery = self.discovery_uri(),
        )
    }

    /// Installs the npm packages if needed, starts the provider on an ephemeral loopback port
    /// and waits (up to [`READY_TIMEOUT`]) until it serves; panics with its stderr if it fails.
    pub fn start() -> OidcProvider {
        Self::start_with_args(&[])
    }

    /// [`OidcProvider::start`] with extra `server.mjs` arguments, e.g. `["--ttl", "5"]`.
    pub fn start_with_args(args: &[&str]) -> OidcProvider {
        let mut provider = Self::unstarted(args);
        provider.spawn(0);
        provider
    }

    /// [`OidcProvider::start`], also registering the `private_key_jwt` client
    /// [`PKJWT_CLIENT_ID`] with `public_jwks` (a JWKS document of public keys, e.g.
    /// `{"keys":[{"kty":"EC","crv":"P-256","x":..,"y":..,"kid":..}]}`): it authenticates with
    /// client assertions signed by one of those keys. The JWKS is written to the scratch
    /// directory, so [`OidcProvider::restart`] registers the client again.
    pub fn start_with_pkjwt(public_jwks: &str) -> OidcProvider {
        Self::start_with_pkjwt_and_args(public_jwks, &[])
    }

    /// [`OidcProvider::start_with_pkjwt`] with extra `server.mjs` arguments.
    pub fn start_with_pkjwt_and_args(public_jwks: &str, args: &[&str]) -> OidcProvider {
        let mut provider = Self::unstarted(args);
        let file = provider.state_dir.join("pkjwt-jwks.json");
        std::fs::write(&file, public_jwks).expect("write the private_key_jwt client's JWKS");
        let file = file
            .to_str()
            .expect("the scratch directory's path is UTF-8")
            .to_owned();
        provider
            .extra_args
            .extend(["--pkjwt-jwks".to_owned(), file]);
        provider.spawn(0);
        provider
    }

    /// A provider with its scratch directory made, not yet running.
    fn unstarted(args: &[&str]) -> OidcProvider {
        ensure_installed();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let state_dir = std::env::temp_dir().join(format!(
            "verdict-oidc-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&state_dir).expect("create the OpenID provider's state dir");
        OidcProvider {
            child: None,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ready: Value::Null,
            extra_args: args.iter().map(|s| s.to_string()).collect(),
            state_dir,
            logs: Arc::new(Mutex::new(String::new())),
        }
    }

    fn spawn(&mut self, port: u16) {
        let script = repo().join("tests/support/oidc/server.mjs");
        let state_file = self.state_dir.join("state.json");
        let mut child = Command::new("node")
            .arg(&script)
            .args(["--port", &port.to_string(), "--issuer-host", "127.0.0.1"])
            .arg("--state-file")
            .arg(&state_file)
            .arg("--exit-on-stdin-close")
            .args(&self.extra_args)
            .current_dir(repo())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node {}: {e}", script.display()));

        let stderr = child.stderr.take().expect("piped stderr");
        let logs = Arc::clone(&self.logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut logs = logs.lock().expect("logs lock");
                logs.push_str(&line);
                logs.push('\n');
            }
        });

        let stdout = child.stdout.take().expect("piped stdout");
        let logs = Arc::clone(&self.logs);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Only the first READY line is the handshake; anything else is logged.
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(ready) = line.strip_prefix("READY ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(ready.to_owned());
                    continue;
                }
                let mut logs = logs.lock().expect("logs lock");
                logs.push_str(&line);
                logs.push('\n');
            }
        });

        let ready = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                let status = child.wait().ok();
                // Let the stderr reader catch up with what the process wrote before it ended.
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "the OpenID provider did not get ready ({e:?}, exit {status:?}); its output:\n{}",
                    self.logs()
                );
            }
        };
        let ready: Value = serde_json::from_str(&ready)
            .unwrap_or_else(|e| panic!("bad READY line {ready:?}: {e}"));
        let port = ready["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("READY line without a port: {ready}"));
        self.addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        self.ready = ready;
        self.child = Some(child);
    }

    /// Kills the provider (its port then refuses connections). Keys and opaque tokens stay in
    /// the state file for [`OidcProvider::restart`].
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the provider if it runs and starts it again on the SAME port, with the same issuer,
    /// signing keys (rotations included) and opaque tokens; its request log starts at zero.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.addr.port();
        self.logs
            .lock()
            .expect("logs lock")
            .push_str("--- restart ---\n");
        self.spawn(port);
        assert_eq!(
            self.addr.port(),
            port,
            "the restarted provider changed port"
        );
    }

    /// Whether the node process is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Everything the server logged so far (one line per request, on stderr).
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs lock").clone()
    }

    /// Waits (at most `timeout`) until the provider's output contains `needle`: its log lines
    /// are read from a pipe and may land a moment after the HTTP answer. Returns the output
    /// either way.
    pub fn wait_for_log(&self, needle: &str, timeout: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let logs = self.logs();
            if logs.contains(needle) || std::time::Instant::now() >= deadline {
                return logs;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The listening address (127.0.0.1:PORT).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The issuer, `http://127.0.0.1:PORT` (no trailing slash; the `iss` of its tokens).
    pub fn issuer(&self) -> &str {
        self.ready_str("issuer")
    }

    /// `{issuer}/.well-known/openid-configuration`.
    pub fn discovery_uri(&self) -> String {
        self.ready_str("discovery_uri").to_owned()
    }

    /// The JWKS URI (`{issuer}/jwks`).
    pub fn jwks_uri(&self) -> String {
        self.ready_str("jwks_uri").to_owned()
    }

    /// The token endpoint (`{issuer}/token`).
    pub fn token_endpoint(&self) -> String {
        self.ready_str("token_endpoint").to_owned()
    }

    /// The introspection endpoint (`{issuer}/token/introspection`).
    pub fn introspection_endpoint(&self) -> String {
        self.ready_str("introspection_endpoint").to_owned()
    }

    /// The revocation endpoint (`{issuer}/token/revocation`).
    pub fn revocation_endpoint(&self) -> String {
        self.ready_str("revocation_endpoint").to_owned()
    }

    fn ready_str(&self, key: &str) -> &str {
        self.ready[key]
            .as_str()
            .unwrap_or_else(|| panic!("READY line without {key}: {}", self.ready))
    }

    /// The path part of one of this provider's URLs.
    fn path_of<'a>(&self, url: &'a str) -> &'a str {
        url.strip_prefix(self.issuer()).unwrap_or(url)
    }

    /// A request to the provider: `Err` when it cannot be reached (e.g. stopped).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> std::io::Result<Response> {
        http_request(self.addr, method, path, headers, body, HTTP_TIMEOUT)
    }

    /// GET `path`; panics when the provider cannot be reached.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], &[])
            .unwrap_or_else(|e| panic!("GET {path} on the OpenID provider: {e}\n{}", self.logs()))
    }

    /// POST a form to `path`, authenticated as the client with HTTP Basic when `basic_auth`.
    pub fn post_form(&self, path: &str, form: &[(&str, &str)], basic_auth: bool) -> Response {
        let body = form_encode(form);
        let auth = format!(
            "Basic {}",
            base64_encode(format!("{CLIENT_ID}:{CLIENT_SECRET}").as_bytes())
        );
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if basic_auth {
            headers.push(("Authorization", &auth));
        }
        self.request("POST", path, &headers, body.as_bytes())
            .unwrap_or_else(|e| panic!("POST {path} on the OpenID provider: {e}\n{}", self.logs()))
    }

    /// The discovery document.
    pub fn discovery(&self) -> Value {
        self.get(self.path_of(&self.discovery_uri())).ok_json()
    }

    /// The JWKS as served now (counts as a JWKS request in the log).
    pub fn jwks(&self) -> Value {
        self.get(self.path_of(&self.jwks_uri())).ok_json()
    }

    /// The token endpoint's answer for `grant_type=client_credentials` (client_secret_basic).
    pub fn token_response(&self, resource: &str, scope: &str) -> Response {
        let path = self.token_endpoint();
        self.post_form(
            self.path_of(&path),
            &[
                ("grant_type", "client_credentials"),
                ("resource", resource),
                ("scope", scope),
            ],
            true,
        )
    }

    /// An access token for `resource` with `scope` (space-separated), via client_credentials.
    pub fn token(&self, resource: &str, scope: &str) -> String {
        let body = self.token_response(resource, scope).ok_json();
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("token response without access_token: {body}"))
            .to_owned()
    }

    /// The introspection answer for `token` (`{"active":false}` for unknown, revoked or expired
    /// tokens). Only opaque tokens can be introspected: oidc-provider answers 400 for JWTs.
    pub fn introspect(&self, token: &str) -> Value {
        let path = self.introspection_endpoint();
        self.post_form(self.path_of(&path), &[("token", token)], true)
            .ok_json()
    }

    /// The introspection answer for `token` when the caller authenticates as
    /// [`PKJWT_CLIENT_ID`] with `client_assertion` (a JWT signed with a key of the JWKS given to
    /// [`OidcProvider::start_with_pkjwt`]; `aud` e.g. the introspection endpoint). 401
    /// `invalid_client` when the provider refuses the assertion.
    pub fn introspect_with_assertion(&self, token: &str, client_assertion: &str) -> Response {
        let path = self.introspection_endpoint();
        self.post_form(
            self.path_of(&path),
            &[
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", client_assertion),
                ("client_id", PKJWT_CLIENT_ID),
                ("token", token),
            ],
            false,
        )
    }

    /// The token endpoint's answer for `grant_type=client_credentials` as [`PKJWT_CLIENT_ID`],
    /// authenticated with `client_assertion` (`aud` e.g. the token endpoint).
    pub fn token_response_with_assertion(
        &self,
        resource: &str,
        scope: &str,
        client_assertion: &str,
    ) -> Response {
        let path = self.token_endpoint();
        self.post_form(
            self.path_of(&path),
            &[
                ("grant_type", "client_credentials"),
                ("resource", resource),
                ("scope", scope),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", client_assertion),
                ("client_id", PKJWT_CLIENT_ID),
            ],
            false,
        )
    }

    /// Revokes an opaque `token` at the provider.
    pub fn revoke(&self, token: &str) {
        let path = self.revocation_endpoint();
        let response = self.post_form(self.path_of(&path), &[("token", token)], true);
        assert_eq!(response.status, 200, "revocation failed: {}", response.body);
    }

    fn control(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let response = self
            .request(
                method,
                path,
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{method} {path} on the OpenID provider: {e}"));
        response.ok_json()
    }

    /// Publishes a new RSA and a new EC key first in the JWKS (new tokens are signed with
    /// them) and keeps the old ones published.
    pub fn rotate(&self) -> Rotation {
        let body = self.control("POST", "/__control/rotate", None);
        Rotation {
            new_kids: strings(&body["new_kids"]),
            old_kids: strings(&body["old_kids"]),
            published_kids: strings(&body["published_kids"]),
        }
    }

    /// Drops all but the newest key of each type from the JWKS; returns the kids still published.
    pub fn retire(&self) -> Vec<String> {
        strings(&self.control("POST", "/__control/retire", None)["published_kids"])
    }

    /// The kids published now, in JWKS order (does not count as a JWKS request).
    pub fn published_kids(&self) -> Vec<String> {
        strings(&self.control("GET", "/__control/keys", None)["published_kids"])
    }

    /// The kid that RS256 tokens are signed with now.
    pub fn rsa_kid(&self) -> String {
        self.control("GET", "/__control/keys", None)["rsa_kid"]
            .as_str()
            .expect("rsa_kid")
            .to_owned()
    }

    /// The kid that ES256 tokens are signed with now.
    pub fn ec_kid(&self) -> String {
        self.control("GET", "/__control/keys", None)["ec_kid"]
            .as_str()
            .expect("ec_kid")
            .to_owned()
    }

    /// The request log: `{"counts":{path:n},"jwks_requests":n,"jwks_request_times_ms":[..],
    /// "total":n}` (control requests are not counted).
    pub fn request_log(&self) -> Value {
        self.control("GET", "/__control/log", None)
    }

    /// How many JWKS requests the provider got since start, restart or [`Self::reset_log`].
    pub fn jwks_requests(&self) -> usize {
        let log = self.request_log();
        log["jwks_requests"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or_else(|| panic!("log without jwks_requests: {log}"))
    }

    /// When the recent JWKS requests came (milliseconds since the epoch, oldest first).
    pub fn jwks_request_times_ms(&self) -> Vec<u64> {
        let log = self.request_log();
        log["jwks_request_times_ms"]
            .as_array()
            .unwrap_or_else(|| panic!("log without jwks_request_times_ms: {log}"))
            .iter()
            .map(|t| t.as_u64().expect("a timestamp"))
            .collect()
    }

    /// How many requests a path got (e.g. "/token", "/.well-known/openid-configuration").
    pub fn requests_to(&self, path: &str) -> usize {
        self.request_log()["counts"][path]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
    }

    /// Zeroes the request log.
    pub fn reset_log(&self) {
        self.control("POST", "/__control/log/reset", None);
    }

    /// Makes the JWKS endpoint serve, fail, or hang.
    pub fn set_jwks_mode(&self, mode: JwksMode) {
        self.set_jwks_behaviour(mode, 0, None);
    }

    /// [`Self::set_jwks_mode`] with a delay before each JWKS answer and, for normal answers,
    /// a `Cache-Control` header (oidc-provider sends none of its own).
    pub fn set_jwks_behaviour(&self, mode: JwksMode, delay_ms: u64, cache_control: Option<&str>) {
        let mut body = json!({"mode": mode.name(), "delay_ms": delay_ms});
        if let Some(cache_control) = cache_control {
            body["cache_control"] = json!(cache_control);
        }
        self.control("POST", "/__control/jwks-mode", Some(body));
    }

    /// The lifetime of access tokens issued from now on (the default is 600 s, or `--ttl`).
    pub fn set_token_ttl(&self, seconds: u64) {
        self.control("POST", "/__control/ttl", Some(json!({"seconds": seconds})));
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("not an array of strings: {value}"))
        .iter()
        .map(|s| s.as_str().expect("a string").to_owned())
        .collect()
}

/// An HTTP answer.
#[derive(Clone, Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked).
    pub body: String,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; panics when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {:?}",
                self.status,
                self.body.chars().take(500).collect::<String>()
            )
        })
    }

    /// The body as JSON; panics unless the status is 200.
    pub fn ok_json(&self) -> Value {
        assert_eq!(self.status, 200, "unexpected status; body: {}", self.body);
        self.json()
    }
}

/// A minimal blocking HTTP/1.1 request over TCP (`Connection: close`), reading the whole answer.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid(format!("no end of headers in {} bytes", raw.len())))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    } else if let Some(length) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(length);
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("truncated chunk size".to_owned()))?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|e| invalid(format!("bad chunk size {size_text:?}: {e}")))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err(invalid("truncated chunk".to_owned()));
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

/// `application/x-www-form-urlencoded` encoding of `pairs`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Standard base64 with padding (for HTTP Basic credentials).
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// base64url without padding (JWT segments, JWK members).
pub fn base64url_encode(bytes: &[u8]) -> String {
    base64_encode(bytes)
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect()
}

/// Decodes base64url without padding (JWT segments); `None` if it is not.
pub fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn jwt_segment(token: &str, index: usize) -> Value {
    let segment = token
        .split('.')
        .nth(index)
        .unwrap_or_else(|| panic!("not a JWT: {token:?}"));
    let bytes = base64url_decode(segment).unwrap_or_else(|| panic!("not base64url: {segment:?}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT segment is not JSON: {e}"))
}

/// A JWT's protected header (unverified).
pub fn jwt_header(token: &str) -> Value {
    jwt_segment(token, 0)
}

/// A JWT's claims (unverified).
pub fn jwt_claims(token: &str) -> Value {
    jwt_segment(token, 1)
}

/// The kids of a JWKS document, in order.
pub fn jwks_kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap_or_else(|| panic!("not a JWKS: {jwks}"))
        .iter()
        .map(|k| k["kid"].as_str().expect("a kid").to_owned())
        .collect()
}
