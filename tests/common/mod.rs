//! Shared support for integration tests: start the real `verdict` binary with a config on
//! ephemeral loopback ports, talk to its admin listener, mint tokens with test keys.
#![allow(dead_code)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, RsaKeyPair};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch directory under the system temp dir (removed on drop).
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// Creates it.
    pub fn new(tag: &str) -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "verdict-{tag}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    /// Writes a file in it and returns its path.
    pub fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `verdict serve`.
pub struct Server {
    child: Child,
    /// The gRPC listener (ext_authz, verdict.v1, health, reflection).
    pub grpc: SocketAddr,
    /// The admin HTTP listener.
    pub admin: SocketAddr,
    logs: Arc<Mutex<String>>,
    /// The scratch dir holding the config (kept alive with the server).
    pub scratch: Scratch,
    /// The config file path (rewrite it and send SIGHUP to reload).
    pub config: PathBuf,
}

impl Server {
    /// Starts verdict with `config_toml` (listen addresses are forced to ephemeral loopback
    /// ports unless the config sets `[server]` itself) and waits until it serves.
    /// `files` are written next to the config first.
    pub fn start(config_toml: &str, files: &[(&str, &[u8])]) -> Server {
        Self::start_with_args(config_toml, files, &[])
    }

    /// [`Server::start`] with extra `serve` arguments.
    pub fn start_with_args(config_toml: &str, files: &[(&str, &[u8])], args: &[&str]) -> Server {
        let scratch = Scratch::new("server");
        for (name, contents) in files {
            scratch.write(name, contents);
        }
        let config_text = if config_toml.contains("[server]") {
            config_toml.to_owned()
        } else {
            format!(
                "[server]\ngrpc_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n{config_toml}"
            )
        };
        let config = scratch.write("verdict.toml", config_text.as_bytes());
        let mut child = Command::new(env!("CARGO_BIN_EXE_verdict"))
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .arg("--log-format")
            .arg("json")
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn verdict serve");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if line.contains("\"verdict serving\"") {
                    let _ = tx.send(line.clone());
                }
                let mut logs = sink.lock().expect("logs lock");
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "verdict did not start; logs:\n{}",
                    logs.lock().expect("logs lock")
                );
            }
        };
        let event: serde_json::Value = serde_json::from_str(&line).expect("json log line");
        let addr = |key: &str| -> SocketAddr {
            event[key]
                .as_str()
                .expect("address field")
                .parse()
                .expect("socket address")
        };
        Server {
            grpc: addr("grpc"),
            admin: addr("admin"),
            child,
            logs,
            scratch,
            config,
        }
    }

    /// `http://HOST:PORT` of the gRPC listener.
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Everything the server logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs lock").clone()
    }

    /// Sends a signal (e.g. "HUP", "TERM").
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits until the logs contain `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.logs().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// GET on the admin listener: (status, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(self.admin, path)
    }

    /// The value of a metric series (exact `name{labels}` text as exported), if present.
    pub fn metric(&self, series: &str) -> Option<f64> {
        let (_, body) = self.admin_get("/metrics");
        body.lines().find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).expect("connect admin");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("write request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    verdict::jose::b64::encode(bytes)
}

/// A signing key for tests, with its public JWK.
pub enum TestKey {
    /// RS256 with the repository's example key (kid `example-2026`).
    Rsa(RsaKeyPair, String),
    /// EdDSA.
    Ed25519(Ed25519KeyPair, String),
}

impl TestKey {
    /// The example RSA key whose public JWKS is tests/data/example/jwks.json.
    pub fn example_rsa() -> TestKey {
        let der = std::fs::read(repo().join("tests/data/keys/example-rs256.pk8")).expect("key");
        TestKey::Rsa(
            RsaKeyPair::from_pkcs8(&der).expect("pkcs8"),
            "example-2026".into(),
        )
    }

    /// A fresh Ed25519 key with the given kid.
    pub fn ed25519(kid: &str) -> TestKey {
        TestKey::Ed25519(Ed25519KeyPair::generate().expect("ed25519"), kid.into())
    }

    /// The public JWKS holding this key.
    pub fn jwks(&self) -> String {
        match self {
            TestKey::Rsa(..) => {
                std::fs::read_to_string(repo().join("tests/data/example/jwks.json"))
                    .expect("example jwks")
            }
            TestKey::Ed25519(key, kid) => format!(
                r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"{kid}","alg":"EdDSA","use":"sig","x":"{}"}}]}}"#,
                b64(key.public_key().as_ref())
            ),
        }
    }

    /// Signs `claims` into a compact JWT.
    pub fn mint(&self, claims: &serde_json::Value) -> String {
        let (alg, kid) = match self {
            TestKey::Rsa(_, kid) => ("RS256", kid),
            TestKey::Ed25519(_, kid) => ("EdDSA", kid),
        };
        let header = serde_json::json!({"alg": alg, "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = match self {
            TestKey::Rsa(key, _) => {
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input.as_bytes(),
                    &mut sig,
                )
                .expect("rsa sign");
                sig
            }
            TestKey::Ed25519(key, _) => key.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&signature))
    }
}

/// Standard claims for `issuer`/`audience`, valid for an hour.
pub fn claims(issuer: &str, audience: &str, sub: &str) -> serde_json::Value {
    let now = now();
    serde_json::json!({
        "iss": issuer, "aud": audience, "sub": sub,
        "scope": "orders:read orders:write",
        "iat": now, "exp": now + 3600,
    })
}

/// The example provider config (RS256 example key) with claim headers.
pub const EXAMPLE_PROVIDER: &str = r#"
[[providers]]
name = "corp"
issuer = "https://idp.example.com"
audiences = ["api://orders"]
jwks_file = "jwks.json"
algorithms = ["RS256", "ES256", "EdDSA"]
leeway_s = 30
claims_to_headers = { sub = "x-verdict-sub", scope = "x-verdict-scope" }
"#;

/// The example JWKS file contents.
pub fn example_jwks() -> Vec<u8> {
    std::fs::read(repo().join("tests/data/example/jwks.json")).expect("example jwks")
}

/// Path helper.
pub fn path(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}
