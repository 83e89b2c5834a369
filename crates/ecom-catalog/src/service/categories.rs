//! Categories and their product counts.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::BigInt;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::{Page, PageRequest};

use super::Result;
use crate::error::CatalogError;
use crate::model::CategorySummary;
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
