//! Connections to the fleet's Redis: the URL from `[fleet]`, the ACL user and password added
//! from their own keys (so neither is ever part of a string that gets logged), TLS for
//! `rediss://` through rustls, and bounded timeouts; plus the retry backoff.

use crate::config::FleetConfig;
use redis::IntoConnectionInfo;
use redis::aio::MultiplexedConnection;
use std::time::Duration;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long any reply may take beyond the `XREAD BLOCK` wait.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens connections to the configured Redis.
#[derive(Clone)]
pub struct Connector {
    client: redis::Client,
    /// The URL without credentials, for log lines.
    pub shown: String,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("redis", &self.shown)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Builds the client from `[fleet]` (reading the password now, so a missing file fails the
    /// start rather than every reconnect).
    pub fn new(config: &FleetConfig) -> Result<Connector, String> {
        let url = config
            .redis_url
            .as_deref()
            .ok_or_else(|| "fleet.redis_url is not set".to_owned())?;
        let info = url
            .into_connection_info()
            .map_err(|e| format!("fleet.redis_url: {e}"))?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &config.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = config.password()? {
            settings = settings.set_password(password);
        }
        let info = info.set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(|e| format!("fleet.redis_url: {e}"))?;
        Ok(Connector {
            client,
            shown: url.to_owned(),
        })
    }

    /// One new multiplexed connection.
    pub async fn connect(&self) -> redis::RedisResult<MultiplexedConnection> {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

/// Exponential backoff with jitter: 100 ms doubling to 5 s.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: Self::FIRST }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(5);

    /// The wait before the next attempt (grown for the one after).
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        // Up to a quarter more, so a fleet does not reconnect in lockstep after Redis returns.
        let mut byte = [0u8; 1];
        let _ = aws_lc_rs::rand::fill(&mut byte);
        wait + wait / 4 * u32::from(byte[0]) / 255
    }

    /// After a success: start again from the shortest wait.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_and_resets() {
        let mut backoff = Backoff::default();
        let first = backoff.next_wait();
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(125));
        for _ in 0..10 {
            backoff.next_wait();
        }
        let capped = backoff.next_wait();
        assert!(capped >= Backoff::MAX && capped <= Backoff::MAX * 5 / 4);
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_millis(125));
    }
}
