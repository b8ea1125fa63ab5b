//! Tokens from a file (`run --tokens-file FILE`): compact JWTs, one per line, that the harness
//! did not sign (a real identity provider's, or `prepare --tokens-out`'s). They are sent
//! round-robin, every one expected to be allowed. With `--tokens-reload-ms N` the file is
//! re-read every N ms while the load runs, so tokens appended to it (say, minted after a key
//! rotation at the provider) join the rotation.
//!
//! Requests are counted per *source*: the `kid` and `alg` of the token's (unverified) header,
//! and whether the token was in the file at the start or arrived with a re-read. That is how
//! a report shows that tokens of a new key were sent, and allowed.

use crate::load::envoy_check_request;
use crate::scenario::RpcKind;
use crate::wire::batch_entry;
use anyhow::{Context, anyhow};
use prost::Message;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};
use tonic::codegen::Bytes;

/// Most sources (kid, alg, start or added) told apart; further ones are counted as one.
pub const MAX_SOURCES: usize = 64;

/// One token of the rotation, with its pre-encoded request.
#[derive(Debug, Clone)]
struct FileToken {
    text: Arc<str>,
    /// The encoded `CheckRequest` (Check) or `VerifyBatchRequest` entry (VerifyBatch).
    body: Bytes,
    /// Its index in the sources.
    source: u32,
}

/// Where a group of tokens came from.
#[derive(Debug, Clone)]
struct Source {
    kid: String,
    alg: String,
    added: bool,
    loaded_at_s: f64,
}

/// What the re-reads keep between ticks.
#[derive(Debug, Default)]
struct ReloadState {
    sources: Vec<Source>,
    initial_tokens: usize,
    reloads: u64,
    reload_errors: u64,
    last_error: Option<String>,
    /// Length and modification time of the file as last read in full.
    stamp: Option<(u64, Option<SystemTime>)>,
    /// A last line without its newline seen by the previous re-read (taken once it repeats).
    pending_tail: Option<String>,
}

/// The tokens of a file, shared by every stream, re-read on demand.
pub struct TokenFile {
    path: PathBuf,
    rpc: RpcKind,
    reload_every: Option<Duration>,
    opened: Instant,
    rotation: RwLock<Arc<Vec<FileToken>>>,
    cursor: AtomicU64,
    state: Mutex<ReloadState>,
}

impl fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenFile")
            .field("path", &self.path)
            .field("tokens", &self.len())
            .field("reload_every", &self.reload_every)
            .finish_non_exhaustive()
    }
}

/// Requests of one source over the measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SourceCount {
    /// Tokens of this source sent in measured requests (answered or not).
    pub requests: u64,
    /// Of those, allowed.
    pub allowed: u64,
}

/// One source in the report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenSource {
    /// The header's `kid` (`""` when it has none).
    pub kid: String,
    /// The header's `alg` (`""` when unreadable).
    pub alg: String,
    /// True for tokens that were not in the file at the start (they came with a re-read).
    pub added: bool,
    /// When the first token of this source was read, in seconds after the file was opened.
    pub loaded_at_s: f64,
    /// Its tokens in the rotation at the end.
    pub tokens: usize,
    /// Its tokens sent in measured requests.
    pub requests: u64,
    /// Of those, allowed (the rest were denied or got no answer).
    pub allowed: u64,
}

/// The tokens file part of a report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenFileSummary {
    /// The file.
    pub path: String,
    /// `--tokens-reload-ms`, if the file was re-read.
    pub reload_ms: Option<u64>,
    /// Tokens at the start.
    pub initial_tokens: usize,
    /// Tokens in the rotation at the end.
    pub tokens: usize,
    /// Re-reads that changed the rotation.
    pub reloads: u64,
    /// Re-reads that failed (the rotation was kept as it was).
    pub reload_errors: u64,
    /// The last of those failures.
    pub last_reload_error: Option<String>,
    /// Measured requests carrying a token that was not in the file at the start.
    pub added_requests: u64,
    /// Requests by source.
    pub sources: Vec<TokenSource>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The non-blank lines of `text`, trimmed; the last line is left out when it lacks its newline
/// and `keep_tail` is false (it is returned apart).
fn split_lines(text: &str, keep_tail: bool) -> (Vec<&str>, Option<&str>) {
    let (complete, tail) = match text.rfind('\n') {
        _ if keep_tail => (text, None),
        Some(end) => (&text[..end], Some(&text[end + 1..])),
        None => ("", Some(text)),
    };
    let tail = tail.map(str::trim).filter(|t| !t.is_empty());
    let lines = complete
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    (lines, tail)
}

/// The `kid` and `alg` of a compact JWT's header, without verifying anything.
pub fn header_kid_alg(token: &str) -> (String, String) {
    let header = token
        .split('.')
        .next()
        .and_then(|h| verdict::jose::b64::decode(h.as_bytes()))
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok());
    let field = |name: &str| {
        header
            .as_ref()
            .and_then(|h| h.get(name))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    (field("kid"), field("alg"))
}

impl TokenFile {
    /// Reads `path` (one token per line, blank lines ignored) and encodes every token's
    /// request for `rpc`; `reload_every` is how often the load engine re-reads it.
    pub fn open(
        path: &Path,
        rpc: RpcKind,
        reload_every: Option<Duration>,
    ) -> anyhow::Result<TokenFile> {
        let file = TokenFile {
            path: path.to_owned(),
            rpc,
            reload_every,
            opened: Instant::now(),
            rotation: RwLock::new(Arc::new(Vec::new())),
            cursor: AtomicU64::new(0),
            state: Mutex::new(ReloadState::default()),
        };
        let stamp = file
            .stamp()
            .with_context(|| format!("reading {}", path.display()))?;
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let (lines, _) = split_lines(&text, true);
        if lines.is_empty() {
            return Err(anyhow!(
                "{} holds no token (one compact JWT per line)",
                path.display()
            ));
        }
        let mut state = lock(&file.state);
        let tokens = file.encode(&lines, &HashMap::new(), false, &mut state);
        state.initial_tokens = tokens.len();
        state.stamp = Some(stamp);
        drop(state);
        *file
            .rotation
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(tokens);
        Ok(file)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How often the load engine re-reads the file (`None`: never).
    pub fn reload_every(&self) -> Option<Duration> {
        self.reload_every
    }

    /// Tokens in the rotation now.
    pub fn len(&self) -> usize {
        self.current().len()
    }

    /// True when the rotation is empty (never, once opened).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn current(&self) -> Arc<Vec<FileToken>> {
        Arc::clone(&self.rotation.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn stamp(&self) -> std::io::Result<(u64, Option<SystemTime>)> {
        let meta = std::fs::metadata(&self.path)?;
        Ok((meta.len(), meta.modified().ok()))
    }

    /// The next token, round-robin over the rotation: its encoded request and its source.
    pub fn pick(&self) -> (Bytes, u32) {
        let rotation = self.rotation.read().unwrap_or_else(PoisonError::into_inner);
        let n = self.cursor.fetch_add(1, Ordering::Relaxed);
        let len = rotation.len().max(1) as u64;
        let at = usize::try_from(n % len).unwrap_or(0);
        match rotation.get(at) {
            Some(token) => (token.body.clone(), token.source),
            None => (Bytes::new(), 0),
        }
    }

    /// How many sources there are so far (the load engine sizes its counters by it).
    pub fn source_count(&self) -> usize {
        lock(&self.state).sources.len()
    }

    /// Encodes `lines`, reusing the requests of tokens already in `known`.
    fn encode(
        &self,
        lines: &[&str],
        known: &HashMap<&str, &FileToken>,
        added: bool,
        state: &mut ReloadState,
    ) -> Vec<FileToken> {
        let loaded_at_s = self.opened.elapsed().as_secs_f64();
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                if let Some(token) = known.get(line) {
                    return (*token).clone();
                }
                let (kid, alg) = header_kid_alg(line);
                let found = state
                    .sources
                    .iter()
                    .position(|s| s.kid == kid && s.alg == alg && s.added == added);
                let source = match found {
                    Some(at) => at,
                    None if state.sources.len() < MAX_SOURCES => {
                        state.sources.push(Source {
                            kid,
                            alg,
                            added,
                            loaded_at_s,
                        });
                        state.sources.len() - 1
                    }
                    // Past the cap, tokens of further sources count with the last one.
                    None => state.sources.len() - 1,
                };
                let body = match self.rpc {
                    RpcKind::Check => {
                        Bytes::from(envoy_check_request(Some(line), i as u64).encode_to_vec())
                    }
                    RpcKind::VerifyBatch => batch_entry(line),
                };
                FileToken {
                    text: Arc::from(*line),
                    body,
                    source: u32::try_from(source).unwrap_or(u32::MAX),
                }
            })
            .collect()
    }

    /// Re-reads the file if it changed since the last read and makes its tokens the rotation
    /// (tokens already known keep their encoded request and source). A last line without its
    /// newline waits for the next re-read unless it is the same as on the previous one (it may
    /// be an append in progress); an unreadable or empty file keeps the rotation as it is and
    /// counts as a reload error. True when the rotation changed.
    pub fn reload(&self) -> bool {
        let mut state = lock(&self.state);
        let stamp = match self.stamp() {
            Ok(stamp) => stamp,
            Err(e) => {
                state.reload_errors += 1;
                state.last_error = Some(format!("{}: {e}", self.path.display()));
                return false;
            }
        };
        if state.stamp == Some(stamp) {
            return false;
        }
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) => {
                state.reload_errors += 1;
                state.last_error = Some(format!("{}: {e}", self.path.display()));
                return false;
            }
        };
        let (mut lines, tail) = split_lines(&text, false);
        let settled = match tail {
            Some(tail) if state.pending_tail.as_deref() == Some(tail) => {
                lines.push(tail);
                state.pending_tail = None;
                true
            }
            Some(tail) => {
                state.pending_tail = Some(tail.to_owned());
                false
            }
            None => {
                state.pending_tail = None;
                true
            }
        };
        if lines.is_empty() {
            if settled {
                // Counted once per change of the file, not once per tick.
                state.stamp = Some(stamp);
            }
            state.reload_errors += 1;
            state.last_error = Some(format!(
                "{} held no token when re-read: the rotation was kept",
                self.path.display()
            ));
            return false;
        }
        if settled {
            // Otherwise read it in full again next time, to settle the last line.
            state.stamp = Some(stamp);
        }
        let current = self.current();
        let unchanged = current.len() == lines.len()
            && current
                .iter()
                .zip(&lines)
                .all(|(token, line)| &*token.text == *line);
        if unchanged {
            return false;
        }
        let known: HashMap<&str, &FileToken> = current.iter().map(|t| (&*t.text, t)).collect();
        let tokens = self.encode(&lines, &known, true, &mut state);
        state.reloads += 1;
        *self
            .rotation
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(tokens);
        true
    }

    /// The report's part: the file, its re-reads, and `counts` (indexed by source).
    pub fn summary(&self, counts: &[SourceCount]) -> TokenFileSummary {
        let state = lock(&self.state);
        let current = self.current();
        let mut sources: Vec<TokenSource> = state
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let count = counts.get(i).copied().unwrap_or_default();
                TokenSource {
                    kid: s.kid.clone(),
                    alg: s.alg.clone(),
                    added: s.added,
                    loaded_at_s: s.loaded_at_s,
                    tokens: current
                        .iter()
                        .filter(|t| usize::try_from(t.source).ok() == Some(i))
                        .count(),
                    requests: count.requests,
                    allowed: count.allowed,
                }
            })
            .collect();
        sources.sort_by(|a, b| (a.added, &a.kid, &a.alg).cmp(&(b.added, &b.kid, &b.alg)));
        TokenFileSummary {
            path: self.path.display().to_string(),
            reload_ms: self
                .reload_every
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            initial_tokens: state.initial_tokens,
            tokens: current.len(),
            reloads: state.reloads,
            reload_errors: state.reload_errors,
            last_reload_error: state.last_error.clone(),
            added_requests: sources.iter().filter(|s| s.added).map(|s| s.requests).sum(),
            sources,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn jwt(kid: &str, alg: &str, n: u32) -> String {
        let b64 = verdict::jose::b64::encode;
        format!(
            "{}.{}.c2ln",
            b64(format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"at+jwt"}}"#).as_bytes()),
            b64(format!(r#"{{"n":{n}}}"#).as_bytes())
        )
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "verdict-load-tokens-file-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("scratch");
        dir.join("tokens.txt")
    }

    #[test]
    fn lines_and_tails() {
        assert_eq!(
            split_lines("a\n\n b \r\nc", true),
            (vec!["a", "b", "c"], None)
        );
        assert_eq!(split_lines("a\n\nb\nc", false), (vec!["a", "b"], Some("c")));
        assert_eq!(split_lines("a\nb\n", false), (vec!["a", "b"], None));
        assert_eq!(split_lines("a\nb\n  ", false), (vec!["a", "b"], None));
        assert_eq!(split_lines("x", false), (vec![], Some("x")));
        let (kid, alg) = header_kid_alg(&jwt("k1", "ES256", 1));
        assert_eq!((kid.as_str(), alg.as_str()), ("k1", "ES256"));
        assert_eq!(header_kid_alg("opaque"), (String::new(), String::new()));
    }

    #[test]
    fn round_robin_and_appended_tokens_join() {
        let path = scratch("append");
        std::fs::write(
            &path,
            format!("{}\n\n{}\n", jwt("old", "RS256", 1), jwt("old", "RS256", 2)),
        )
        .expect("write");
        assert!(
            TokenFile::open(
                &scratch("empty-missing").with_extension("none"),
                RpcKind::Check,
                None
            )
            .is_err()
        );
        let file =
            TokenFile::open(&path, RpcKind::Check, Some(Duration::from_millis(10))).expect("opens");
        assert_eq!(file.len(), 2);
        let picks: Vec<Bytes> = (0..4).map(|_| file.pick().0).collect();
        assert_eq!(picks[0], picks[2]);
        assert_ne!(picks[0], picks[1]);
        assert!(!file.reload(), "unchanged");

        // An append in two writes: the unterminated line waits for the next re-read.
        let mut out = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("append");
        let new = jwt("new", "ES256", 3);
        out.write_all(&new.as_bytes()[..10]).expect("append");
        out.flush().expect("flush");
        assert!(!file.reload(), "a partial line is not taken at once");
        out.write_all(format!("{}\n", &new[10..]).as_bytes())
            .expect("append");
        out.flush().expect("flush");
        assert!(file.reload());
        assert_eq!(file.len(), 3);
        let sources: Vec<u32> = (0..3).map(|_| file.pick().1).collect();
        let mut counts = vec![SourceCount::default(); file.source_count()];
        for s in sources {
            if let Some(c) = counts.get_mut(s as usize) {
                c.requests += 1;
                c.allowed += 1;
            }
        }
        let summary = file.summary(&counts);
        assert_eq!(summary.initial_tokens, 2);
        assert_eq!(summary.tokens, 3);
        assert_eq!(summary.reloads, 1);
        assert_eq!(summary.added_requests, 1);
        let added: Vec<&TokenSource> = summary.sources.iter().filter(|s| s.added).collect();
        assert_eq!(added.len(), 1);
        assert_eq!(
            (added[0].kid.as_str(), added[0].alg.as_str()),
            ("new", "ES256")
        );
        assert_eq!((added[0].tokens, added[0].requests), (1, 1));

        // A file emptied (e.g. being rewritten) keeps the rotation.
        std::fs::write(&path, "").expect("truncate");
        assert!(!file.reload());
        assert_eq!(file.len(), 3);
        assert_eq!(file.summary(&counts).reload_errors, 1);
        let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
    }
}
