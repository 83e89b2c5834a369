//! `Idempotency-Key` on the payment POSTs, as on `POST /orders`: scoped per caller and
//! endpoint, kept 24 h. The record is claimed first in the operation's transaction; a
//! racing request with the same key waits on that row, then replays the committed answer.
//! A failed operation rolls its claim back with everything else, so a retry runs again.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};

use super::Result;
use crate::api::PaymentOut;
use crate::error::PaymentsError;
use crate::schema::payments_idempotency;

/// One idempotent request: who sent it, to which endpoint, with which key and body.
#[derive(Debug, Clone)]
pub struct Idempotent<'a> {
    pub user_id: i64,
    /// `create_payment`, `refund`, `manual_payment`.
    pub endpoint: &'static str,
    pub key: &'a str,
    /// SHA-256 (hex) of the canonical request.
    pub fingerprint: String,
}

impl<'a> Idempotent<'a> {
    /// `parts` are the request's meaningful values in a fixed order.
    pub fn new(user_id: i64, endpoint: &'static str, key: &'a str, parts: &[&str]) -> Self {
        let mut hash = Sha256::new();
        for part in parts {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        Self {
            user_id,
            endpoint,
            key,
            fingerprint: hex::encode(hash.finalize()),
        }
    }
}

/// A payment answer, and whether it is the replay of an earlier one.
#[derive(Debug, Clone)]
pub struct Answered {
    pub payment: PaymentOut,
    pub replayed: bool,
}

/// Claims the key on the caller's transaction: `None` when this request owns it now, or the
/// answer first given to it. The same key with another request is
/// [`PaymentsError::IdempotencyKeyReused`].
pub(crate) async fn claim(
    conn: &mut AsyncPgConnection,
    request: &Idempotent<'_>,
) -> Result<Option<PaymentOut>> {
    let this = payments_idempotency::table
        .filter(payments_idempotency::user_id.eq(request.user_id))
        .filter(payments_idempotency::endpoint.eq(request.endpoint))
        .filter(payments_idempotency::key.eq(request.key));
    diesel::delete(this.filter(payments_idempotency::expires_at.le(diesel::dsl::now)))
        .execute(conn)
        .await?;
    let inserted = diesel::insert_into(payments_idempotency::table)
        .values((
            payments_idempotency::user_id.eq(request.user_id),
            payments_idempotency::endpoint.eq(request.endpoint),
            payments_idempotency::key.eq(request.key),
            payments_idempotency::fingerprint.eq(&request.fingerprint),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await?;
    if inserted == 1 {
        return Ok(None);
    }
    let (fingerprint, response): (String, Option<serde_json::Value>) = this
        .select((
            payments_idempotency::fingerprint,
            payments_idempotency::response,
        ))
        .first(conn)
        .await?;
    if fingerprint != request.fingerprint {
        return Err(PaymentsError::IdempotencyKeyReused);
    }
    let response = response.ok_or(PaymentsError::IdempotencyKeyReused)?;
    Ok(Some(serde_json::from_value(response).map_err(|e| {
        PaymentsError::StoredResponse(e.to_string())
    })?))
}

/// Keeps the answer for replays, in the claim's transaction.
pub(crate) async fn remember(
    conn: &mut AsyncPgConnection,
    request: &Idempotent<'_>,
    answer: &PaymentOut,
) -> Result<()> {
    let body =
        serde_json::to_value(answer).map_err(|e| PaymentsError::StoredResponse(e.to_string()))?;
    diesel::update(
        payments_idempotency::table
            .filter(payments_idempotency::user_id.eq(request.user_id))
            .filter(payments_idempotency::endpoint.eq(request.endpoint))
            .filter(payments_idempotency::key.eq(request.key)),
    )
    .set(payments_idempotency::response.eq(body))
    .execute(conn)
    .await?;
    Ok(())
}

/// Runs `operation` under the key when there is one: claimed first, the answer kept.
pub(crate) async fn once<F>(
    conn: &mut AsyncPgConnection,
    request: Option<&Idempotent<'_>>,
    operation: F,
) -> Result<Answered>
where
    F: AsyncFnOnce(&mut AsyncPgConnection) -> Result<PaymentOut>,
{
    let Some(request) = request else {
        return Ok(Answered {
            payment: operation(conn).await?,
            replayed: false,
        });
    };
    if let Some(payment) = claim(conn, request).await? {
        return Ok(Answered {
            payment,
            replayed: true,
        });
    }
    let payment = operation(conn).await?;
    remember(conn, request, &payment).await?;
    Ok(Answered {
        payment,
        replayed: false,
    })
}

/// Deletes up to `batch` expired records; replicas skip each other's rows.
pub async fn purge_expired_idempotency(conn: &mut AsyncPgConnection, batch: i64) -> Result<usize> {
    Ok(diesel::sql_query(
        "DELETE FROM payments_idempotency WHERE (user_id, endpoint, key) IN ( \
             SELECT user_id, endpoint, key FROM payments_idempotency WHERE expires_at <= now() \
             ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<BigInt, _>(batch.max(0))
    .execute(conn)
    .await?)
}
