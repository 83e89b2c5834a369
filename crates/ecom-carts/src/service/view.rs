//! A cart as the shopper sees it: its lines priced from the catalog now, with the
//! problems that would stop a checkout. Computed on every read, never stored.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_catalog::{VariantOnSale, variants_on_sale};
use ecom_core::Money;

use super::Result;
use crate::model::{Cart, CartItem, CartLineRow, CartProblem, CartRow, ProblemCode};
use crate::schema::cart_lines;

/// The stored lines of a cart, in the order they were first added.
pub(crate) async fn lines_of(
    conn: &mut AsyncPgConnection,
    cart_id: i64,
) -> Result<Vec<CartLineRow>> {
    Ok(cart_lines::table
        .filter(cart_lines::cart_id.eq(cart_id))
        .order((cart_lines::created_at.asc(), cart_lines::variant_id.asc()))
        .select(CartLineRow::as_select())
        .load(conn)
        .await?)
}

/// The catalog's current offer for each of `lines`, by variant id.
pub(crate) async fn offers_for(
    conn: &mut AsyncPgConnection,
    variant_ids: &[i64],
) -> Result<HashMap<i64, VariantOnSale>> {
    if variant_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let offers = variants_on_sale(conn, variant_ids).await?;
    Ok(offers.into_iter().map(|v| (v.variant_id, v)).collect())
}

/// Reads the cart's lines and prices them from the catalog: the response body.
pub(crate) async fn render(conn: &mut AsyncPgConnection, row: &CartRow) -> Result<Cart> {
    let lines = lines_of(conn, row.id).await?;
    let ids: Vec<i64> = lines.iter().map(|l| l.variant_id).collect();
    let offers = offers_for(conn, &ids).await?;
    Ok(priced(row, &lines, &offers))
}

/// The cart with each line priced from `offers`; lines whose variant the catalog no
/// longer offers are `unavailable` and left out of the subtotal.
pub(crate) fn priced(
    row: &CartRow,
    lines: &[CartLineRow],
    offers: &HashMap<i64, VariantOnSale>,
) -> Cart {
    let mut items = Vec::with_capacity(lines.len());
    let mut problems = Vec::new();
    let mut subtotal = rust_decimal::Decimal::ZERO;
    for line in lines {
        let offer = offers.get(&line.variant_id).filter(|o| o.on_sale);
        let item = item(line, offers.get(&line.variant_id));
        match offer {
            None => problems.push(problem(
                ProblemCode::Unavailable,
                line.variant_id,
                "the variant is no longer in the catalog".to_string(),
            )),
            Some(offer) => {
                subtotal += item.line_total.as_decimal();
                problems.extend(line_problems(line, offer));
            }
        }
        items.push(item);
    }
    let subtotal = Money::from_db(subtotal);
    Cart {
        id: row.id,
        status: row.status,
        order_id: row.order_id,
        items,
        subtotal,
        total: subtotal,
        problems,
        expires_at: row.expires_at,
        updated_at: row.updated_at,
    }
}

/// A line as sent: the catalog's name, options and price when it knows the variant.
fn item(line: &CartLineRow, offer: Option<&VariantOnSale>) -> CartItem {
    let unit_price = offer.map_or(line.acknowledged_price, |o| o.unit_price);
    let line_total = unit_price.as_decimal() * rust_decimal::Decimal::from(line.quantity);
    CartItem {
        variant_id: line.variant_id,
        product_id: offer.map_or(line.product_id, |o| o.product_id),
        name: offer.map(|o| o.product_name.clone()).unwrap_or_default(),
        sku: offer.and_then(|o| o.sku.clone()),
        options: offer.map(|o| o.options.clone()).unwrap_or_default(),
        unit_price,
        quantity: line.quantity,
        line_total: Money::from_db(line_total),
        available: offer
            .filter(|o| o.on_sale)
            .map_or(0, |o| o.available.max(0)),
    }
}

/// `price_changed` and `insufficient_stock` of a line whose variant is on sale.
fn line_problems(line: &CartLineRow, offer: &VariantOnSale) -> Vec<CartProblem> {
    let mut found = Vec::new();
    if offer.unit_price != line.acknowledged_price {
        found.push(price_changed(line, offer.unit_price));
    }
    if line.quantity > offer.available {
        found.push(problem(
            ProblemCode::InsufficientStock,
            line.variant_id,
            format!(
                "{} requested, {} available",
                line.quantity,
                offer.available.max(0)
            ),
        ));
    }
    found
}

/// `price_changed`: the line was set at another price than `now`.
pub(crate) fn price_changed(line: &CartLineRow, now: Money) -> CartProblem {
    problem(
        ProblemCode::PriceChanged,
        line.variant_id,
        format!(
            "the unit price went from {} to {now} since the line was last set",
            line.acknowledged_price
        ),
    )
}

fn problem(code: ProblemCode, variant_id: i64, detail: String) -> CartProblem {
    CartProblem {
        code,
        variant_id,
        detail,
    }
}
