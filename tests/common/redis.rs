//! A real `redis-server` (Debian package `redis-server`) on a free loopback port with no
//! persistence, for the fleet tests: started, stopped and started again (empty) on the same
//! port, killed on drop.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` the test owns.
pub struct Redis {
    /// Its address.
    pub addr: SocketAddr,
    child: Option<Child>,
    /// `Some((user, password))`: the default user is off and only this ACL user may connect.
    acl: Option<(String, String)>,
}

impl Redis {
    /// Starts one on a free port and waits until it answers `PING`.
    pub fn start() -> Redis {
        Redis::start_with(None)
    }

    /// Starts one whose only user is the ACL user `user` with `password` (the default user
    /// off), so a client must `AUTH user password`.
    pub fn start_with_acl(user: &str, password: &str) -> Redis {
        Redis::start_with(Some((user.to_owned(), password.to_owned())))
    }

    fn start_with(acl: Option<(String, String)>) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Redis {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
            acl,
        };
        redis.start_again();
        redis
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Starts it (again) on its port: empty, since nothing is persisted.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis-server is already running");
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.addr.port().to_string())
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"]);
        if let Some((user, password)) = &self.acl {
            command
                .args(["--user", "default", "off"])
                .args(["--user", user, "on"])
                .arg(format!(">{password}"))
                .args(["~*", "&*", "+@all"]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (Debian package redis-server; .ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.command(&["PING"]).as_deref() != Some("+PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it (SIGKILL: whatever it held is gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it and starts it again, empty.
    pub fn restart_empty(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Sends one command (arguments without spaces or CRLF) and returns the first reply line,
    /// `None` when it does not answer.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let encode = |args: &[&str]| {
            let mut request = format!("*{}\r\n", args.len());
            for arg in args {
                request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
            }
            request
        };
        let mut request = String::new();
        if let Some((user, password)) = &self.acl {
            request.push_str(&encode(&["AUTH", user, password]));
        }
        request.push_str(&encode(args));
        stream.write_all(request.as_bytes()).ok()?;
        let read_line = |stream: &mut TcpStream| -> Option<String> {
            let mut reply = Vec::new();
            let mut byte = [0u8; 1];
            while stream.read(&mut byte).ok()? == 1 {
                if byte[0] == b'\n' {
                    break;
                }
                reply.push(byte[0]);
            }
            let line = String::from_utf8_lossy(&reply).trim_end().to_owned();
            (!line.is_empty()).then_some(line)
        };
        if self.acl.is_some() && read_line(&mut stream)?.as_str() != "+OK" {
            return None;
        }
        read_line(&mut stream)
    }

    /// `XLEN stream`.
    pub fn xlen(&self, stream: &str) -> u64 {
        self.command(&["XLEN", stream])
            .and_then(|line| line.strip_prefix(':').and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    }

    /// The server's resident memory in bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_of(self.child.as_ref()?.id())
    }
}

/// A process's resident memory in bytes (`VmRSS` in `/proc/PID/status`).
pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
