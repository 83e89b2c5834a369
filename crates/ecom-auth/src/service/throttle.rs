//! Login throttling: a sliding window of failures per email and per client address.
//!
//! In memory by default; the [`LoginThrottle`] trait lets a shared store replace it
//! when several replicas run. A success clears the email's failures, and nobody is
//! locked out longer than the window.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many failures a key may have within the window.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max_failures: usize,
    pub window: Duration,
}

/// The limits for emails and for client addresses.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    pub per_email: Limit,
    pub per_address: Limit,
}

impl Default for ThrottleLimits {
    fn default() -> Self {
        Self {
            per_email: Limit {
                max_failures: 5,
                window: Duration::from_secs(300),
            },
            per_address: Limit {
                max_failures: 30,
                window: Duration::from_secs(300),
            },
        }
    }
}

/// Counts failed logins.
pub trait LoginThrottle: Send + Sync {
    /// `Err(retry_after)` when either key is over its limit.
    fn check(&self, email: &str, address: &str) -> Result<(), Duration>;
    fn record_failure(&self, email: &str, address: &str);
    /// A successful login clears the email's failures.
    fn record_success(&self, email: &str);
}

/// The in-memory sliding window.
pub struct MemoryThrottle {
    limits: ThrottleLimits,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl MemoryThrottle {
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn retry_after(
        &self,
        map: &mut HashMap<String, VecDeque<Instant>>,
        key: &str,
        limit: Limit,
        now: Instant,
    ) -> Option<Duration> {
        let times = map.get_mut(key)?;
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= limit.window)
        {
            times.pop_front();
        }
        if times.len() < limit.max_failures {
            return None;
        }
        let oldest = *times.front()?;
        Some(limit.window.saturating_sub(now.duration_since(oldest)))
    }
}

impl LoginThrottle for MemoryThrottle {
    fn check(&self, email: &str, address: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let by_email = self.retry_after(
            &mut map,
            &format!("email:{email}"),
            self.limits.per_email,
            now,
        );
        let by_address = self.retry_after(
            &mut map,
            &format!("addr:{address}"),
            self.limits.per_address,
            now,
        );
        match by_email.into_iter().chain(by_address).max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    fn record_failure(&self, email: &str, address: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Forget keys whose failures have all aged out, so memory stays bounded.
        if map.len() > 10_000 {
            let window = self
                .limits
                .per_email
                .window
                .max(self.limits.per_address.window);
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < window)
            });
        }
        for (key, limit) in [
            (format!("email:{email}"), self.limits.per_email),
            (format!("addr:{address}"), self.limits.per_address),
        ] {
            let times = map.entry(key).or_default();
            times.push_back(now);
            while times.len() > limit.max_failures {
                times.pop_front();
            }
        }
    }

    fn record_success(&self, email: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("email:{email}"));
    }
}
