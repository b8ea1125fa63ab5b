//! Running the real `verdict-load` from integration tests: build it, wait for it, read its
//! pipes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest `cargo build -p verdict-load` may take (a cold build of the harness on 2 cores).
pub const BUILD_LIMIT: Duration = Duration::from_secs(900);

/// Runs `child` to completion within `limit`, killing it if it overruns.
pub fn wait_child(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `verdict-load` from the same target directory as this test binary, (re)built first with
/// `cargo build -p verdict-load` (a no-op when it is up to date): integration tests of the root
/// crate get no `CARGO_BIN_EXE_` for another package's binary.
pub fn verdict_load_bin() -> PathBuf {
    // target/<profile>/deps/rotation_load-<hash> → target/<profile>
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "-p", "verdict-load", "--bin", "verdict-load"])
        .current_dir(super::repo())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => {}
        Some("release") => {
            command.arg("--release");
        }
        Some(profile) => {
            command.args(["--profile", profile]);
        }
    }
    let mut child = command.spawn().expect("run cargo build -p verdict-load");
    let stderr = reader(child.stderr.take().map(|p| Box::new(p) as _));
    let status = wait_child(&mut child, BUILD_LIMIT, "cargo build -p verdict-load");
    let stderr = stderr.join().expect("stderr reader");
    assert!(
        status.success(),
        "cargo build -p verdict-load failed ({status}):\n{stderr}"
    );
    let bin = profile_dir.join("verdict-load");
    assert!(bin.is_file(), "no {} after cargo build", bin.display());
    bin
}

/// Reads a pipe to its end on a thread.
pub fn reader(pipe: Option<Box<dyn Read + Send>>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}
