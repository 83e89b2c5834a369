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
//! text's matches again the others keep using the previous read, however long that read
//! takes (up to [`READ_PATIENCE`]): under load PostgreSQL gives the read its share of the
//! cores, and at 10^6 products a read of 0.3 s took seconds; when the previous read expired
//! meanwhile, every search waited for it (search p99 65–112 ms against 20 ms). The cache
//! holds at most [`MAX_SEARCHES`] texts, each at most the cap + 1 matches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use super::Result;
use super::search::Matches;

/// Search texts held at once; the oldest goes first.
const MAX_SEARCHES: usize = 32;

/// How long searches keep answering from the previous read while a read of the same text
/// is in flight; after that they wait for it. A read whose request went away is forgotten at
/// once, so this bounds only a database too slow to answer.
const READ_PATIENCE: Duration = Duration::from_secs(30);

/// Recent searches' matches, by search text; one per app (see `ecom_catalog::module`).
#[derive(Default)]
pub struct SearchCache {
    slots: Mutex<HashMap<String, Slot>>,
}

#[derive(Default)]
struct Slot {
    /// The latest matches read, and when their read finished: counting from then, a slow
    /// read is not followed at once by the next one.
    ready: Option<(Instant, Arc<Matches>)>,
    /// A read in flight, shared by the searches that must wait for it.
    pending: Option<Reading>,
}

/// A read of a text's matches in flight, and when it began.
struct Reading {
    began: Instant,
    cell: Arc<OnceCell<Arc<Matches>>>,
}

/// Forgets a read in flight that did not finish (its request went away, or it failed), so
/// that the next search reads again instead of waiting on it or using old matches.
struct Unfinished<'a> {
    cache: &'a SearchCache,
    search: &'a str,
    cell: &'a Arc<OnceCell<Arc<Matches>>>,
    finished: bool,
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.cache.forget_reading(self.search, self.cell);
        }
    }
}

/// What a search does with a slot.
enum Use {
    Ready(Arc<Matches>),
    Wait(Arc<OnceCell<Arc<Matches>>>),
}

impl SearchCache {
    /// The matches of `search`, read by `load` unless a read finished less than `reuse` ago.
    /// While one search reads them again, the others keep using the previous read (for up
    /// to [`READ_PATIENCE`]), so only that one search waits; with nothing usable they all
    /// wait for the same read. A failed read is not kept.
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
        let mut loaded_here = false;
        let matches = cell
            .get_or_try_init(|| async {
                loaded_here = true;
                let mut unfinished = Unfinished {
                    cache: self,
                    search,
                    cell: &cell,
                    finished: false,
                };
                let loaded = load().await.map(Arc::new);
                unfinished.finished = loaded.is_ok();
                loaded
            })
            .await?
            .clone();
        if loaded_here {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = slots.get_mut(search)
                && slot
                    .pending
                    .as_ref()
                    .is_some_and(|p| Arc::ptr_eq(&p.cell, &cell))
            {
                slot.ready = Some((Instant::now(), matches.clone()));
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
            (Some((_, matches)), _, Some(reading))
                if now.duration_since(reading.began) < READ_PATIENCE =>
            {
                Use::Ready(matches.clone())
            }
            (_, _, Some(reading)) => Use::Wait(reading.cell.clone()),
            _ => {
                let cell = Arc::new(OnceCell::new());
                slot.pending = Some(Reading {
                    began: now,
                    cell: cell.clone(),
                });
                Use::Wait(cell)
            }
        }
    }

    fn forget_reading(&self, search: &str, cell: &Arc<OnceCell<Arc<Matches>>>) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get_mut(search)
            && slot
                .pending
                .as_ref()
                .is_some_and(|p| Arc::ptr_eq(&p.cell, cell))
        {
            slot.pending = None;
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

#[cfg(test)]
mod tests {
    use super::*;

    const REUSE: Duration = Duration::from_millis(50);

    /// A search for "lantern" through `cache`: the read it would make takes `takes` and
    /// gives matches marked `mark`; returns the mark of the matches the search used.
    async fn search(cache: &SearchCache, mark: i64, takes: Duration) -> i64 {
        cache
            .matches("lantern", REUSE, || async move {
                tokio::time::sleep(takes).await;
                Ok(Matches::none(mark))
            })
            .await
            .expect("matches")
            .cap()
    }

    #[tokio::test]
    async fn a_slow_read_again_never_makes_the_other_searches_wait() {
        let cache = SearchCache::default();
        assert_eq!(search(&cache, 1, Duration::ZERO).await, 1);
        tokio::time::sleep(REUSE + Duration::from_millis(10)).await;
        // The matches are old: this search reads them again, for longer than twice REUSE.
        let reading = search(&cache, 2, Duration::from_millis(400));
        let others = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            search(&cache, 3, Duration::ZERO).await
        };
        let (read_again, other) = tokio::join!(reading, others);
        assert_eq!(read_again, 2);
        assert_eq!(other, 1, "answered from the previous read, not waiting");
        assert_eq!(
            search(&cache, 4, Duration::ZERO).await,
            2,
            "then the new read"
        );
    }

    #[tokio::test]
    async fn a_read_whose_search_went_away_is_forgotten() {
        let cache = SearchCache::default();
        assert_eq!(search(&cache, 1, Duration::ZERO).await, 1);
        tokio::time::sleep(REUSE + Duration::from_millis(10)).await;
        // The search reading again is dropped half-way, as when its client goes away.
        let gone = tokio::time::timeout(
            Duration::from_millis(20),
            search(&cache, 2, Duration::from_secs(60)),
        )
        .await;
        assert!(gone.is_err());
        // The next search reads again instead of answering from the old read meanwhile.
        assert_eq!(search(&cache, 3, Duration::ZERO).await, 3);
    }
}
