//! Text matches of recent searches, reused by one replica for `SEARCH_CACHE_SECONDS`.
//!
//! Finding and ranking a popular word's matches costs PostgreSQL tens of milliseconds at
//! 10^6 products (up to [`super::search::EXACT_TOTAL_CAP`] rows read and ranked), while
//! filtering, sorting and paging them costs microseconds. So a replica keeps each search's
//! matches for a few seconds and only reads the products of the page it shows, fresh.
//!
//! What a shopper can see of that: the names, prices and stock shown are always current,
//! and a product whose current price, stock or category no longer passes the filters is
//! left off the page. For up to the reuse time, a new product or a renamed one may be
//! missing from (or linger in) a search's results, a restocked product may be missing
//! from `in_stock=true`, and the total may be off by such products. A product written
//! through this replica clears its matches at once.
//!
//! Concurrent searches for the same text share one load; the cache holds at most
//! [`MAX_SEARCHES`] texts, each at most the cap + 1 matches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::Result;
use super::search::Matches;

/// Search texts held at once; the oldest goes first.
const MAX_SEARCHES: usize = 32;

/// Recent searches' matches, by search text; one per app (see `ecom_catalog::module`).
#[derive(Default)]
pub struct SearchCache {
    slots: Mutex<HashMap<String, Slot>>,
}

struct Slot {
    since: Instant,
    matches: Arc<OnceCell<Arc<Matches>>>,
}

impl SearchCache {
    /// The matches of `search`, loaded by `load` unless a load younger than `reuse` exists
    /// or is in flight (then this waits for it). A failed load is not kept.
    pub(crate) async fn matches<F, Fut>(
        &self,
        search: &str,
        reuse: Duration,
        load: F,
    ) -> Result<Arc<Matches>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Matches>>,
    {
        if reuse.is_zero() {
            return Ok(Arc::new(load().await?));
        }
        let cell = self.slot(search, reuse);
        let matches = cell
            .get_or_try_init(|| async { load().await.map(Arc::new) })
            .await?;
        Ok(matches.clone())
    }

    /// The slot of `search`, a new one when it has none or its load is older than `reuse`.
    fn slot(&self, search: &str, reuse: Duration) -> Arc<OnceCell<Arc<Matches>>> {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(search)
            && now.duration_since(slot.since) < reuse
        {
            return slot.matches.clone();
        }
        slots.retain(|_, slot| now.duration_since(slot.since) < reuse);
        if slots.len() >= MAX_SEARCHES
            && let Some(oldest) = slots
                .iter()
                .min_by_key(|(_, slot)| slot.since)
                .map(|(text, _)| text.clone())
        {
            slots.remove(&oldest);
        }
        let matches = Arc::new(OnceCell::new());
        slots.insert(
            search.to_string(),
            Slot {
                since: now,
                matches: matches.clone(),
            },
        );
        matches
    }

    /// Forgets every search: a product was written through this replica.
    pub fn clear(&self) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
