//! Product writes, plain and audited (the routes call the audited ones: each write
//! and its audit-trail row commit together). Each write records its outbox event
//! (`product.created`, `product.updated`, `product.deleted`) in the same transaction.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ecom_core::events::{self, NewEvent};

use super::Result;
use super::search::get_product;
use crate::api::ProductOut;
use crate::error::CatalogError;
use crate::model::{
    CategoryChoice, NewProduct, Product, ProductChanges, ProductInsert, VariantInsert,
};
use crate::schema::{product_variants, products};

/// Maps a foreign-key failure on `products.category_id` to [`CatalogError::UnknownCategory`].
fn category_fk(err: DieselError, category_id: Option<i64>) -> CatalogError {
    match (&err, category_id) {
        (DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info), Some(id))
            if info.constraint_name() == Some("products_category_id_fkey") =>
        {
            CatalogError::UnknownCategory(id)
        }
        _ => CatalogError::Database(err),
    }
}

/// Creates a product with its variants (one of them default), creating its category first
/// when it is given by a new name.
pub async fn create_product(conn: &mut AsyncPgConnection, new: NewProduct) -> Result<Product> {
    conn.transaction(async move |conn| {
        let category_id = match &new.category {
            None => None,
            Some(CategoryChoice::Id(id)) => Some(*id),
            Some(CategoryChoice::Name(name)) => Some(category_by_name(conn, name).await?),
        };
        let default = new
            .variants
            .iter()
            .find(|v| v.is_default)
            .ok_or_else(|| CatalogError::invalid("variants", "one must be the default"))?;
        let first = new.variants.as_slice().first().map(|v| &v.options);
        for variant in &new.variants {
            super::variants::check_option_names(first, &variant.options)?;
        }
        let prices = new.variants.iter().map(|v| v.price);
        let insert = ProductInsert {
            name: &new.name,
            description: &new.description,
            price: default.price,
            stock: default.stock,
            min_price: prices.clone().min().unwrap_or(default.price),
            max_price: prices.max().unwrap_or(default.price),
            category_id,
        };
        let id = diesel::insert_into(products::table)
            .values(&insert)
            .returning(products::id)
            .get_result::<i64>(conn)
            .await
            .map_err(|e| category_fk(e, category_id))?;
        let variants: Vec<VariantInsert<'_>> = new
            .variants
            .iter()
            .map(|v| VariantInsert::new(id, v))
            .collect();
        diesel::insert_into(product_variants::table)
            .values(&variants)
            .execute(conn)
            .await
            .map_err(|e| super::variants::variant_conflict(e, id))?;
        let product = get_product(conn, id).await?;
        record_event(conn, "product.created", &product).await?;
        Ok::<_, CatalogError>(product)
    })
    .await
}

/// The id of the category with this name (case-insensitive), created when there is none.
async fn category_by_name(conn: &mut AsyncPgConnection, name: &str) -> Result<i64> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    // The no-op update makes RETURNING yield the existing row on conflict, in one statement
    // that is safe against a concurrent insert of the same name.
    let row: Id = diesel::sql_query(
        "INSERT INTO categories (name) VALUES ($1) \
         ON CONFLICT ((lower(name))) DO UPDATE SET name = categories.name \
         RETURNING id",
    )
    .bind::<Text, _>(name)
    .get_result(conn)
    .await?;
    Ok(row.id)
}

/// Applies a partial update to a live product and bumps `updated_at`. A change that
/// leaves the product as it was writes nothing (it keeps its `updated_at`, and no event).
pub async fn update_product(
    conn: &mut AsyncPgConnection,
    id: i64,
    changes: ProductChanges,
) -> Result<Product> {
    if changes.is_empty() {
        return get_product(conn, id).await;
    }
    let category_id = changes.category_id.flatten();
    conn.transaction(async move |conn| {
        // Admin writes of one product queue here, so `before` is what this write changes.
        super::variants::lock_product_variants(conn, id).await?;
        let before = get_product(conn, id).await?;
        // In a savepoint, so a write that changes nothing can be taken back whole.
        let written = conn
            .transaction(async |conn| {
                write_changes(conn, id, changes, category_id)
                    .await
                    .map_err(Kept::Failed)?;
                let after = get_product(conn, id).await.map_err(Kept::Failed)?;
                if same_content(&before, &after) {
                    return Err(Kept::Unchanged);
                }
                Ok(after)
            })
            .await;
        match written {
            Ok(after) => {
                record_event(conn, "product.updated", &after).await?;
                Ok(after)
            }
            Err(Kept::Unchanged) => Ok(before),
            Err(Kept::Failed(e)) => Err(e),
        }
    })
    .await
}

/// Why [`update_product`]'s savepoint was rolled back.
enum Kept {
    Unchanged,
    Failed(CatalogError),
}

impl From<DieselError> for Kept {
    fn from(e: DieselError) -> Self {
        Kept::Failed(CatalogError::Database(e))
    }
}

/// [`update_product`]'s writes: the default variant's price and stock (mirrored onto the
/// product by the trigger), then the product's own fields.
async fn write_changes(
    conn: &mut AsyncPgConnection,
    id: i64,
    mut changes: ProductChanges,
    category_id: Option<i64>,
) -> Result<()> {
    let (price, stock) = (changes.price.take(), changes.stock.take());
    if price.is_some() || stock.is_some() {
        diesel::update(product_variants::table)
            .filter(product_variants::product_id.eq(id))
            .filter(product_variants::is_default)
            .set((
                price.map(|p| product_variants::price.eq(p)),
                stock.map(|s| product_variants::stock.eq(s)),
                product_variants::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
            .await?;
    }
    let updated = diesel::update(products::table)
        .filter(products::id.eq(id))
        .filter(products::deleted_at.is_null())
        .set((&changes, products::updated_at.eq(diesel::dsl::now)))
        .execute(conn)
        .await
        .map_err(|e| category_fk(e, category_id))?;
    if updated == 0 {
        return Err(CatalogError::ProductNotFound(id));
    }
    Ok(())
}

/// Whether two reads of a product show the same thing, `updated_at`s aside.
fn same_content(a: &Product, b: &Product) -> bool {
    fn without_times(product: &Product) -> serde_json::Value {
        let mut value = serde_json::to_value(ProductOut::from(product.clone())).unwrap_or_default();
        strip_updated_at(&mut value);
        value
    }
    without_times(a) == without_times(b)
}

fn strip_updated_at(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("updated_at");
            map.values_mut().for_each(strip_updated_at);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_updated_at),
        _ => {}
    }
}

/// Records `product.created` / `product.updated` with the product as `GET /products/{id}`
/// shows it, in the write's transaction (stock moved by orders records none).
pub(crate) async fn record_event(
    conn: &mut AsyncPgConnection,
    event_type: &str,
    product: &Product,
) -> Result<()> {
    events::record(
        conn,
        NewEvent {
            event_type,
            aggregate_type: "product",
            aggregate_id: product.row.id,
            owner_id: None,
            data: serde_json::json!({"product": ProductOut::from(product.clone())}),
        },
    )
    .await?;
    Ok(())
}

/// Soft delete: the product leaves the catalog, its row stays for order history. Waits
/// for variant writes of the product in flight, so none lands on a deleted product.
pub async fn delete_product(conn: &mut AsyncPgConnection, id: i64) -> Result<()> {
    conn.transaction(async move |conn| {
        super::variants::lock_product_variants(conn, id).await?;
        mark_deleted(conn, id).await?;
        events::record(
            conn,
            NewEvent {
                event_type: "product.deleted",
                aggregate_type: "product",
                aggregate_id: id,
                owner_id: None,
                data: serde_json::json!({"product_id": id}),
            },
        )
        .await?;
        Ok(())
    })
    .await
}

async fn mark_deleted(conn: &mut AsyncPgConnection, id: i64) -> Result<()> {
    let updated = diesel::update(products::table)
        .filter(products::id.eq(id))
        .filter(products::deleted_at.is_null())
        .set((
            products::deleted_at.eq(sql::<Nullable<Timestamptz>>("now()")),
            products::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await?;
    if updated == 0 {
        return Err(CatalogError::ProductNotFound(id));
    }
    Ok(())
}

/// An object whose writes the audit trail records, as `target_type` and snapshot.
pub(crate) trait Audited {
    const TARGET: &'static str;
    fn id(&self) -> i64;
    /// What the audit trail keeps of it.
    fn snapshot(&self) -> serde_json::Value;
}

impl Audited for Product {
    const TARGET: &'static str = "product";

    fn id(&self) -> i64 {
        self.row.id
    }

    fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.row.name,
            "price": self.row.price,
            "stock": self.row.stock,
            "category_id": self.row.category_id,
        })
    }
}

/// Records a catalog write (`product.create`, `variant.update`, …) with the object before
/// and after it.
pub(crate) async fn audit<T: Audited>(
    conn: &mut AsyncPgConnection,
    actor_id: i64,
    action: &str,
    before: Option<&T>,
    after: Option<&T>,
) -> Result<()> {
    let target_id = after.or(before).map_or(0, Audited::id);
    ecom_core::audit::record(
        conn,
        ecom_core::audit::AuditEntry {
            actor_id,
            action,
            target_type: T::TARGET,
            target_id: target_id.to_string(),
            before: before.map(Audited::snapshot),
            after: after.map(Audited::snapshot),
        },
    )
    .await?;
    Ok(())
}

/// [`create_product`] by `actor_id`, recorded as `product.create`.
pub async fn create_product_audited(
    conn: &mut AsyncPgConnection,
    actor_id: i64,
    new: NewProduct,
) -> Result<Product> {
    conn.transaction(async move |conn| {
        let product = create_product(conn, new).await?;
        audit(conn, actor_id, "product.create", None, Some(&product)).await?;
        Ok(product)
    })
    .await
}

/// [`update_product`] by `actor_id`, recorded as `product.update` with before and after.
pub async fn update_product_audited(
    conn: &mut AsyncPgConnection,
    actor_id: i64,
    id: i64,
    changes: ProductChanges,
) -> Result<Product> {
    conn.transaction(async move |conn| {
        let before = get_product(conn, id).await?;
        let after = update_product(conn, id, changes).await?;
        audit(
            conn,
            actor_id,
            "product.update",
            Some(&before),
            Some(&after),
        )
        .await?;
        Ok(after)
    })
    .await
}

/// [`delete_product`] by `actor_id`, recorded as `product.delete`.
pub async fn delete_product_audited(
    conn: &mut AsyncPgConnection,
    actor_id: i64,
    id: i64,
) -> Result<()> {
    conn.transaction(async move |conn| {
        let before = get_product(conn, id).await?;
        delete_product(conn, id).await?;
        audit(conn, actor_id, "product.delete", Some(&before), None).await
    })
    .await
}
