//! The catalog's use cases. Each function takes a connection; the ones that write more
//! than one row run in a transaction (a savepoint when the caller already opened one).

use std::collections::BTreeMap;

use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{Array, BigInt, Bool, Float, Integer, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ecom_core::{Page, PageRequest};

use crate::error::CatalogError;
use crate::model::{
    CategoryChoice, CategoryRef, CategorySummary, NewProduct, NewReview, Product, ProductChanges,
    ProductFilter, ProductInsert, ProductRow, ProductSort, ReservedLine, Review, ReviewInsert,
    Shortage, StockLine, StockShortfall,
};
use crate::schema::{categories, products, reviews};

type Result<T> = std::result::Result<T, CatalogError>;

// ---------------------------------------------------------------------------------------
// Products: listing and search
// ---------------------------------------------------------------------------------------

/// How a search string is matched.
struct SearchTerms {
    /// Passed to `websearch_to_tsquery` (quotes, `or`, `-word` work).
    web: String,
    /// `word:* & word:*` for type-ahead prefix matching; only for plain queries.
    prefix: Option<String>,
    /// The query for trigram word similarity with the name (typos); only for plain queries.
    fuzzy: Option<String>,
}

impl SearchTerms {
    fn new(search: &str) -> Self {
        let has_operators = search.contains('"')
            || search
                .split_whitespace()
                .any(|w| w.starts_with('-') || w.eq_ignore_ascii_case("or"));
        let words: Vec<String> = search
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        let plain = !has_operators && !words.is_empty();
        let prefix = plain.then(|| {
            words
                .iter()
                .map(|w| format!("{w}:*"))
                .collect::<Vec<_>>()
                .join(" & ")
        });
        Self {
            web: search.to_string(),
            prefix,
            fuzzy: plain.then(|| words.join(" ")),
        }
    }
}

/// The search condition: a full-text match, or (for plain queries) a prefix match on every
/// word or a trigram word-similarity match on the name (typos); GIN indexes serve all three.
/// A NULL prefix or fuzzy term matches nothing, so the statement has one shape.
macro_rules! search_condition {
    ($terms:expr) => {
        sql::<Bool>("(products.search_vector @@ websearch_to_tsquery('english', ")
            .bind::<Text, _>($terms.web.clone())
            .sql(") OR products.search_vector @@ to_tsquery('english', ")
            .bind::<Nullable<Text>, _>($terms.prefix.clone())
            .sql(") OR ")
            .bind::<Nullable<Text>, _>($terms.fuzzy.clone())
            .sql(" <% products.name)")
    };
}

/// Relevance: the full-text rank (name weighs more than description), plus the prefix rank
/// and the trigram similarity to the name for plain queries.
macro_rules! relevance {
    ($terms:expr) => {
        sql::<Float>("(2 * ts_rank_cd(products.search_vector, websearch_to_tsquery('english', ")
            .bind::<Text, _>($terms.web.clone())
            .sql(")) + coalesce(ts_rank_cd(products.search_vector, to_tsquery('english', ")
            .bind::<Nullable<Text>, _>($terms.prefix.clone())
            .sql(")), 0) + coalesce(word_similarity(")
            .bind::<Nullable<Text>, _>($terms.fuzzy.clone())
            .sql(", products.name), 0))")
    };
}

/// Applies the filters of `$filter` to a boxed query over `products` (joined or not).
macro_rules! filtered {
    ($query:expr, $filter:expr, $terms:expr) => {{
        let filter: &ProductFilter = $filter;
        let mut q = $query.filter(products::deleted_at.is_null());
        if let Some(terms) = $terms {
            q = q.filter(search_condition!(terms));
        }
        if let Some(id) = filter.category_id {
            q = q.filter(products::category_id.eq(id));
        }
        if let Some(min) = filter.min_price {
            q = q.filter(products::price.ge(min));
        }
        if let Some(max) = filter.max_price {
            q = q.filter(products::price.le(max));
        }
        match filter.in_stock {
            Some(true) => q = q.filter(products::stock.gt(0)),
            Some(false) => q = q.filter(products::stock.eq(0)),
            None => {}
        }
        q
    }};
}

/// One page of the live catalog: two statements (count and page, the category joined),
/// whatever the page size.
pub async fn list_products(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    page: PageRequest,
) -> Result<Page<Product>> {
    let terms = filter.search.as_deref().map(SearchTerms::new);
    let total: i64 = filtered!(products::table.into_boxed(), filter, terms.as_ref())
        .select(count_star())
        .get_result(conn)
        .await?;

    let mut q = filtered!(
        products::table
            .left_join(categories::table)
            .select((ProductRow::as_select(), Option::<CategoryRef>::as_select()))
            .into_boxed(),
        filter,
        terms.as_ref()
    );
    q = match (filter.sort, &terms) {
        (ProductSort::Relevance, Some(terms)) => q
            .order(relevance!(terms).desc())
            .then_order_by(products::id.desc()),
        (ProductSort::Relevance | ProductSort::Newest, _) => q
            .order(products::created_at.desc())
            .then_order_by(products::id.desc()),
        (ProductSort::PriceAsc, _) => q
            .order(products::price.asc())
            .then_order_by(products::id.asc()),
        (ProductSort::PriceDesc, _) => q
            .order(products::price.desc())
            .then_order_by(products::id.desc()),
        (ProductSort::Rating, _) => q
            .order(products::avg_rating.desc().nulls_last())
            .then_order_by(products::id.desc()),
    };
    let rows: Vec<(ProductRow, Option<CategoryRef>)> =
        q.limit(page.limit).offset(page.offset).load(conn).await?;
    let items = rows
        .into_iter()
        .map(|(row, category)| Product { row, category })
        .collect();
    Ok(Page::new(items, total, page))
}

/// A live product; missing and soft-deleted ones are [`CatalogError::ProductNotFound`].
pub async fn get_product(conn: &mut AsyncPgConnection, id: i64) -> Result<Product> {
    products::table
        .left_join(categories::table)
        .filter(products::id.eq(id))
        .filter(products::deleted_at.is_null())
        .select((ProductRow::as_select(), Option::<CategoryRef>::as_select()))
        .first::<(ProductRow, Option<CategoryRef>)>(conn)
        .await
        .optional()?
        .map(|(row, category)| Product { row, category })
        .ok_or(CatalogError::ProductNotFound(id))
}

// ---------------------------------------------------------------------------------------
// Products: writes
// ---------------------------------------------------------------------------------------

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

/// Creates a product, creating its category first when it is given by a new name.
pub async fn create_product(conn: &mut AsyncPgConnection, new: NewProduct) -> Result<Product> {
    let id = conn
        .transaction(async move |conn| {
            let category_id = match &new.category {
                None => None,
                Some(CategoryChoice::Id(id)) => Some(*id),
                Some(CategoryChoice::Name(name)) => Some(category_by_name(conn, name).await?),
            };
            let insert = ProductInsert {
                name: &new.name,
                description: &new.description,
                price: new.price,
                stock: new.stock,
                category_id,
            };
            diesel::insert_into(products::table)
                .values(&insert)
                .returning(products::id)
                .get_result::<i64>(conn)
                .await
                .map_err(|e| category_fk(e, category_id))
        })
        .await?;
    get_product(conn, id).await
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

/// Applies a partial update to a live product and bumps `updated_at`.
pub async fn update_product(
    conn: &mut AsyncPgConnection,
    id: i64,
    changes: ProductChanges,
) -> Result<Product> {
    if changes.is_empty() {
        return get_product(conn, id).await;
    }
    let category_id = changes.category_id.flatten();
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
    get_product(conn, id).await
}

/// Soft delete: the product leaves the catalog, its row stays for order history.
pub async fn delete_product(conn: &mut AsyncPgConnection, id: i64) -> Result<()> {
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

// ---------------------------------------------------------------------------------------
// Categories
// ---------------------------------------------------------------------------------------

/// Categories by name, each with its number of live products (one statement plus the count).
pub async fn list_categories(
    conn: &mut AsyncPgConnection,
    page: PageRequest,
) -> Result<Page<CategorySummary>> {
    let total: i64 = categories::table.count().get_result(conn).await?;
    let live_count = sql::<BigInt>(
        "(SELECT count(*) FROM products p \
          WHERE p.category_id = categories.id AND p.deleted_at IS NULL)",
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

// ---------------------------------------------------------------------------------------
// Reviews
// ---------------------------------------------------------------------------------------

/// Adds a user's review of a live product and updates the product's rating aggregates in
/// the same transaction. The aggregate update comes first, so it also locks the product
/// row and serializes concurrent reviews of one product.
pub async fn create_review(
    conn: &mut AsyncPgConnection,
    product_id: i64,
    user_id: i64,
    new: NewReview,
) -> Result<Review> {
    conn.transaction(async move |conn| {
        let touched = diesel::update(products::table)
            .filter(products::id.eq(product_id))
            .filter(products::deleted_at.is_null())
            .set((
                products::review_count.eq(products::review_count + 1),
                products::rating_sum.eq(products::rating_sum + i64::from(new.rating)),
            ))
            .execute(conn)
            .await?;
        if touched == 0 {
            return Err(CatalogError::ProductNotFound(product_id));
        }
        let insert = ReviewInsert {
            product_id,
            user_id,
            rating: new.rating,
            comment: new.comment.as_deref(),
        };
        diesel::insert_into(reviews::table)
            .values(&insert)
            .returning(Review::as_returning())
            .get_result(conn)
            .await
            .map_err(|e| match e {
                DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                    CatalogError::AlreadyReviewed {
                        product_id,
                        user_id,
                    }
                }
                e => e.into(),
            })
    })
    .await
}

/// Reviews of a live product, newest first.
pub async fn list_reviews(
    conn: &mut AsyncPgConnection,
    product_id: i64,
    page: PageRequest,
) -> Result<Page<Review>> {
    let live: bool = diesel::select(diesel::dsl::exists(
        products::table
            .filter(products::id.eq(product_id))
            .filter(products::deleted_at.is_null()),
    ))
    .get_result(conn)
    .await?;
    if !live {
        return Err(CatalogError::ProductNotFound(product_id));
    }
    let total: i64 = reviews::table
        .filter(reviews::product_id.eq(product_id))
        .count()
        .get_result(conn)
        .await?;
    let items = reviews::table
        .filter(reviews::product_id.eq(product_id))
        .order((reviews::created_at.desc(), reviews::id.desc()))
        .select(Review::as_select())
        .limit(page.limit)
        .offset(page.offset)
        .load(conn)
        .await?;
    Ok(Page::new(items, total, page))
}

// ---------------------------------------------------------------------------------------
// Stock: the interface ecom-orders calls inside its own transaction
// ---------------------------------------------------------------------------------------

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
    let mut retry = ecom_core::db::ConflictRetry::new(conn);
    loop {
        match conn
            .transaction(async |conn| reserve_locked(conn, &merged).await)
            .await
        {
            Err(e) if retry.again(&e).await => {}
            outcome => return outcome,
        }
    }
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
    // The rows are locked, so the condition holds; it stays as a guard all the same.
    let updated = diesel::sql_query(
        "UPDATE products SET stock = products.stock - l.quantity \
         FROM unnest($1::bigint[], $2::int[]) AS l(id, quantity) \
         WHERE products.id = l.id AND products.stock >= l.quantity",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Array<Integer>, _>(&quantities)
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
    let mut retry = ecom_core::db::ConflictRetry::new(conn);
    loop {
        match conn
            .transaction(async |conn| return_locked(conn, &merged).await)
            .await
        {
            Err(e) if retry.again(&e).await => {}
            outcome => return outcome,
        }
    }
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
    diesel::sql_query(
        "UPDATE products SET stock = products.stock + l.quantity \
         FROM unnest($1::bigint[], $2::int[]) AS l(id, quantity) \
         WHERE products.id = l.id",
    )
    .bind::<Array<BigInt>, _>(&ids)
    .bind::<Array<Integer>, _>(&quantities)
    .execute(conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Audited product writes (what the routes call): each write and its audit-trail row
// commit together.
// ---------------------------------------------------------------------------------------

/// What the audit trail keeps of a product.
fn audit_snapshot(product: &Product) -> serde_json::Value {
    serde_json::json!({
        "name": product.row.name,
        "price": product.row.price,
        "stock": product.row.stock,
        "category_id": product.row.category_id,
    })
}

async fn audit_product(
    conn: &mut AsyncPgConnection,
    actor_id: i64,
    action: &str,
    product_id: i64,
    before: Option<&Product>,
    after: Option<&Product>,
) -> Result<()> {
    ecom_core::audit::record(
        conn,
        ecom_core::audit::AuditEntry {
            actor_id,
            action,
            target_type: "product",
            target_id: product_id.to_string(),
            before: before.map(audit_snapshot),
            after: after.map(audit_snapshot),
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
        audit_product(
            conn,
            actor_id,
            "product.create",
            product.row.id,
            None,
            Some(&product),
        )
        .await?;
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
        audit_product(
            conn,
            actor_id,
            "product.update",
            id,
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
        audit_product(conn, actor_id, "product.delete", id, Some(&before), None).await
    })
    .await
}
