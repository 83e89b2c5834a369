//! Stock: the interface ecom-orders (and, through it, carts) calls inside its own
//! transaction. Stock belongs to variants; a line names a variant, or a product meaning its
//! default variant.
//!
//! Lock order, which every writer of variants and products keeps so that none deadlocks:
//! variant rows in variant-id order first, then (by the `product_variants` trigger that
//! keeps each product's summary) product rows in product-id order.

use std::collections::BTreeMap;

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment};
use diesel::result::Error as DieselError;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Jsonb, Nullable, Numeric, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::Money;
use ecom_core::db::{in_transaction, transaction_with_retry};

use super::Result;
use crate::error::CatalogError;
use crate::model::{
    ItemRef, ReservedLine, Shortage, StockLine, StockShortfall, VariantOnSale, VariantOptions,
};

/// Lets a stock change that owns its transaction run again after a deadlock or a
/// serialization failure (see [`ecom_core::db::ConflictRetry`]).
impl ecom_core::db::TransactionConflict for CatalogError {
    fn is_transaction_conflict(&self) -> bool {
        matches!(self, CatalogError::Database(e) if e.is_transaction_conflict())
    }
}

/// Checks quantities and merges lines asking for the same thing (a product's line and a
/// line naming its default variant are merged once the default is known).
fn merge_lines(lines: &[StockLine]) -> Result<BTreeMap<ItemRef, i32>> {
    let mut merged = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if line.quantity <= 0 {
            return Err(CatalogError::invalid(
                &format!("items[{i}].quantity"),
                "must be at least 1",
            ));
        }
        let total: &mut i32 = merged.entry(line.item).or_insert(0);
        *total = total.checked_add(line.quantity).ok_or_else(|| {
            CatalogError::invalid(&format!("items[{i}].quantity"), "is too large")
        })?;
    }
    if merged.is_empty() {
        return Err(CatalogError::invalid("items", "must not be empty"));
    }
    Ok(merged)
}

/// Takes stock for every line, all or nothing, and returns one line per variant (duplicates
/// merged, in variant-id order) with the product's name and the variant's SKU, options and
/// unit price at this moment.
///
/// Call it on the connection of the order's open transaction: the stock change then commits
/// or rolls back with the order (with no transaction open, it runs in its own). A refusal
/// changes nothing: every refusal is found before the one write, and that write takes all
/// lines or fails, which aborts the caller's transaction. So it needs no savepoint, which
/// would cost PostgreSQL a subtransaction per order. Variant rows are locked
/// with `SELECT … ORDER BY id FOR UPDATE`, always in variant-id order, so concurrent
/// multi-line reservations queue behind each other instead of deadlocking. A deadlock with
/// some other lock order is retried only when there is no caller's transaction (then this
/// call owns it); inside the order's transaction it goes back to the order, which owns the
/// retry.
pub async fn reserve_stock(
    conn: &mut AsyncPgConnection,
    lines: &[StockLine],
) -> Result<Vec<ReservedLine>> {
    let merged = merge_lines(lines)?;
    if in_transaction(conn) {
        return reserve_locked(conn, &merged).await;
    }
    transaction_with_retry(conn, async |conn| reserve_locked(conn, &merged).await).await
}

/// A locked variant with what a reservation reads of it and of its product.
struct LockedVariant {
    product_id: i64,
    name: String,
    sku: Option<String>,
    options: serde_json::Value,
    price: Money,
    stock: i32,
    is_default: bool,
    /// The variant or its product is deleted.
    gone: bool,
}

/// Lines resolved to variants: each variant's merged quantity, the product whose line named
/// it (when a product line was resolved to its default), and the products without one.
struct Resolved {
    wanted: BTreeMap<i64, i32>,
    from_product: BTreeMap<i64, i64>,
    unknown_products: Vec<i64>,
}

/// Resolves product lines to their default variants (read, not locked) and merges lines
/// that name the same variant.
async fn resolve(
    conn: &mut AsyncPgConnection,
    merged: &BTreeMap<ItemRef, i32>,
) -> Result<Resolved> {
    let products: Vec<i64> = merged
        .keys()
        .filter_map(|item| match item {
            ItemRef::Product(id) => Some(*id),
            ItemRef::Variant(_) => None,
        })
        .collect();
    let defaults: BTreeMap<i64, i64> = if products.is_empty() {
        BTreeMap::new()
    } else {
        DefaultVariants {
            products: &products,
        }
        .get_results::<(i64, i64)>(conn)
        .await?
        .into_iter()
        .collect()
    };
    let mut resolved = Resolved {
        wanted: BTreeMap::new(),
        from_product: BTreeMap::new(),
        unknown_products: Vec::new(),
    };
    for (&item, &quantity) in merged {
        let variant_id = match item {
            ItemRef::Variant(id) => id,
            ItemRef::Product(id) => match defaults.get(&id) {
                Some(&variant_id) => {
                    resolved.from_product.insert(variant_id, id);
                    variant_id
                }
                None => {
                    resolved.unknown_products.push(id);
                    continue;
                }
            },
        };
        let total = resolved.wanted.entry(variant_id).or_insert(0);
        *total = total
            .checked_add(quantity)
            .ok_or_else(|| CatalogError::invalid("items", "a quantity is too large"))?;
    }
    Ok(resolved)
}

/// One run of [`reserve_stock`]'s transaction: the variants named and the products'
/// default variants are looked up and locked in one statement, in variant-id order.
async fn reserve_locked(
    conn: &mut AsyncPgConnection,
    merged: &BTreeMap<ItemRef, i32>,
) -> Result<Vec<ReservedLine>> {
    let (mut variants, mut products) = (Vec::new(), Vec::new());
    for item in merged.keys() {
        match item {
            ItemRef::Variant(id) => variants.push(*id),
            ItemRef::Product(id) => products.push(*id),
        }
    }
    let locked: BTreeMap<i64, LockedVariant> = LockLines {
        variants: &variants,
        products: &products,
    }
    .get_results::<LockedRow>(conn)
    .await?
    .into_iter()
    .map(into_locked)
    .collect();
    // Each product's default as the lock saw it (a default moved by a transaction that
    // committed meanwhile is re-checked by the lock and drops out).
    let defaults: BTreeMap<i64, i64> = locked
        .iter()
        .filter(|(_, v)| v.is_default)
        .map(|(&id, v)| (v.product_id, id))
        .collect();
    let mut shortfall = StockShortfall::default();
    let mut wanted: BTreeMap<i64, i32> = BTreeMap::new();
    let mut from_product: BTreeMap<i64, i64> = BTreeMap::new();
    let mut without_default = Vec::new();
    for (&item, &quantity) in merged {
        let variant_id = match item {
            ItemRef::Variant(id) => id,
            ItemRef::Product(id) => match defaults.get(&id) {
                Some(&variant_id) => {
                    from_product.insert(variant_id, id);
                    variant_id
                }
                None => {
                    without_default.push(id);
                    continue;
                }
            },
        };
        let total = wanted.entry(variant_id).or_insert(0);
        *total = total
            .checked_add(quantity)
            .ok_or_else(|| CatalogError::invalid("items", "a quantity is too large"))?;
    }
    if !without_default.is_empty() {
        // Not in the catalog, or its default moved while this statement waited for the
        // lock: only the second has a default now. A moved default ends the run as a
        // conflict, which whoever owns the transaction runs again from the start (looking
        // again while holding these locks could lock a lower variant id after a higher one).
        let now = DefaultVariants {
            products: &without_default,
        }
        .get_results::<(i64, i64)>(conn)
        .await?;
        if !now.is_empty() {
            return Err(CatalogError::Database(DieselError::DatabaseError(
                diesel::result::DatabaseErrorKind::SerializationFailure,
                Box::new("a product's default variant moved during the reservation".to_string()),
            )));
        }
        shortfall.unknown_products = without_default;
    }
    let ids: Vec<i64> = wanted.keys().copied().collect();
    let mut reserved = Vec::with_capacity(wanted.len());
    for (&variant_id, &quantity) in &wanted {
        let unknown = |shortfall: &mut StockShortfall| match from_product.get(&variant_id) {
            Some(&product_id) => shortfall.unknown_products.push(product_id),
            None => shortfall.unknown_variants.push(variant_id),
        };
        match locked.get(&variant_id) {
            None => unknown(&mut shortfall),
            Some(v) if v.gone => unknown(&mut shortfall),
            Some(v) if v.stock < quantity => shortfall.insufficient.push(Shortage {
                product_id: v.product_id,
                variant_id,
                requested: quantity,
                available: v.stock,
            }),
            Some(v) => reserved.push(ReservedLine {
                product_id: v.product_id,
                variant_id,
                name: v.name.clone(),
                sku: v.sku.clone(),
                options: options_of(&v.options)?,
                unit_price: v.price,
                quantity,
            }),
        }
    }
    if !shortfall.is_empty() {
        shortfall.unknown_products.sort_unstable();
        shortfall.unknown_variants.sort_unstable();
        return Err(CatalogError::StockRejected(shortfall));
    }
    let quantities: Vec<i32> = wanted.values().copied().collect();
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

/// A variant's stored options as the model's map (values are strings by the API's rules).
fn options_of(options: &serde_json::Value) -> Result<VariantOptions> {
    serde_json::from_value(options.clone())
        .map_err(|e| CatalogError::Database(DieselError::DeserializationError(Box::new(e))))
}

/// Puts stock back (an order was cancelled), locking variant rows in id order like
/// [`reserve_stock`]. Variants (or products) that left the catalog get their stock back
/// too; variants that never existed are refused with [`CatalogError::StockRejected`] and
/// nothing changes. A product line puts stock back into its current default variant.
/// Retried after a deadlock like [`reserve_stock`]: only when it owns its transaction.
pub async fn return_stock(conn: &mut AsyncPgConnection, lines: &[StockLine]) -> Result<()> {
    let merged = merge_lines(lines)?;
    transaction_with_retry(conn, async |conn| return_locked(conn, &merged).await).await
}

/// One run of [`return_stock`]'s transaction.
async fn return_locked(
    conn: &mut AsyncPgConnection,
    merged: &BTreeMap<ItemRef, i32>,
) -> Result<()> {
    let Resolved {
        wanted: back,
        unknown_products,
        ..
    } = resolve(conn, merged).await?;
    let mut shortfall = StockShortfall {
        unknown_products,
        ..StockShortfall::default()
    };
    let ids: Vec<i64> = back.keys().copied().collect();
    let locked: Vec<LockedRow> = LockVariants { ids: &ids }.get_results(conn).await?;
    shortfall.unknown_variants = ids
        .iter()
        .copied()
        .filter(|id| locked.binary_search_by_key(id, |row| row.0).is_err())
        .collect();
    if !shortfall.is_empty() {
        return Err(CatalogError::StockRejected(shortfall));
    }
    let quantities: Vec<i32> = back.values().copied().collect();
    PutBack {
        ids: &ids,
        quantities: &quantities,
    }
    .execute(conn)
    .await?;
    Ok(())
}

/// The variants among `ids` that ever existed, as a cart shows them (deleted ones too, not
/// on sale); ids that never existed are absent. Reads, never locks.
pub async fn variants_on_sale(
    conn: &mut AsyncPgConnection,
    ids: &[i64],
) -> Result<Vec<VariantOnSale>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<LockedRow> = ReadVariants { ids }.get_results(conn).await?;
    rows.into_iter()
        .map(|row| {
            let (variant_id, v) = into_locked(row);
            Ok(VariantOnSale {
                variant_id,
                product_id: v.product_id,
                product_name: v.name,
                sku: v.sku,
                options: options_of(&v.options)?,
                unit_price: v.price,
                available: if v.gone { 0 } else { v.stock },
                on_sale: !v.gone,
            })
        })
        .collect()
}

/// A row of [`LockVariants`] or [`ReadVariants`].
type LockedRow = (
    i64,
    i64,
    String,
    Option<String>,
    serde_json::Value,
    Money,
    i32,
    bool,
    bool,
);

fn into_locked(row: LockedRow) -> (i64, LockedVariant) {
    let (id, product_id, name, sku, options, price, stock, is_default, gone) = row;
    let variant = LockedVariant {
        product_id,
        name,
        sku,
        options,
        price,
        stock,
        is_default,
        gone,
    };
    (id, variant)
}

/// The default variant of each of `products` that is in the catalog: `(product, variant)`.
struct DefaultVariants<'a> {
    products: &'a [i64],
}

/// Locks the variants `ids` in id order, reading their products' names.
struct LockVariants<'a> {
    ids: &'a [i64],
}

/// [`LockVariants`] for the `variants` named and the default variants of `products`.
struct LockLines<'a> {
    variants: &'a [i64],
    products: &'a [i64],
}

/// [`LockVariants`] without the lock.
struct ReadVariants<'a> {
    ids: &'a [i64],
}

/// Takes `quantities` of the variants `ids` (locked, in stock).
struct TakeStock<'a> {
    ids: &'a [i64],
    quantities: &'a [i32],
}

/// Puts `quantities` of the variants `ids` back.
struct PutBack<'a> {
    ids: &'a [i64],
    quantities: &'a [i32],
}

ecom_core::fixed_statement!(DefaultVariants);
ecom_core::fixed_statement!(LockVariants);
ecom_core::fixed_statement!(LockLines);
ecom_core::fixed_statement!(ReadVariants);
ecom_core::fixed_statement!(TakeStock);
ecom_core::fixed_statement!(PutBack);

type VariantColumns = (
    BigInt,
    BigInt,
    Text,
    Nullable<Text>,
    Jsonb,
    Numeric,
    Integer,
    Bool,
    Bool,
);

impl Query for DefaultVariants<'_> {
    type SqlType = (BigInt, BigInt);
}

impl Query for LockVariants<'_> {
    type SqlType = VariantColumns;
}

impl Query for ReadVariants<'_> {
    type SqlType = VariantColumns;
}

impl Query for LockLines<'_> {
    type SqlType = VariantColumns;
}

impl QueryFragment<Pg> for DefaultVariants<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "SELECT v.product_id, v.id FROM product_variants v JOIN products p ON p.id = v.product_id \
             WHERE v.is_default AND p.deleted_at IS NULL AND v.product_id = ANY(",
        );
        out.push_bind_param::<Array<BigInt>, [i64]>(self.products)?;
        out.push_sql("::bigint[])");
        Ok(())
    }
}

/// The columns [`LockedRow`] reads, from variants `v` and their products `p`.
const VARIANT_SELECT: &str = "SELECT v.id, v.product_id, p.name, v.sku, v.options, v.price, \
     v.stock, v.is_default, (v.deleted_at IS NOT NULL OR p.deleted_at IS NOT NULL) AS retired \
     FROM product_variants v JOIN products p ON p.id = v.product_id WHERE v.id = ANY(";

impl QueryFragment<Pg> for LockVariants<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(VARIANT_SELECT);
        out.push_bind_param::<Array<BigInt>, [i64]>(self.ids)?;
        // Only the variants are locked here: products are locked by the summary trigger,
        // in product-id order, when the stock changes.
        out.push_sql("::bigint[]) ORDER BY v.id FOR UPDATE OF v");
        Ok(())
    }
}

impl QueryFragment<Pg> for LockLines<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(VARIANT_SELECT);
        out.push_bind_param::<Array<BigInt>, [i64]>(self.variants)?;
        out.push_sql("::bigint[]) OR (v.is_default AND v.product_id = ANY(");
        out.push_bind_param::<Array<BigInt>, [i64]>(self.products)?;
        // As in LockVariants: only the variants are locked here, in id order.
        out.push_sql("::bigint[])) ORDER BY v.id FOR UPDATE OF v");
        Ok(())
    }
}

impl QueryFragment<Pg> for ReadVariants<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(VARIANT_SELECT);
        out.push_bind_param::<Array<BigInt>, [i64]>(self.ids)?;
        out.push_sql("::bigint[]) ORDER BY v.id");
        Ok(())
    }
}

impl QueryFragment<Pg> for TakeStock<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "UPDATE product_variants SET stock = product_variants.stock - l.quantity FROM unnest(",
        );
        push_lines(&mut out, self.ids, self.quantities)?;
        // The rows are locked and their stock was checked. Were it short all the same, the
        // CHECK (stock >= 0) would fail the statement and with it the whole transaction:
        // no line is ever taken without the others.
        out.push_sql(") AS l(id, quantity) WHERE product_variants.id = l.id");
        Ok(())
    }
}

impl QueryFragment<Pg> for PutBack<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "UPDATE product_variants SET stock = product_variants.stock + l.quantity FROM unnest(",
        );
        push_lines(&mut out, self.ids, self.quantities)?;
        out.push_sql(") AS l(id, quantity) WHERE product_variants.id = l.id");
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
