//! The fleet's durable local state, one small JSON file beside the revocation log: this
//! instance's id, the stream epoch it last saw, the last stream id it applied, and how far its
//! publish queue has been published. Written whole to a temporary file, fsynced and renamed, so
//! a crash leaves the old state or the new one.
//!
//! Losing a write is harmless: a stale cursor re-reads entries (deduplicated by id), a stale
//! published sequence publishes entries again (deduplicated by id too).

use super::wire::START;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// This instance's name on the stream.
    pub instance_id: String,
    /// The stream's epoch marker as last seen; `None` before the first connection.
    #[serde(default)]
    pub epoch: Option<String>,
    /// The last stream id applied.
    #[serde(default = "start")]
    pub cursor: String,
    /// Queue entries up to this sequence number are published.
    #[serde(default)]
    pub published_seq: u64,
}

fn start() -> String {
    START.to_owned()
}

/// Why the state cannot be read or written.
#[derive(Debug, thiserror::Error)]
#[error("fleet state {path}: {why}")]
pub struct StateError {
    path: PathBuf,
    why: String,
}

/// Loads the state at `path` (none = in memory only: a fresh state each start), creating a
/// fresh one when the file does not exist. `configured_id` (from `[fleet] instance_id`) wins
/// over a stored id.
pub fn load(path: Option<&Path>, configured_id: Option<&str>) -> Result<State, StateError> {
    let fresh = || State {
        instance_id: configured_id.map_or_else(generated_id, str::to_owned),
        epoch: None,
        cursor: start(),
        published_seq: 0,
    };
    let Some(path) = path else {
        return Ok(fresh());
    };
    let error = |why: String| StateError {
        path: path.to_owned(),
        why,
    };
    match std::fs::read(path) {
        Ok(bytes) => {
            let mut state: State =
                serde_json::from_slice(&bytes).map_err(|e| error(e.to_string()))?;
            if let Some(id) = configured_id {
                state.instance_id = id.to_owned();
            }
            Ok(state)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let state = fresh();
            save(Some(path), &state)?;
            Ok(state)
        }
        Err(e) => Err(error(e.to_string())),
    }
}

/// Writes `state` atomically (nothing when in memory only). One writer at a time (the caller
/// serialises): writers share the temporary file.
pub fn save(path: Option<&Path>, state: &State) -> Result<(), StateError> {
    let Some(path) = path else {
        return Ok(());
    };
    let error = |why: String| StateError {
        path: path.to_owned(),
        why,
    };
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let bytes = serde_json::to_vec(state).map_err(|e| error(e.to_string()))?;
    let mut file = std::fs::File::create(&temporary).map_err(|e| error(e.to_string()))?;
    file.write_all(&bytes)
        .and_then(|()| file.sync_data())
        .map_err(|e| error(e.to_string()))?;
    std::fs::rename(&temporary, path).map_err(|e| error(e.to_string()))
}

/// A fresh instance id: `vd-` and 12 random hex digits.
fn generated_id() -> String {
    random_hex("vd-")
}

/// A fresh value for the stream's epoch marker.
pub fn fresh_epoch() -> String {
    random_hex("ep-")
}

fn random_hex(prefix: &str) -> String {
    let mut bytes = [0u8; 6];
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        // Unique rather than secret: the process id and time do when the RNG fails.
        let seed = u64::from(std::process::id())
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        bytes.copy_from_slice(&seed.to_be_bytes()[2..]);
    }
    let mut id = String::from(prefix);
    for byte in bytes {
        id.push_str(&format!("{byte:02x}"));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_survives_a_restart_and_the_configured_id_wins() {
        let dir = std::env::temp_dir().join(format!("verdict-fleet-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("revocations.log.fleet-state");
        let _ = std::fs::remove_file(&path);
        let mut state = load(Some(&path), None).expect("fresh");
        assert!(state.instance_id.starts_with("vd-"));
        assert_eq!(state.cursor, START);
        state.cursor = "1700000000000-3".into();
        state.epoch = Some("e1".into());
        state.published_seq = 9;
        save(Some(&path), &state).expect("save");
        assert_eq!(load(Some(&path), None).expect("again"), state);
        let named = load(Some(&path), Some("gw-1")).expect("named");
        assert_eq!(named.instance_id, "gw-1");
        assert_eq!(named.cursor, state.cursor);
        std::fs::write(&path, b"{not json").expect("write");
        assert!(load(Some(&path), None).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
