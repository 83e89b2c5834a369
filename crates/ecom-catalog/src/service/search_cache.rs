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
//! Concurrent searches for the same text share one read, and while one search reads a
//! text's matches again the others keep using the previous read; the cache holds at most
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

#[derive(Default)]
struct Slot {
    /// The latest matches read, and when their read began.
    ready: Option<(Instant, Arc<Matches>)>,
    /// A read in flight, shared by the searches that must wait for it.
    pending: Option<Arc<OnceCell<Arc<Matches>>>>,
}

/// What a search does with a slot.
enum Use {
    Ready(Arc<Matches>),
    Wait(Arc<OnceCell<Arc<Matches>>>),
}

impl SearchCache {
    /// The matches of `search`, read by `load` unless a read younger than `reuse` exists.
    /// While one search reads them again, the others keep using the previous read (at
    /// most twice `reuse` old), so only that one search waits; with nothing usable they
    /// all wait for the same read. A failed read is not kept.
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
        let cell = match self.use_of(search, reuse) {
            Use::Ready(matches) => return Ok(matches),
            Use::Wait(cell) => cell,
        };
        let began = Instant::now();
        let mut loaded_here = false;
        let matches = cell
            .get_or_try_init(|| async {
                loaded_here = true;
                load().await.map(Arc::new)
            })
            .await?
            .clone();
        if loaded_here {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = slots.get_mut(search)
                && slot.pending.as_ref().is_some_and(|p| Arc::ptr_eq(p, &cell))
            {
                slot.ready = Some((began, matches.clone()));
                slot.pending = None;
            }
        }
        Ok(matches)
    }

    fn use_of(&self, search: &str, reuse: Duration) -> Use {
        let now = Instant::now();
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if !slots.contains_key(search) {
            slots.retain(|_, slot| {
                slot.pending.is_some()
                    || slot
                        .ready
                        .as_ref()
                        .is_some_and(|(since, _)| now.duration_since(*since) < 2 * reuse)
            });
            if slots.len() >= MAX_SEARCHES
                && let Some(oldest) = slots
                    .iter()
                    .filter(|(_, slot)| slot.pending.is_none())
                    .min_by_key(|(_, slot)| slot.ready.as_ref().map(|(since, _)| *since))
                    .map(|(text, _)| text.clone())
            {
                slots.remove(&oldest);
            }
        }
        let slot = slots.entry(search.to_string()).or_default();
        let age = slot
            .ready
            .as_ref()
            .map(|(since, _)| now.duration_since(*since));
        match (&slot.ready, age, &slot.pending) {
            (Some((_, matches)), Some(age), _) if age < reuse => Use::Ready(matches.clone()),
            (Some((_, matches)), Some(age), Some(_)) if age < 2 * reuse => {
                Use::Ready(matches.clone())
            }
            (_, _, Some(pending)) => Use::Wait(pending.clone()),
            _ => {
                let pending = Arc::new(OnceCell::new());
                slot.pending = Some(pending.clone());
                Use::Wait(pending)
            }
        }
    }

    /// Forgets every search: a product was written through this replica.
    pub fn clear(&self) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
