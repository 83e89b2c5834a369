//! Listing and searching products, and one product by id.
//!
//! A search takes its candidates from the text indexes alone (full-text, prefix and trigram
//! matches, in a materialized CTE), then filters, ranks and pages them in the same
//! statement. So the plan's cost grows with the text matches, never with the catalog, and a
//! cached generic plan cannot trade the GIN indexes for a price-range scan that tests every
//! row with `<%` (what the single-`WHERE` query did after five executions).
//!
//! Totals never count the catalog: the unfiltered and per-category listings read the
//! maintained `product_counts`; other filtered listings count exactly up to
//! [`EXACT_TOTAL_CAP`]; a search ranks and counts at most that many text matches. Beyond the
//! cap the page says `total_is_estimate` and `total` is PostgreSQL's estimate.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, BoxedSqlQuery, Query, QueryFragment, QueryId, SqlQuery};
use diesel::sql_types::Untyped;
use diesel::sql_types::{BigInt, Double, Nullable, Numeric, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::{Money, Page, PageRequest};

use super::Result;
use crate::error::CatalogError;
use crate::model::{
    CategoryRef, CursorKey, Product, ProductCursor, ProductFilter, ProductRow, ProductSort,
};
use crate::schema::{categories, product_counts, products};

/// Matches counted exactly before a listing's total becomes PostgreSQL's estimate; also the
/// most text matches a search ranks.
pub const EXACT_TOTAL_CAP: i64 = 10_000;

/// How a search string is matched.
pub struct SearchTerms {
    /// Passed to `websearch_to_tsquery` (quotes, `or`, `-word` work).
    pub web: String,
    /// `word:* & word:*` for type-ahead prefix matching; only for plain queries.
    pub prefix: Option<String>,
    /// The query for trigram word similarity with the name (typos); only for plain queries.
    pub fuzzy: Option<String>,
}

impl SearchTerms {
    pub fn new(search: &str) -> Self {
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

/// A value bound to a statement.
#[derive(Clone)]
enum Value {
    Text(String),
    NullableText(Option<String>),
    Money(Money),
    BigInt(i64),
    Double(f64),
    Timestamp(DateTime<Utc>),
}

/// SQL text with `$n` placeholders and the values they stand for.
#[derive(Clone, Default)]
struct Statement {
    sql: String,
    values: Vec<Value>,
}

impl Statement {
    /// Appends SQL text.
    fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Binds a value and returns its placeholder, to be used in as many places as needed.
    fn param(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    /// The statement as diesel-async prepares it: once per connection and SQL text (a
    /// listing has a bounded number of shapes), where `sql_query` is parsed at every run.
    fn prepared(self) -> Prepared {
        Prepared(self)
    }

    /// The statement parsed and planned for these very values (for `EXPLAIN` estimates,
    /// which a generic plan would make from default selectivities).
    fn unprepared(self) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
        let mut query = diesel::sql_query(self.sql).into_boxed();
        for value in self.values {
            query = match value {
                Value::Text(v) => query.bind::<Text, _>(v),
                Value::NullableText(v) => query.bind::<Nullable<Text>, _>(v),
                Value::Money(v) => query.bind::<Numeric, _>(v),
                Value::BigInt(v) => query.bind::<BigInt, _>(v),
                Value::Double(v) => query.bind::<Double, _>(v),
                Value::Timestamp(v) => query.bind::<Timestamptz, _>(v),
            };
        }
        query
    }
}

/// A built [`Statement`] that diesel-async may cache: its SQL is written with each `$n`
/// replaced by a bind of value n.
struct Prepared(Statement);

impl QueryId for Prepared {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for Prepared {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let Statement { sql, values } = &self.0;
        let mut rest = sql.as_str();
        while let Some(at) = rest.find('$') {
            out.push_sql(&rest[..at]);
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let value = rest[at + 1..at + 1 + digits]
                .parse::<usize>()
                .ok()
                .and_then(|n| values.get(n.checked_sub(1)?))
                .ok_or_else(|| {
                    diesel::result::Error::QueryBuilderError("a placeholder without a value".into())
                })?;
            match value {
                Value::Text(v) => out.push_bind_param::<Text, _>(v)?,
                Value::NullableText(v) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Value::Money(v) => out.push_bind_param::<Numeric, _>(v)?,
                Value::BigInt(v) => out.push_bind_param::<BigInt, _>(v)?,
                Value::Double(v) => out.push_bind_param::<Double, _>(v)?,
                Value::Timestamp(v) => out.push_bind_param::<Timestamptz, _>(v)?,
            }
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

/// The search terms of one statement, parsed once in a one-row `terms` CTE: a cached
/// generic plan would otherwise parse the queries again for every candidate row.
struct TermsCte(String);

impl TermsCte {
    fn bind(statement: &mut Statement, terms: &SearchTerms) -> Self {
        let web = statement.param(Value::Text(terms.web.clone()));
        let prefix = statement.param(Value::NullableText(terms.prefix.clone()));
        let fuzzy = statement.param(Value::NullableText(terms.fuzzy.clone()));
        Self(format!(
            "terms AS MATERIALIZED (SELECT websearch_to_tsquery('english', {web}) AS web, \
             to_tsquery('english', {prefix}) AS prefix, {fuzzy}::text AS fuzzy)"
        ))
    }
}

/// A full-text match, or (for plain queries) a prefix match on every word or a trigram
/// word-similarity match on the name (typos); GIN indexes serve all three. A NULL prefix or
/// fuzzy term matches nothing, so the statement has one shape.
const TEXT_MATCH: &str = "(search_vector @@ terms.web OR search_vector @@ terms.prefix \
     OR terms.fuzzy <% name)";

/// Relevance: the full-text rank (name weighs more than description), plus the prefix rank
/// and the trigram similarity to the name for plain queries.
const RELEVANCE: &str = "(2 * ts_rank_cd(search_vector, terms.web) \
     + coalesce(ts_rank_cd(search_vector, terms.prefix), 0) \
     + coalesce(word_similarity(terms.fuzzy, name), 0))::float8";

/// Appends ` AND …` for each filter other than the search, on the columns of `table`.
fn push_filters(statement: &mut Statement, filter: &ProductFilter, table: &str) {
    if let Some(id) = filter.category_id {
        let p = statement.param(Value::BigInt(id));
        statement.push(&format!(" AND {table}.category_id = {p}"));
    }
    if let Some(min) = filter.min_price {
        let p = statement.param(Value::Money(min));
        statement.push(&format!(" AND {table}.price >= {p}"));
    }
    if let Some(max) = filter.max_price {
        let p = statement.param(Value::Money(max));
        statement.push(&format!(" AND {table}.price <= {p}"));
    }
    match filter.in_stock {
        Some(true) => statement.push(&format!(" AND {table}.stock > 0")),
        Some(false) => statement.push(&format!(" AND {table}.stock = 0")),
        None => statement,
    };
}

/// Appends the keyset condition of `after`: the rows that follow it in its sort order.
fn push_after(statement: &mut Statement, after: &ProductCursor, table: &str) {
    let id = statement.param(Value::BigInt(after.id));
    let condition = match (after.key, after.sort) {
        (CursorKey::Rank(rank), _) => {
            let rank = statement.param(Value::Double(rank));
            format!("({table}.rank, {table}.id) < ({rank}, {id})")
        }
        (CursorKey::CreatedAt(at), _) => {
            let at = statement.param(Value::Timestamp(at));
            format!("({table}.created_at, {table}.id) < ({at}, {id})")
        }
        (CursorKey::Price(price), sort) => {
            let price = statement.param(Value::Money(price));
            let direction = if sort == ProductSort::PriceAsc {
                ">"
            } else {
                "<"
            };
            format!("({table}.price, {table}.id) {direction} ({price}, {id})")
        }
        (CursorKey::Rating(Some(rating)), _) => {
            let rating = statement.param(Value::Double(rating));
            format!(
                "({table}.avg_rating < {rating} OR ({table}.avg_rating = {rating} AND {table}.id < {id}) \
                 OR {table}.avg_rating IS NULL)"
            )
        }
        (CursorKey::Rating(None), _) => {
            format!("({table}.avg_rating IS NULL AND {table}.id < {id})")
        }
    };
    statement.push(&format!(" AND {condition}"));
}

/// Appends ` LIMIT n [OFFSET $k]` for `page` and returns the rows it fetches.
///
/// The limit is a literal rounded up to one of a few sizes, and a first page has no
/// `OFFSET`: with `LIMIT $n` PostgreSQL costs a cached generic plan for a tenth of the
/// table and so re-plans the statement at every run (half of a listing's database time);
/// with literals the generic plan costs what the custom one does and is reused. The few
/// extra rows of a rounded-up limit are dropped by [`ListedRow::page`].
fn push_page(statement: &mut Statement, page: PageRequest) -> i64 {
    let fetch = FETCH_SIZES
        .into_iter()
        .find(|&size| size >= page.limit)
        .unwrap_or(page.limit);
    statement.push(&format!(" LIMIT {fetch}"));
    if page.offset > 0 {
        let offset = statement.param(Value::BigInt(page.offset));
        statement.push(&format!(" OFFSET {offset}"));
    }
    fetch
}

/// The limits a listing statement is written with (see [`push_page`]).
const FETCH_SIZES: [i64; 3] = [
    ecom_core::pagination::DEFAULT_LIMIT,
    50,
    ecom_core::pagination::MAX_LIMIT,
];

/// The `ORDER BY` of a listing on the columns of `table` (ties broken by id, as before).
fn order_by(sort: ProductSort, searching: bool, table: &str) -> String {
    match (sort, searching) {
        (ProductSort::Relevance, true) => format!("{table}.rank DESC, {table}.id DESC"),
        (ProductSort::Relevance | ProductSort::Newest, _) => {
            format!("{table}.created_at DESC, {table}.id DESC")
        }
        (ProductSort::PriceAsc, _) => format!("{table}.price ASC, {table}.id ASC"),
        (ProductSort::PriceDesc, _) => format!("{table}.price DESC, {table}.id DESC"),
        (ProductSort::Rating, _) => {
            format!("{table}.avg_rating DESC NULLS LAST, {table}.id DESC")
        }
    }
}

/// The columns of a listed product and its category's name, from `p` and `c`.
const LISTED_COLUMNS: &str = "p.id, p.name, p.description, p.price, p.stock, p.category_id, \
     p.review_count, p.avg_rating, p.created_at, p.updated_at, c.name AS category_name";

/// A listed product as one statement returns it, with the counts of its listing.
#[derive(QueryableByName)]
struct ListedRow {
    #[diesel(embed)]
    product: ProductRow,
    #[diesel(sql_type = Nullable<Text>)]
    category_name: Option<String>,
    /// The relevance of a search hit.
    #[diesel(sql_type = Nullable<Double>)]
    rank: Option<f64>,
    /// Text matches read, at most the cap + 1 (searches only).
    #[diesel(sql_type = BigInt)]
    candidates: i64,
    /// Candidates that pass the filters.
    #[diesel(sql_type = BigInt)]
    hits: i64,
}

impl ListedRow {
    /// The products of a page, and the cursor after it when it is full.
    fn page(
        mut rows: Vec<Self>,
        sort: ProductSort,
        page: PageRequest,
    ) -> (Vec<Product>, Option<String>) {
        rows.truncate(usize::try_from(page.limit).unwrap_or(usize::MAX));
        let full = i64::try_from(rows.len()).is_ok_and(|n| n == page.limit);
        let next = rows
            .as_slice()
            .last()
            .filter(|_| full)
            .map(|last| ProductCursor::after(sort, &last.product, last.rank).to_string());
        (rows.into_iter().map(Self::into_product).collect(), next)
    }

    fn into_product(self) -> Product {
        let category = match (self.product.category_id, self.category_name) {
            (Some(id), Some(name)) => Some(CategoryRef { id, name }),
            _ => None,
        };
        Product {
            row: self.product,
            category,
        }
    }
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = BigInt)]
    candidates: i64,
    #[diesel(sql_type = BigInt)]
    hits: i64,
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// One page of the live catalog: one statement for a search, two for other listings (the
/// page, and its total from the maintained counts or a capped count), whatever the page
/// size; one more when a total is estimated.
pub async fn list_products(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    page: PageRequest,
) -> Result<Page<Product>> {
    list_products_capped(conn, filter, page, None, EXACT_TOTAL_CAP).await
}

/// [`list_products`] from a keyset cursor (`after`) instead of an offset.
pub async fn list_products_after(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    page: PageRequest,
    after: Option<&ProductCursor>,
) -> Result<Page<Product>> {
    list_products_capped(conn, filter, page, after, EXACT_TOTAL_CAP).await
}

/// [`list_products_after`] with another cap, so that tests can cross it with a few products.
#[doc(hidden)]
pub async fn list_products_capped(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    page: PageRequest,
    after: Option<&ProductCursor>,
    cap: i64,
) -> Result<Page<Product>> {
    let listing = Listing {
        filter,
        page,
        after,
        cap,
    };
    match filter.search.as_deref().map(SearchTerms::new) {
        Some(terms) => search(conn, &listing, &terms).await,
        None => browse(conn, &listing).await,
    }
}

/// The CTEs of a search: `matched` (at most cap + 1 text matches, with what the filters and
/// sorts read) and `hits` (those passing the filters).
fn search_candidates(filter: &ProductFilter, terms: &SearchTerms, cap: i64) -> Statement {
    let mut statement = Statement::default();
    let terms = TermsCte::bind(&mut statement, terms);
    let limit = statement.param(Value::BigInt(cap + 1));
    statement.push(&format!(
        "WITH {}, matched AS MATERIALIZED (\
           SELECT id, price, stock, category_id, created_at, avg_rating, {RELEVANCE} AS rank \
           FROM terms, products WHERE deleted_at IS NULL AND {TEXT_MATCH} LIMIT {limit}), \
         hits AS MATERIALIZED (SELECT * FROM matched WHERE TRUE",
        terms.0,
    ));
    push_filters(&mut statement, filter, "matched");
    statement.push(")");
    statement
}

/// One listing request: what to list, which page, from where, and the counting cap.
struct Listing<'a> {
    filter: &'a ProductFilter,
    page: PageRequest,
    after: Option<&'a ProductCursor>,
    cap: i64,
}

async fn search(
    conn: &mut AsyncPgConnection,
    listing: &Listing<'_>,
    terms: &SearchTerms,
) -> Result<Page<Product>> {
    let Listing {
        filter,
        page,
        after,
        cap,
    } = *listing;
    let mut statement = search_candidates(filter, terms, cap);
    statement.push(", shown AS (SELECT * FROM hits WHERE TRUE");
    if let Some(after) = after {
        push_after(&mut statement, after, "hits");
    }
    statement.push(&format!(
        " ORDER BY {}",
        order_by(filter.sort, true, "hits")
    ));
    push_page(&mut statement, page);
    let shown_sort = order_by(filter.sort, true, "shown");
    statement.push(&format!(
        ") SELECT {LISTED_COLUMNS}, shown.rank, \
           (SELECT count(*) FROM matched) AS candidates, (SELECT count(*) FROM hits) AS hits \
         FROM shown JOIN products p ON p.id = shown.id \
         LEFT JOIN categories c ON c.id = p.category_id \
         ORDER BY {shown_sort}"
    ));
    let rows: Vec<ListedRow> = statement.prepared().load(conn).await?;

    let (candidates, hits) = match rows.as_slice().first() {
        Some(row) => (row.candidates, row.hits),
        None => {
            let mut counting = search_candidates(filter, terms, cap);
            counting.push(
                " SELECT (SELECT count(*) FROM matched) AS candidates, \
                 (SELECT count(*) FROM hits) AS hits",
            );
            let counted: Counted = counting.prepared().get_result(conn).await?;
            (counted.candidates, counted.hits)
        }
    };
    let counted = (candidates <= cap).then_some(hits);
    finish(conn, listing, Some(terms), rows, counted).await
}

async fn browse(conn: &mut AsyncPgConnection, listing: &Listing<'_>) -> Result<Page<Product>> {
    let (filter, page, cap) = (listing.filter, listing.page, listing.cap);
    // The unfiltered and per-category listings (most of the traffic) read their total
    // from the maintained counts in the page's own statement, which is prepared once per
    // connection. A price or stock filter's selectivity decides the plan (an index on the
    // price for a narrow range, the sort's index for a wide one), so those statements are
    // planned for their values at every run instead of through a cached generic plan.
    let counted_by_category =
        filter.min_price.is_none() && filter.max_price.is_none() && filter.in_stock.is_none();
    let mut statement = Statement::default();
    let hits = if counted_by_category {
        let category = filter
            .category_id
            .map(|id| {
                format!(
                    " WHERE category_key = {}",
                    statement.param(Value::BigInt(id))
                )
            })
            .unwrap_or_default();
        format!("(SELECT coalesce(sum(live), 0)::int8 FROM product_counts{category})")
    } else {
        "0::int8".to_string()
    };
    statement.push(&format!(
        "SELECT {LISTED_COLUMNS}, NULL::float8 AS rank, 0::int8 AS candidates, {hits} AS hits \
         FROM products p LEFT JOIN categories c ON c.id = p.category_id \
         WHERE p.deleted_at IS NULL"
    ));
    push_filters(&mut statement, filter, "p");
    if let Some(after) = listing.after {
        push_after(&mut statement, after, "p");
    }
    statement.push(&format!(" ORDER BY {}", order_by(filter.sort, false, "p")));
    push_page(&mut statement, page);

    if counted_by_category {
        let rows: Vec<ListedRow> = statement.prepared().load(conn).await?;
        let total = match rows.as_slice().first() {
            Some(row) => row.hits,
            None => maintained_count(conn, filter.category_id).await?,
        };
        return finish(conn, listing, None, rows, Some(total)).await;
    }
    let rows: Vec<ListedRow> = statement.unprepared().load(conn).await?;
    let mut counting = Statement::default();
    counting.push("SELECT count(*) AS hits, 0::int8 AS candidates FROM (SELECT FROM products p WHERE p.deleted_at IS NULL");
    push_filters(&mut counting, filter, "p");
    let limit = counting.param(Value::BigInt(cap + 1));
    counting.push(&format!(" LIMIT {limit}) AS capped"));
    let counted: Counted = counting.unprepared().get_result(conn).await?;
    let counted = (counted.hits <= cap).then_some(counted.hits);
    finish(conn, listing, None, rows, counted).await
}

/// The page of `rows` with its total: `counted` when the matches were counted, else
/// PostgreSQL's estimate, marked as one.
async fn finish(
    conn: &mut AsyncPgConnection,
    listing: &Listing<'_>,
    terms: Option<&SearchTerms>,
    rows: Vec<ListedRow>,
    counted: Option<i64>,
) -> Result<Page<Product>> {
    let page = listing.page;
    let (items, next) = ListedRow::page(rows, listing.filter.sort, page);
    let listed = match counted {
        Some(total) => Page::new(items, total, page),
        None => {
            let total = estimate(conn, listing.filter, terms, listing.cap).await?;
            Page::new(items, total, page).estimated(true)
        }
    };
    Ok(listed.with_next_after(next))
}

/// Live products in the catalog, or in one category, from the maintained counts.
async fn maintained_count(conn: &mut AsyncPgConnection, category_id: Option<i64>) -> Result<i64> {
    let sum = diesel::dsl::sql::<BigInt>("coalesce(sum(live), 0)::int8");
    let mut query = product_counts::table.select(sum).into_boxed();
    if let Some(id) = category_id {
        query = query.filter(product_counts::category_key.eq(id));
    }
    Ok(query.get_result(conn).await?)
}

/// PostgreSQL's estimate of the matches of a listing, never below the cap it exceeded.
async fn estimate(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    terms: Option<&SearchTerms>,
    cap: i64,
) -> Result<i64> {
    let mut statement = Statement::default();
    match terms {
        Some(terms) => {
            let terms = TermsCte::bind(&mut statement, terms);
            statement.push(&format!(
                "EXPLAIN WITH {} SELECT FROM terms, products p \
                 WHERE p.deleted_at IS NULL AND {TEXT_MATCH}",
                terms.0
            ))
        }
        None => statement.push("EXPLAIN SELECT FROM products p WHERE p.deleted_at IS NULL"),
    };
    push_filters(&mut statement, filter, "p");
    let plan: Vec<PlanLine> = statement.unprepared().load(conn).await?;
    let estimated = plan
        .as_slice()
        .first()
        .and_then(|top| top.line.split(" rows=").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|rows| rows.parse::<i64>().ok())
        .unwrap_or(0);
    Ok(estimated.max(cap + 1))
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
