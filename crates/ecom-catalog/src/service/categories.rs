//! Categories, their product counts, and the names listings show.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::{Page, PageRequest};

use super::Result;
use crate::error::CatalogError;
use crate::model::{CategoryRef, CategorySummary, Product, ProductRow};
use crate::schema::categories;

/// Categories by name, each with its number of live products from the maintained counts
/// (one statement plus the count).
pub async fn list_categories(
    conn: &mut AsyncPgConnection,
    page: PageRequest,
) -> Result<Page<CategorySummary>> {
    let total: i64 = categories::table.count().get_result(conn).await?;
    // The maintained per-category counts (see the `product_counts` migration).
    let live_count = sql::<BigInt>(
        "(SELECT coalesce(sum(live), 0)::int8 FROM product_counts \
          WHERE category_key = categories.id)",
    );
    let rows: Vec<(i64, String, i64)> = categories::table
        .select((categories::id, categories::name, live_count))
        .order((categories::name.asc(), categories::id.asc()))
        .limit(page.limit)
        .offset(page.offset)
        .load(conn)
        .await?;
    let items = rows
        .into_iter()
        .map(|(id, name, product_count)| CategorySummary {
            id,
            name,
            product_count,
        })
        .collect();
    Ok(Page::new(items, total, page))
}

/// Creates a category; a name already taken (ignoring case) is [`CatalogError::CategoryExists`].
pub async fn create_category(conn: &mut AsyncPgConnection, name: &str) -> Result<CategorySummary> {
    let inserted = diesel::insert_into(categories::table)
        .values(categories::name.eq(name))
        .returning(categories::id)
        .get_result::<i64>(conn)
        .await;
    match inserted {
        Ok(id) => Ok(CategorySummary {
            id,
            name: name.to_string(),
            product_count: 0,
        }),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            Err(CatalogError::CategoryExists(name.to_string()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Names of categories by id, one set per app (see `ecom_catalog::module`), so that a
/// listing names its products' categories without joining `categories` (a third of a
/// plain listing's PostgreSQL time). No endpoint renames or deletes a category, so a name
/// once read stays right; an operator who renames one in SQL restarts the replicas.
#[derive(Default)]
pub struct CategoryNames {
    names: RwLock<HashMap<i64, String>>,
}

/// Names kept at most; a shop with more reads the others each time.
const MAX_NAMES: usize = 10_000;

impl CategoryNames {
    /// `rows` as products with their categories, reading only names not seen before (in
    /// one statement).
    pub(crate) async fn name(
        &self,
        conn: &mut AsyncPgConnection,
        rows: Vec<ProductRow>,
    ) -> Result<Vec<Product>> {
        let mut missing: Vec<i64> = {
            let names = self.names.read().unwrap_or_else(PoisonError::into_inner);
            rows.iter()
                .filter_map(|r| r.category_id)
                .filter(|id| !names.contains_key(id))
                .collect()
        };
        let mut read = HashMap::new();
        if !missing.is_empty() {
            missing.sort_unstable();
            missing.dedup();
            read = categories::table
                .filter(categories::id.eq_any(&missing))
                .select((categories::id, categories::name))
                .load::<(i64, String)>(conn)
                .await?
                .into_iter()
                .collect();
            let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
            for (id, name) in &read {
                if names.len() < MAX_NAMES {
                    names.insert(*id, name.clone());
                }
            }
        }
        let names = self.names.read().unwrap_or_else(PoisonError::into_inner);
        Ok(rows
            .into_iter()
            .map(|row| {
                let category = row.category_id.and_then(|id| {
                    let name = names.get(&id).or_else(|| read.get(&id))?;
                    Some(CategoryRef {
                        id,
                        name: name.clone(),
                    })
                });
                Product { row, category }
            })
            .collect())
    }
}
