//! Expired carts go: a bounded clean-up run by every replica's housekeeping.

use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::Result;

/// Deletes up to `batch` carts past their `expires_at` (their lines go with them) and
/// returns how many went. Carts another transaction holds (a write that is about to
/// extend them, another replica's clean-up) are skipped, so replicas never wait on each
/// other or delete a cart twice.
pub async fn purge_expired_carts(conn: &mut AsyncPgConnection, batch: i64) -> Result<usize> {
    let deleted = diesel::sql_query(
        "DELETE FROM carts WHERE id IN ( \
             SELECT id FROM carts WHERE expires_at <= now() \
             ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<BigInt, _>(batch.max(0))
    .execute(conn)
    .await?;
    Ok(deleted)
}
