//! Variant writes: add, change and remove a product's variants, plain and audited.
//!
//! Lock order (deadlock freedom with checkouts, which lock variant rows in id order and
//! then, through the variants' trigger, their products): a write first takes the
//! product's transaction-scoped advisory lock, which serializes the admin writes of one
//! product (option names, the default's move, "last variant") without touching rows
//! checkouts lock; then it locks every live variant of the product in id order, in one
//! statement, before writing any of them; the trigger locks the product row last. The
//! product row is only read, never locked first.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::Result;
use super::products::{Audited, audit};
use crate::error::CatalogError;
use crate::model::{
    MAX_VARIANTS, NewVariant, Variant, VariantChanges, VariantInsert, VariantOptions, VariantRow,
    options_json,
};
use crate::schema::{product_variants, products};

/// Serializes the admin writes of one product's variants until the transaction ends.
/// Checkouts never take it, so it never waits for them nor they for it.
pub(crate) async fn lock_product_variants(
    conn: &mut AsyncPgConnection,
    product_id: i64,
) -> Result<()> {
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended('ecom.product_variants', $1))",
    )
    .bind::<BigInt, _>(product_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// A variant write changes what the product shows: its `updated_at` moves with it, and
/// `product.updated` is recorded. Called
/// after the variant rows are written, so the product row is still locked after them.
/// Stock moved by orders does not come here (it is not a change of the product).
async fn touch_product(conn: &mut AsyncPgConnection, product_id: i64) -> Result<()> {
    diesel::update(products::table.find(product_id))
        .set(products::updated_at.eq(diesel::dsl::now))
        .execute(conn)
        .await?;
    // A variant write is a product write for the outbox: `product.updated`.
    let product = super::search::get_product(conn, product_id).await?;
    super::products::record_event(conn, "product.updated", &product).await
}

/// The stored options as the model's map (values are strings by the API's rules).
fn variant_of(row: VariantRow) -> Result<Variant> {
    let options = serde_json::from_value(row.options)
        .map_err(|e| CatalogError::Database(DieselError::DeserializationError(Box::new(e))))?;
    Ok(Variant {
        id: row.id,
        product_id: row.product_id,
        sku: row.sku,
        price: row.price,
        stock: row.stock,
        options,
        is_default: row.is_default,
    })
}

/// Maps the unique violations of a variant write: a live SKU taken (named by PostgreSQL's
/// detail, `Key (sku)=(…) already exists.`), or another live variant of the product with
/// the same options.
pub(crate) fn variant_conflict(err: DieselError, product_id: i64) -> CatalogError {
    if let DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) = &err {
        match info.constraint_name() {
            Some("product_variants_sku_key") => {
                let sku = info
                    .details()
                    .and_then(|d| d.strip_prefix("Key (sku)=("))
                    .and_then(|d| d.split(") ").next())
                    .unwrap_or_default();
                return CatalogError::SkuTaken(sku.to_string());
            }
            Some("product_variants_options_key") => {
                return CatalogError::DuplicateVariant(product_id);
            }
            _ => {}
        }
    }
    CatalogError::Database(err)
}

/// The live variants of a live product, locked in id order (after the product's advisory
/// lock); a missing or deleted product is [`CatalogError::ProductNotFound`].
async fn lock_live_variants(conn: &mut AsyncPgConnection, product_id: i64) -> Result<Vec<Variant>> {
    lock_product_variants(conn, product_id).await?;
    let live: Option<i64> = products::table
        .filter(products::id.eq(product_id))
        .filter(products::deleted_at.is_null())
        .select(products::id)
        .first(conn)
        .await
        .optional()?;
    if live.is_none() {
        return Err(CatalogError::ProductNotFound(product_id));
    }
    let rows: Vec<VariantRow> = product_variants::table
        .filter(product_variants::product_id.eq(product_id))
        .filter(product_variants::deleted_at.is_null())
        .order(product_variants::id)
        .select(VariantRow::as_select())
        .for_update()
        .load(conn)
        .await?;
    rows.into_iter().map(variant_of).collect()
}

/// The variant `variant_id` among the product's live variants.
fn find(live: &[Variant], product_id: i64, variant_id: i64) -> Result<Variant> {
    live.iter()
        .find(|v| v.id == variant_id)
        .cloned()
        .ok_or(CatalogError::VariantNotFound {
            product_id,
            variant_id,
        })
}

/// Option names must be those of another live variant (`other`, when there is one): all
/// variants of a product share them.
pub(crate) fn check_option_names(
    other: Option<&VariantOptions>,
    options: &VariantOptions,
) -> Result<()> {
    let Some(other) = other else {
        return Ok(());
    };
    if !options.keys().eq(other.keys()) {
        return Err(CatalogError::OptionMismatch {
            expected: other.keys().cloned().collect(),
        });
    }
    Ok(())
}

/// Takes the default flag off the product's default variant (already locked), so that
/// another can take it in the next statement.
async fn clear_default(conn: &mut AsyncPgConnection, product_id: i64) -> Result<()> {
    diesel::update(product_variants::table)
        .filter(product_variants::product_id.eq(product_id))
        .filter(product_variants::is_default)
        .set((
            product_variants::is_default.eq(false),
            product_variants::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// Adds a variant to a live product (at most [`MAX_VARIANTS`] live); `is_default` takes
/// the flag from the old default.
pub async fn create_variant(
    conn: &mut AsyncPgConnection,
    product_id: i64,
    new: NewVariant,
) -> Result<Variant> {
    conn.transaction(async move |conn| {
        let live = lock_live_variants(conn, product_id).await?;
        if live.len() >= MAX_VARIANTS {
            return Err(CatalogError::TooManyVariants(product_id));
        }
        check_option_names(live.as_slice().first().map(|v| &v.options), &new.options)?;
        if new.is_default {
            clear_default(conn, product_id).await?;
        }
        let row: VariantRow = diesel::insert_into(product_variants::table)
            .values(VariantInsert::new(product_id, &new))
            .returning(VariantRow::as_returning())
            .get_result(conn)
            .await
            .map_err(|e| variant_conflict(e, product_id))?;
        touch_product(conn, product_id).await?;
        variant_of(row)
    })
    .await
}

/// Changes a live variant of a live product; only the fields given change. The options of
/// a product's only variant may change names; otherwise they keep the others' names.
pub async fn update_variant(
    conn: &mut AsyncPgConnection,
    product_id: i64,
    variant_id: i64,
    changes: VariantChanges,
) -> Result<Variant> {
    let (_, after) = change_variant(conn, product_id, variant_id, changes).await?;
    Ok(after)
}

/// [`update_variant`], giving the variant before and after the change.
async fn change_variant(
    conn: &mut AsyncPgConnection,
    product_id: i64,
    variant_id: i64,
    changes: VariantChanges,
) -> Result<(Variant, Variant)> {
    conn.transaction(async move |conn| {
        let live = lock_live_variants(conn, product_id).await?;
        let current = find(&live, product_id, variant_id)?;
        if changes.is_empty() {
            return Ok((current.clone(), current));
        }
        if let Some(options) = &changes.options {
            let other = live.iter().find(|v| v.id != variant_id);
            check_option_names(other.map(|v| &v.options), options)?;
        }
        let make_default = changes.make_default && !current.is_default;
        if make_default {
            clear_default(conn, product_id).await?;
        }
        let options = changes.options.as_ref().map(options_json);
        let row: VariantRow = diesel::update(product_variants::table.find(variant_id))
            .set((
                changes
                    .sku
                    .as_ref()
                    .map(|sku| product_variants::sku.eq(sku.as_deref())),
                changes.price.map(|p| product_variants::price.eq(p)),
                changes.stock.map(|s| product_variants::stock.eq(s)),
                options.map(|o| product_variants::options.eq(o)),
                make_default.then_some(product_variants::is_default.eq(true)),
                product_variants::updated_at.eq(diesel::dsl::now),
            ))
            .returning(VariantRow::as_returning())
            .get_result(conn)
            .await
            .map_err(|e| variant_conflict(e, product_id))?;
        let after = variant_of(row)?;
        if after != current {
            touch_product(conn, product_id).await?;
        }
        Ok((current, after))
    })
    .await
}

/// Soft-deletes a live variant; the product's last one is [`CatalogError::LastVariant`].
/// When it was the default, the lowest-id live variant becomes the default. Returns the
/// variant as it was.
pub async fn delete_variant(
    conn: &mut AsyncPgConnection,
    product_id: i64,
    variant_id: i64,
) -> Result<Variant> {
    conn.transaction(async move |conn| {
        let live = lock_live_variants(conn, product_id).await?;
        let gone = find(&live, product_id, variant_id)?;
        let Some(heir) = live.iter().find(|v| v.id != variant_id) else {
            return Err(CatalogError::LastVariant(variant_id));
        };
        diesel::update(product_variants::table.find(variant_id))
            .set((
                product_variants::deleted_at.eq(diesel::dsl::sql::<
                    diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
                >("now()")),
                product_variants::is_default.eq(false),
                product_variants::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
        if gone.is_default {
            diesel::update(product_variants::table.find(heir.id))
                .set((
                    product_variants::is_default.eq(true),
                    product_variants::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)
                .await?;
        }
        touch_product(conn, product_id).await?;
        Ok(gone)
    })
    .await
}

impl Audited for Variant {
    const TARGET: &'static str = "variant";

    fn id(&self) -> i64 {
        self.id
    }

    fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "product_id": self.product_id,
            "sku": self.sku,
            "price": self.price,
            "stock": self.stock,
            "options": self.options,
            "is_default": self.is_default,
        })
    }
}

/// [`create_variant`] by `actor_id`, recorded as `variant.create`.
pub async fn create_variant_audited(
    conn: &mut AsyncPgConnection,
    actor_id: i64,
    product_id: i64,
    new: NewVariant,
) -> Result<Variant> {
    conn.transaction(async move |conn| {
        let variant = create_variant(conn, product_id, new).await?;
        audit(conn, actor_id, "variant.create", None, Some(&variant)).await?;
        Ok(variant)
    })
    .await
}

/// [`update_variant`] by `actor_id`, recorded as `variant.update` with before and after
/// (a request that changes nothing records nothing).
pub async fn update_variant_audited(
    conn: &mut AsyncPgConnection,
    actor_id: i64,
    product_id: i64,
    variant_id: i64,
    changes: VariantChanges,
) -> Result<Variant> {
    conn.transaction(async move |conn| {
        let (before, after) = change_variant(conn, product_id, variant_id, changes).await?;
        if after != before {
            audit(
                conn,
                actor_id,
                "variant.update",
                Some(&before),
                Some(&after),
            )
            .await?;
        }
        Ok(after)
    })
    .await
}

/// [`delete_variant`] by `actor_id`, recorded as `variant.delete`.
pub async fn delete_variant_audited(
    conn: &mut AsyncPgConnection,
    actor_id: i64,
    product_id: i64,
    variant_id: i64,
) -> Result<()> {
    conn.transaction(async move |conn| {
        let before = delete_variant(conn, product_id, variant_id).await?;
        audit(conn, actor_id, "variant.delete", Some(&before), None).await
    })
    .await
}
