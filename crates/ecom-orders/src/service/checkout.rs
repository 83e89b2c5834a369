//! `POST /orders`: one transaction that reserves stock through ecom-catalog, prices the
//! lines from the catalog and records the order; optionally under an `Idempotency-Key`.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::data_types::PgInterval;
use diesel::dsl::{Add, AsExprOf};
use diesel::pg::Pg;
use diesel::pg::expression::extensions::IntervalDsl;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types::{Array, BigInt, Integer, Jsonb, Nullable, Numeric, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_catalog::{ItemRef, ReservedLine, StockLine, reserve_stock};
use ecom_core::Money;
use ecom_core::db::transaction_with_retry;
use sha2::{Digest, Sha256};

use super::Result;
use crate::error::OrdersError;
use crate::model::{
    Actor, ActorKind, Checkout, Order, OrderLine, OrderRow, OrderStatus, RequestedLine,
};
use crate::schema::{order_idempotency, order_status_history, orders};

/// Largest quantity of one variant in one order (after duplicate lines are merged).
pub const MAX_QUANTITY: i64 = 1000;
/// Most lines one request may send.
pub const MAX_LINES: usize = 100;
/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_TTL_HOURS: i32 = 24;
/// Longest accepted `Idempotency-Key`.
pub const MAX_KEY_LEN: usize = 255;

/// Validates the lines and merges duplicates: what each asks for → quantity, in order
/// (products first, by id, then variants by id).
fn merge(lines: &[RequestedLine]) -> Result<BTreeMap<ItemRef, i32>> {
    if lines.is_empty() {
        return Err(OrdersError::invalid("items", "must not be empty"));
    }
    if lines.len() > MAX_LINES {
        return Err(OrdersError::invalid(
            "items",
            format!("must have at most {MAX_LINES} lines"),
        ));
    }
    let mut errors = Vec::new();
    let mut merged: BTreeMap<ItemRef, i64> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        if !(1..=MAX_QUANTITY).contains(&line.quantity) {
            errors.push(ecom_core::FieldError::new(
                format!("items[{i}].quantity"),
                format!("must be between 1 and {MAX_QUANTITY}"),
            ));
            continue;
        }
        let total = merged.entry(line.item).or_insert(0);
        *total += line.quantity;
        if *total > MAX_QUANTITY && *total - line.quantity <= MAX_QUANTITY {
            let what = match line.item {
                ItemRef::Product(id) => format!("product {id}"),
                ItemRef::Variant(id) => format!("variant {id}"),
            };
            errors.push(ecom_core::FieldError::new(
                format!("items[{i}].quantity"),
                format!("{what} totals more than {MAX_QUANTITY} units over its lines"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(OrdersError::Invalid(errors));
    }
    // Every merged quantity is within 1..=1000 here, so it fits an i32.
    Ok(merged
        .into_iter()
        .map(|(item, q)| (item, i32::try_from(q).unwrap_or(i32::MAX)))
        .collect())
}

/// The one rule of an `Idempotency-Key`, for every endpoint that takes one (orders, cart
/// checkout, payments): 1..=255 visible ASCII characters.
pub fn is_valid_key(key: &str) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// Checks an `Idempotency-Key` by [`is_valid_key`].
fn check_key(key: &str) -> Result<()> {
    if is_valid_key(key) {
        Ok(())
    } else {
        Err(OrdersError::invalid(
            "Idempotency-Key",
            format!("must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
        ))
    }
}

/// SHA-256 of the canonical request (the merged lines in order), so two bodies asking for
/// the same goods are the same request whatever their line order or splitting. A product
/// line is written as before variants existed (`{id}:{quantity};`), so keys stored then
/// still match their retries.
fn fingerprint(merged: &BTreeMap<ItemRef, i32>) -> String {
    let mut hasher = Sha256::new();
    for (item, quantity) in merged {
        let line = match item {
            ItemRef::Product(id) => format!("{id}:{quantity};"),
            ItemRef::Variant(id) => format!("v{id}:{quantity};"),
        };
        hasher.update(line.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Line totals and the order total, exact; beyond what NUMERIC(12,2) holds is a 422, and
/// so is a variant asked for more than 1000 times over its product's and its own lines.
fn price(reserved: &[ReservedLine]) -> Result<(Vec<(ReservedLine, Money)>, Money)> {
    let too_large = || OrdersError::invalid("items", "the order total must not exceed 99999999.99");
    let mut total = Money::ZERO;
    let mut priced = Vec::with_capacity(reserved.len());
    for line in reserved {
        if i64::from(line.quantity) > MAX_QUANTITY {
            return Err(OrdersError::invalid(
                "items",
                format!(
                    "variant {} totals more than {MAX_QUANTITY} units over its lines",
                    line.variant_id
                ),
            ));
        }
        let line_total = line
            .unit_price
            .times(i64::from(line.quantity))
            .map_err(|_| too_large())?;
        total = total.plus(line_total).map_err(|_| too_large())?;
        priced.push((line.clone(), line_total));
    }
    Ok((priced, total))
}

/// What the idempotency record says about this request.
enum KeyState {
    /// This request owns the key: go on and place the order.
    Owned,
    /// An earlier request with the same body placed this order.
    Replay(Box<Order>),
}

/// Claims `key` for this request inside the order's transaction. A concurrent request
/// holding the same uncommitted key makes the insert wait until it commits or rolls back.
async fn claim_key(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    key: &str,
    fingerprint: &str,
) -> Result<KeyState> {
    diesel::delete(
        order_idempotency::table
            .filter(order_idempotency::user_id.eq(user_id))
            .filter(order_idempotency::key.eq(key))
            .filter(order_idempotency::expires_at.le(diesel::dsl::now)),
    )
    .execute(conn)
    .await?;
    let inserted = diesel::insert_into(order_idempotency::table)
        .values((
            order_idempotency::user_id.eq(user_id),
            order_idempotency::key.eq(key),
            order_idempotency::fingerprint.eq(fingerprint),
            order_idempotency::expires_at.eq(now_plus(IDEMPOTENCY_TTL_HOURS.hours())),
        ))
        .on_conflict((order_idempotency::user_id, order_idempotency::key))
        .do_nothing()
        .execute(conn)
        .await?;
    if inserted == 1 {
        return Ok(KeyState::Owned);
    }
    let (stored_fingerprint, response): (String, Option<serde_json::Value>) =
        order_idempotency::table
            .find((user_id, key))
            .select((order_idempotency::fingerprint, order_idempotency::response))
            .first(conn)
            .await?;
    if stored_fingerprint != fingerprint {
        return Err(OrdersError::IdempotencyKeyReused);
    }
    let response = response.ok_or_else(|| {
        OrdersError::Database(diesel::result::Error::DeserializationError(
            "idempotency record committed without its response".into(),
        ))
    })?;
    let mut order: Order = serde_json::from_value(response)?;
    for line in &mut order.items {
        line.order_id = order.id;
    }
    Ok(KeyState::Replay(Box::new(order)))
}

/// Places an order for `user_id`, all or nothing: merges duplicate lines, checks
/// quantities (1..=1000 per product), reserves stock through ecom-catalog on this
/// transaction, copies each product's name and current price, computes exact totals,
/// and records the order, its lines and its first history entry. The order is due to be
/// paid `payment_window` after it is placed (`ORDER_PAYMENT_WINDOW_SECONDS`): then the
/// expiry task cancels it if it is still `pending`.
///
/// With `idempotency_key`, the same user, key and request within 24 h replay the first
/// order (`replayed: true`, nothing reserved again), also when the requests race; the same
/// key with different lines is [`OrdersError::IdempotencyKeyReused`]. Only placed orders
/// are remembered: a refused request may be retried with its key.
///
/// A serialization failure or deadlock runs the whole transaction again (a few times, see
/// [`ecom_core::db::ConflictRetry`]) when this call owns the transaction; the key's claim
/// was rolled back with the failed run, so the next run claims it afresh (or finds the
/// order a racing request with the same key committed meanwhile, and replays it). Inside
/// a caller's transaction nothing is retried: the conflict goes back to that caller.
pub async fn place_order(
    conn: &mut AsyncPgConnection,
    user_id: i64,
    lines: &[RequestedLine],
    idempotency_key: Option<&str>,
    payment_window: Duration,
) -> Result<Checkout> {
    if let Some(key) = idempotency_key {
        check_key(key)?;
    }
    let merged = merge(lines)?;
    let fingerprint = fingerprint(&merged);
    let placed = Placement {
        user_id,
        merged: &merged,
        idempotency_key,
        fingerprint: &fingerprint,
        payment_window_seconds: i64::try_from(payment_window.as_secs()).unwrap_or(i64::MAX),
    };
    transaction_with_retry(conn, async |conn| record_order(conn, &placed).await).await
}

/// The transaction's `now()` plus `interval`, as a typed expression: unlike an SQL
/// fragment it leaves the statement cacheable, so PostgreSQL does not parse and plan the
/// order's INSERT anew for every order.
pub(crate) fn now_plus(
    interval: PgInterval,
) -> Add<AsExprOf<diesel::dsl::now, Timestamptz>, PgInterval> {
    diesel::dsl::now.into_sql::<Timestamptz>() + interval
}

/// What one run of [`place_order`]'s transaction records.
#[derive(Clone, Copy)]
struct Placement<'a> {
    user_id: i64,
    merged: &'a BTreeMap<ItemRef, i32>,
    idempotency_key: Option<&'a str>,
    fingerprint: &'a str,
    payment_window_seconds: i64,
}

/// One run of [`place_order`]'s transaction: claim the key, reserve, price, record.
async fn record_order(conn: &mut AsyncPgConnection, placed: &Placement<'_>) -> Result<Checkout> {
    let Placement {
        user_id,
        merged,
        idempotency_key,
        fingerprint,
        payment_window_seconds,
    } = *placed;
    if let Some(key) = idempotency_key
        && let KeyState::Replay(order) = claim_key(conn, user_id, key, fingerprint).await?
    {
        return Ok(Checkout {
            order: *order,
            replayed: true,
        });
    }
    let stock: Vec<StockLine> = merged
        .iter()
        .map(|(&item, &quantity)| StockLine { item, quantity })
        .collect();
    let reserved = reserve_stock(conn, &stock).await?;
    let (priced, total) = price(&reserved)?;
    let row: OrderRow = diesel::insert_into(orders::table)
        .values((
            orders::user_id.eq(user_id),
            orders::status.eq(OrderStatus::Pending),
            orders::total_price.eq(total),
            // From the transaction's `now()`, the order's `created_at`.
            orders::payment_due_at.eq(now_plus(payment_window_seconds.seconds()).nullable()),
        ))
        .returning(OrderRow::as_returning())
        .get_result(conn)
        .await?;
    let lines = NewLines::of(row.id, &priced);
    let mut items: Vec<OrderLine> = lines.statement().get_results(conn).await?;
    items.sort_by_key(|l| (l.product_id, l.variant_id));
    diesel::insert_into(order_status_history::table)
        .values((
            order_status_history::order_id.eq(row.id),
            order_status_history::to_status.eq(OrderStatus::Pending),
            order_status_history::actor.eq(ActorKind::User),
            order_status_history::actor_id.eq(Some(user_id)),
        ))
        .execute(conn)
        .await?;
    let order = Order::from_row(row, items);
    if let Some(key) = idempotency_key {
        diesel::update(order_idempotency::table.find((user_id, key)))
            .set((
                order_idempotency::order_id.eq(order.id),
                order_idempotency::response.eq(serde_json::to_value(&order)?),
            ))
            .execute(conn)
            .await?;
    }
    super::events::record(conn, &order, None, Actor::User(user_id), None).await?;
    Ok(Checkout {
        order,
        replayed: false,
    })
}

/// Deletes up to `batch` expired idempotency records and returns how many went: a bounded
/// clean-up for the periodic housekeeping. Rows another transaction holds (a request
/// re-claiming its expired key, another replica's clean-up) are skipped, so any number of
/// replicas may run it at once without waiting on each other or deleting a row twice.
pub async fn purge_expired_idempotency(conn: &mut AsyncPgConnection, batch: i64) -> Result<usize> {
    let deleted = diesel::sql_query(
        "DELETE FROM order_idempotency WHERE (user_id, key) IN ( \
             SELECT user_id, key FROM order_idempotency WHERE expires_at <= now() \
             ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)",
    )
    .bind::<BigInt, _>(batch.max(0))
    .execute(conn)
    .await?;
    Ok(deleted)
}

/// An order's lines as columns, for [`InsertLines`].
struct NewLines {
    order_id: i64,
    product_ids: Vec<i64>,
    names: Vec<String>,
    variant_ids: Vec<i64>,
    skus: Vec<Option<String>>,
    options: Vec<serde_json::Value>,
    unit_prices: Vec<Money>,
    quantities: Vec<i32>,
    line_totals: Vec<Money>,
}

impl NewLines {
    fn of(order_id: i64, priced: &[(ReservedLine, Money)]) -> Self {
        Self {
            order_id,
            product_ids: priced.iter().map(|(l, _)| l.product_id).collect(),
            names: priced.iter().map(|(l, _)| l.name.clone()).collect(),
            variant_ids: priced.iter().map(|(l, _)| l.variant_id).collect(),
            skus: priced.iter().map(|(l, _)| l.sku.clone()).collect(),
            options: priced
                .iter()
                .map(|(l, _)| serde_json::json!(l.options))
                .collect(),
            unit_prices: priced.iter().map(|(l, _)| l.unit_price).collect(),
            quantities: priced.iter().map(|(l, _)| l.quantity).collect(),
            line_totals: priced.iter().map(|(_, total)| *total).collect(),
        }
    }

    fn statement(&self) -> InsertLines<'_> {
        InsertLines(self)
    }
}

/// Inserts an order's lines whatever their number with one SQL text (a multi-row
/// `VALUES` differs with the count), so it is prepared once per connection.
struct InsertLines<'a>(&'a NewLines);

ecom_core::fixed_statement!(InsertLines);

impl diesel::query_builder::Query for InsertLines<'_> {
    type SqlType = (
        BigInt,
        BigInt,
        Text,
        BigInt,
        Nullable<Text>,
        Jsonb,
        Integer,
        Numeric,
        Numeric,
    );
}

impl QueryFragment<Pg> for InsertLines<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let lines = self.0;
        out.push_sql(
            "INSERT INTO order_lines \
             (order_id, product_id, product_name, variant_id, sku, options, unit_price, quantity, \
              line_total) \
             SELECT ",
        );
        out.push_bind_param::<BigInt, i64>(&lines.order_id)?;
        out.push_sql(", l.* FROM unnest(");
        out.push_bind_param::<Array<BigInt>, _>(&lines.product_ids)?;
        out.push_sql("::bigint[], ");
        out.push_bind_param::<Array<Text>, _>(&lines.names)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<BigInt>, _>(&lines.variant_ids)?;
        out.push_sql("::bigint[], ");
        out.push_bind_param::<Array<Nullable<Text>>, _>(&lines.skus)?;
        out.push_sql("::text[], ");
        out.push_bind_param::<Array<Jsonb>, _>(&lines.options)?;
        out.push_sql("::jsonb[], ");
        out.push_bind_param::<Array<Numeric>, _>(&lines.unit_prices)?;
        out.push_sql("::numeric[], ");
        out.push_bind_param::<Array<Integer>, _>(&lines.quantities)?;
        out.push_sql("::int[], ");
        out.push_bind_param::<Array<Numeric>, _>(&lines.line_totals)?;
        out.push_sql(
            "::numeric[]) AS l \
             RETURNING order_id, product_id, product_name, variant_id, sku, options, quantity, \
                       unit_price, line_total",
        );
        Ok(())
    }
}
