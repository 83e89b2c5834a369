//! Stock: the interface ecom-orders calls inside its own transaction.

use std::collections::BTreeMap;

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::result::Error as DieselError;
use diesel::sql_types::{Array, BigInt, Integer};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::db::transaction_with_retry;

use super::Result;
use crate::error::CatalogError;
use crate::model::{ReservedLine, Shortage, StockLine, StockShortfall};
use crate::schema::products;

/// Lets a stock change that owns its transaction run again after a deadlock or a
/// serialization failure (see [`ecom_core::db::ConflictRetry`]).
impl ecom_core::db::TransactionConflict for CatalogError {
    fn is_transaction_conflict(&self) -> bool {
        matches!(self, CatalogError::Database(e) if e.is_transaction_conflict())
    }
}

/// Merges duplicate lines and checks quantities; the result is in product-id order.
fn merge_lines(lines: &[StockLine]) -> Result<BTreeMap<i64, i32>> {
    let mut merged = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if line.quantity <= 0 {
            return Err(CatalogError::invalid(
                &format!("items[{i}].quantity"),
                "must be at least 1",
            ));
        }
        let total: &mut i32 = merged.entry(line.product_id).or_insert(0);
        *total = total.checked_add(line.quantity).ok_or_else(|| {
            CatalogError::invalid(&format!("items[{i}].quantity"), "is too large")
        })?;
    }
    if merged.is_empty() {
        return Err(CatalogError::invalid("items", "must not be empty"));
    }
    Ok(merged)
}

/// Takes stock for every line, all or nothing, and returns each product's current name and
/// unit price (one line per product, duplicates merged, in product-id order).
///
/// Call it on the connection of the order's open transaction: the stock change then commits
/// or rolls back with the order. It runs in a savepoint of that transaction (or in its own
/// transaction when there is none), so a refusal changes nothing. Rows are locked with
/// `SELECT … ORDER BY id FOR UPDATE`, always in product-id order, so concurrent multi-line
/// reservations queue behind each other instead of deadlocking. A deadlock with some other
/// lock order is retried only when there is no caller's transaction (then this call owns
/// it); inside the order's transaction it goes back to the order, which owns the retry.
pub async fn reserve_stock(
    conn: &mut AsyncPgConnection,
    lines: &[StockLine],
) -> Result<Vec<ReservedLine>> {
    let merged = merge_lines(lines)?;
    transaction_with_retry(conn, async |conn| reserve_locked(conn, &merged).await).await
}

/// One run of [`reserve_stock`]'s transaction.
async fn reserve_locked(
    conn: &mut AsyncPgConnection,
    merged: &BTreeMap<i64, i32>,
) -> Result<Vec<ReservedLine>> {
    let ids: Vec<i64> = merged.keys().copied().collect();
    let rows: Vec<(i64, String, ecom_core::Money, i32, bool)> = products::table
        .filter(products::id.eq_any(&ids))
        .order(products::id.asc())
        .select((
            products::id,
            products::name,
            products::price,
            products::stock,
            products::deleted_at.is_not_null(),
        ))
        .for_update()
        .load(conn)
        .await?;
    let found: BTreeMap<i64, _> = rows.into_iter().map(|r| (r.0, r)).collect();

    let mut shortfall = StockShortfall::default();
    let mut reserved = Vec::with_capacity(merged.len());
    for (&product_id, &quantity) in merged {
        match found.get(&product_id) {
            None | Some((_, _, _, _, true)) => shortfall.unknown.push(product_id),
            Some((_, _, _, stock, _)) if *stock < quantity => {
                shortfall.insufficient.push(Shortage {
                    product_id,
                    requested: quantity,
                    available: *stock,
                })
            }
            Some((_, name, price, _, _)) => reserved.push(ReservedLine {
                product_id,
                name: name.clone(),
                unit_price: *price,
                quantity,
            }),
        }
    }
    if shortfall != StockShortfall::default() {
        return Err(CatalogError::StockRejected(shortfall));
    }
    let quantities: Vec<i32> = merged.values().copied().collect();
    let updated = TakeStock {
        ids: &ids,
        quantities: &quantities,
    }
    .execute(conn)
    .await?;
    if updated != ids.len() {
        return Err(CatalogError::Database(DieselError::RollbackTransaction));
    }
    Ok(reserved)
}

/// Puts stock back (an order was cancelled), locking rows in product-id order like
/// [`reserve_stock`]. Products that left the catalog get their stock back too; ids that
/// never existed are refused with [`CatalogError::StockRejected`] and nothing changes.
/// Retried after a deadlock like [`reserve_stock`]: only when it owns its transaction.
pub async fn return_stock(conn: &mut AsyncPgConnection, lines: &[StockLine]) -> Result<()> {
    let merged = merge_lines(lines)?;
    transaction_with_retry(conn, async |conn| return_locked(conn, &merged).await).await
}

/// One run of [`return_stock`]'s transaction.
async fn return_locked(conn: &mut AsyncPgConnection, merged: &BTreeMap<i64, i32>) -> Result<()> {
    let ids: Vec<i64> = merged.keys().copied().collect();
    let locked: Vec<i64> = products::table
        .filter(products::id.eq_any(&ids))
        .order(products::id.asc())
        .select(products::id)
        .for_update()
        .load(conn)
        .await?;
    let unknown: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|id| locked.binary_search(id).is_err())
        .collect();
    if !unknown.is_empty() {
        return Err(CatalogError::StockRejected(StockShortfall {
            unknown,
            insufficient: Vec::new(),
        }));
    }
    let quantities: Vec<i32> = merged.values().copied().collect();
    PutBack {
        ids: &ids,
        quantities: &quantities,
    }
    .execute(conn)
    .await?;
    Ok(())
}

/// Takes `quantities` of `ids` (locked, in stock); one prepared statement per connection.
struct TakeStock<'a> {
    ids: &'a [i64],
    quantities: &'a [i32],
}

/// Puts `quantities` of `ids` back; one prepared statement per connection.
struct PutBack<'a> {
    ids: &'a [i64],
    quantities: &'a [i32],
}

ecom_core::fixed_statement!(TakeStock);
ecom_core::fixed_statement!(PutBack);

impl QueryFragment<Pg> for TakeStock<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE products SET stock = products.stock - l.quantity FROM unnest(");
        push_lines(&mut out, self.ids, self.quantities)?;
        // The rows are locked, so the condition holds; it stays as a guard all the same.
        out.push_sql(
            ") AS l(id, quantity) WHERE products.id = l.id AND products.stock >= l.quantity",
        );
        Ok(())
    }
}

impl QueryFragment<Pg> for PutBack<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE products SET stock = products.stock + l.quantity FROM unnest(");
        push_lines(&mut out, self.ids, self.quantities)?;
        out.push_sql(") AS l(id, quantity) WHERE products.id = l.id");
        Ok(())
    }
}

/// The `unnest` arguments of a stock change: the ids and their quantities.
fn push_lines<'b>(
    out: &mut AstPass<'_, 'b, Pg>,
    ids: &'b [i64],
    quantities: &'b [i32],
) -> QueryResult<()> {
    out.push_bind_param::<Array<BigInt>, [i64]>(ids)?;
    out.push_sql("::bigint[], ");
    out.push_bind_param::<Array<Integer>, [i32]>(quantities)?;
    out.push_sql("::int[]");
    Ok(())
}
