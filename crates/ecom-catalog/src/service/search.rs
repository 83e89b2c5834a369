//! Listing and searching products, and one product by id.
//!
//! A search reads its text matches from the text indexes alone (full-text, prefix and
//! trigram), ranked, in one statement ([`Matches`]), then filters, sorts, counts and pages
//! them in memory and reads the shown products by id. So its cost grows with the text
//! matches, never with the catalog; no cached generic plan can trade the GIN indexes for
//! a price-range scan that tests every row with `<%` (what the single-`WHERE` query did
//! after five executions); and a replica can reuse the matches for a few seconds
//! ([`super::search_cache`]).
//!
//! Totals never count the catalog: the unfiltered and per-category listings read the
//! maintained `product_counts`; other filtered listings count exactly up to
//! [`EXACT_TOTAL_CAP`]; a search ranks and counts at most that many text matches. Beyond the
//! cap the page says `total_is_estimate` and `total` is PostgreSQL's estimate.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, BoxedSqlQuery, Query, QueryFragment, QueryId, SqlQuery};
use diesel::sql_types::Untyped;
use diesel::sql_types::{
    BigInt, Bool, Double, Integer, Json, Nullable, Numeric, Text, Timestamptz,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::{Money, Page, PageRequest};

use super::Result;
use super::categories::CategoryNames;
use super::search_cache::SearchCache;
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
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk(out)
    }
}

impl Statement {
    /// Writes the SQL with each `$n` replaced by a bind of value n.
    fn walk<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let Statement { sql, values } = self;
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
    // A product is in a price range when one of its variants could be: `min_price=a` keeps
    // products whose dearest variant costs at least a, `max_price=b` those whose cheapest
    // costs at most b.
    if let Some(min) = filter.min_price {
        let p = statement.param(Value::Money(min));
        statement.push(&format!(" AND {table}.max_price >= {p}"));
    }
    if let Some(max) = filter.max_price {
        let p = statement.param(Value::Money(max));
        statement.push(&format!(" AND {table}.min_price <= {p}"));
    }
    match filter.in_stock {
        Some(true) => statement.push(&format!(" AND {table}.in_stock")),
        Some(false) => statement.push(&format!(" AND NOT {table}.in_stock")),
        None => statement,
    };
}

/// Appends the keyset condition of `after`: the rows that follow it in its sort order.
///
/// Each cursor value is a scalar subquery: PostgreSQL then estimates the condition the
/// same way with and without the values, so it keeps the statement's cached generic plan
/// instead of re-planning it at every page (a third of a deep page's time at 10^6 products).
fn push_after(statement: &mut Statement, after: &ProductCursor, table: &str) {
    let fenced = |statement: &mut Statement, value: Value| {
        let sql_type = match value {
            Value::BigInt(_) => "int8",
            Value::Double(_) => "float8",
            Value::Money(_) => "numeric",
            Value::Timestamp(_) => "timestamptz",
            Value::Text(_) | Value::NullableText(_) => "text",
        };
        format!("(SELECT {}::{sql_type})", statement.param(value))
    };
    let id = fenced(statement, Value::BigInt(after.id));
    let condition = match (after.key, after.sort) {
        (CursorKey::Rank(rank), _) => {
            let rank = fenced(statement, Value::Double(rank));
            format!("({table}.rank, {table}.id) < ({rank}, {id})")
        }
        (CursorKey::CreatedAt(at), _) => {
            let at = fenced(statement, Value::Timestamp(at));
            format!("({table}.created_at, {table}.id) < ({at}, {id})")
        }
        (CursorKey::Price(price), sort) => {
            let price = fenced(statement, Value::Money(price));
            if sort == ProductSort::PriceAsc {
                format!("({table}.min_price, {table}.id) > ({price}, {id})")
            } else {
                format!("({table}.max_price, {table}.id) < ({price}, {id})")
            }
        }
        (CursorKey::Rating(Some(rating)), _) => {
            let rating = fenced(statement, Value::Double(rating));
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
        (ProductSort::PriceAsc, _) => format!("{table}.min_price ASC, {table}.id ASC"),
        (ProductSort::PriceDesc, _) => format!("{table}.max_price DESC, {table}.id DESC"),
        (ProductSort::Rating, _) => {
            format!("{table}.avg_rating DESC NULLS LAST, {table}.id DESC")
        }
    }
}

/// The columns of a listed product, from `p` (its category's name comes from
/// [`CategoryNames`]).
const LISTED_COLUMNS: &str = "p.id, p.name, p.description, p.price, p.stock, p.category_id, \
     p.review_count, p.avg_rating, p.created_at, p.updated_at, p.min_price, p.max_price, \
     p.in_stock, p.variants, p.options";

/// A listed product as one statement returns it, with the counts of its listing, read by
/// position ([`ListedColumns`], in the order of [`LISTED_COLUMNS`]): looking each of a
/// page's columns up by name was a visible share of a listing's server time.
#[derive(Queryable)]
struct ListedRow {
    product: ProductRow,
    /// The relevance of a search hit.
    rank: Option<f64>,
    /// The listing's total, from the maintained counts (unfiltered and per-category
    /// listings only).
    hits: i64,
}

/// The SQL types of a [`ListedRow`]: [`LISTED_COLUMNS`], `rank`, `hits`.
type ListedColumns = (
    (
        BigInt,
        Text,
        Text,
        Numeric,
        Integer,
        Nullable<BigInt>,
        Integer,
        Nullable<Double>,
        Timestamptz,
        Timestamptz,
        Numeric,
        Numeric,
        Bool,
        Json,
        Json,
    ),
    Nullable<Double>,
    BigInt,
);

/// A browsing statement whose rows are [`ListedRow`]s: prepared once per connection
/// (`cached`), or planned for its values at every run.
struct ListingStatement {
    statement: Statement,
    cached: bool,
}

impl QueryId for ListingStatement {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for ListingStatement {
    type SqlType = ListedColumns;
}

impl QueryFragment<Pg> for ListingStatement {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if !self.cached {
            out.unsafe_to_cache_prepared();
        }
        self.statement.walk(out)
    }
}

impl ListedRow {
    /// The products of a page, and the cursor after it when it is full.
    fn page(
        mut rows: Vec<Self>,
        sort: ProductSort,
        page: PageRequest,
    ) -> (Vec<ProductRow>, Option<String>) {
        rows.truncate(usize::try_from(page.limit).unwrap_or(usize::MAX));
        let full = i64::try_from(rows.len()).is_ok_and(|n| n == page.limit);
        let next = rows
            .as_slice()
            .last()
            .filter(|_| full)
            .map(|last| ProductCursor::after(sort, &last.product, last.rank).to_string());
        (rows.into_iter().map(|row| row.product).collect(), next)
    }
}

#[derive(QueryableByName)]
struct Counted {
    #[diesel(sql_type = BigInt)]
    hits: i64,
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// One page of the live catalog: for a search, its text matches (one statement, or none
/// when reused) and the products shown; for other listings the page with its total from
/// the maintained counts, or the page and a capped count; one more when a total is
/// estimated.
pub async fn list_products(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    page: PageRequest,
) -> Result<Page<Product>> {
    list_products_after(conn, filter, page, None).await
}

/// [`list_products`] from a keyset cursor (`after`) instead of an offset.
pub async fn list_products_after(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    page: PageRequest,
    after: Option<&ProductCursor>,
) -> Result<Page<Product>> {
    let names = CategoryNames::default();
    list_products_reusing(conn, filter, page, after, MatchSource::Fresh, &names).await
}

/// [`list_products_after`] for the routes: a search reuses recent matches (see
/// [`super::search_cache`]), and categories are named from the app's `names`.
pub async fn list_products_reusing(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    page: PageRequest,
    after: Option<&ProductCursor>,
    source: MatchSource<'_>,
    names: &CategoryNames,
) -> Result<Page<Product>> {
    list_products_capped(conn, filter, page, after, EXACT_TOTAL_CAP, source, names).await
}

/// [`list_products_after`] with another cap, so that tests can cross it with a few products.
#[doc(hidden)]
pub async fn list_products_capped(
    conn: &mut AsyncPgConnection,
    filter: &ProductFilter,
    page: PageRequest,
    after: Option<&ProductCursor>,
    cap: i64,
    source: MatchSource<'_>,
    names: &CategoryNames,
) -> Result<Page<Product>> {
    let listing = Listing {
        filter,
        page,
        after,
        cap,
        names,
    };
    match filter.search.as_deref().map(SearchTerms::new) {
        Some(terms) => search(conn, &listing, &terms, source).await,
        None => browse(conn, &listing).await,
    }
}

/// One listing request: what to list, which page, from where, and the counting cap.
struct Listing<'a> {
    filter: &'a ProductFilter,
    page: PageRequest,
    after: Option<&'a ProductCursor>,
    cap: i64,
    names: &'a CategoryNames,
}

/// A product whose text a search matched, with what the filters, sorts and cursors read.
#[derive(QueryableByName, Debug, Clone)]
struct Match {
    #[diesel(sql_type = BigInt)]
    id: i64,
    /// The cheapest and dearest live variant's price (the price sorts' keys).
    #[diesel(sql_type = Numeric)]
    min_price: Money,
    #[diesel(sql_type = Numeric)]
    max_price: Money,
    /// The same in cents, for the filters (comparing decimals was most of a search's time).
    #[diesel(sql_type = BigInt)]
    min_cents: i64,
    #[diesel(sql_type = BigInt)]
    max_cents: i64,
    #[diesel(sql_type = Bool)]
    in_stock: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    category_id: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Double>)]
    avg_rating: Option<f64>,
    #[diesel(sql_type = Double)]
    rank: f64,
}

/// The text matches of one search, at most the cap + 1 (beyond the cap, an arbitrary
/// cap + 1 of them are ranked): read in one statement from the text indexes, then
/// filtered, sorted, counted and paged here, so that a search can reuse them
/// ([`super::search_cache`]).
pub struct Matches {
    items: Vec<Match>,
    /// `items`' positions in each sort's order, sorted once per sort (by its first use).
    orders: [OnceLock<Vec<u32>>; 5],
    cap: i64,
    /// PostgreSQL's estimates of the matches passing each set of filters, once over the cap.
    estimates: Mutex<HashMap<FilterKey, i64>>,
}

#[cfg(test)]
impl Matches {
    /// No matches, told apart by `cap` (the search reuse tests).
    pub(crate) fn none(cap: i64) -> Self {
        Self {
            items: Vec::new(),
            orders: Default::default(),
            cap,
            estimates: Mutex::default(),
        }
    }

    pub(crate) fn cap(&self) -> i64 {
        self.cap
    }
}

/// The filters other than the search and the sort.
type FilterKey = (Option<i64>, Option<Money>, Option<Money>, Option<bool>);

fn filter_key(filter: &ProductFilter) -> FilterKey {
    (
        filter.category_id,
        filter.min_price,
        filter.max_price,
        filter.in_stock,
    )
}

/// The filters other than the search, as a search applies them to its matches and to
/// the products it shows.
struct Wanted {
    cents: std::ops::RangeInclusive<i64>,
    category_id: Option<i64>,
    in_stock: Option<bool>,
}

impl Wanted {
    fn new(filter: &ProductFilter) -> Self {
        Self {
            cents: filter.min_price.map_or(i64::MIN, |m| m.cents())
                ..=filter.max_price.map_or(i64::MAX, |m| m.cents()),
            category_id: filter.category_id,
            in_stock: filter.in_stock,
        }
    }

    /// As [`push_filters`] says in SQL: some variant's price could be in the range.
    fn passes(&self, category_id: Option<i64>, cents: (i64, i64), in_stock: bool) -> bool {
        let (min_cents, max_cents) = cents;
        max_cents >= *self.cents.start()
            && min_cents <= *self.cents.end()
            && self.category_id.is_none_or(|id| category_id == Some(id))
            && self.in_stock.is_none_or(|wanted| in_stock == wanted)
    }
}

impl Match {
    /// Orders matches as a listing sorted by `sort` shows them (ties broken by id), as
    /// [`order_by`] does in SQL for a search.
    fn listing_order(sort: ProductSort, a: &Self, b: &Self) -> Ordering {
        match sort {
            ProductSort::Relevance => b.rank.total_cmp(&a.rank).then(b.id.cmp(&a.id)),
            ProductSort::Newest => b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)),
            ProductSort::PriceAsc => a.min_price.cmp(&b.min_price).then(a.id.cmp(&b.id)),
            ProductSort::PriceDesc => b.max_price.cmp(&a.max_price).then(b.id.cmp(&a.id)),
            ProductSort::Rating => match (a.avg_rating, b.avg_rating) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
            .then(b.id.cmp(&a.id)),
        }
    }

    /// Whether this match comes after `cursor` in its listing, as [`push_after`] says.
    fn follows(&self, cursor: &ProductCursor) -> bool {
        let id = cursor.id;
        match (cursor.key, cursor.sort) {
            (CursorKey::Rank(rank), _) => (self.rank, self.id) < (rank, id),
            (CursorKey::CreatedAt(at), _) => (self.created_at, self.id) < (at, id),
            (CursorKey::Price(price), ProductSort::PriceAsc) => {
                (self.min_price, self.id) > (price, id)
            }
            (CursorKey::Price(price), _) => (self.max_price, self.id) < (price, id),
            (CursorKey::Rating(Some(rating)), _) => match self.avg_rating {
                Some(own) => own < rating || (own == rating && self.id < id),
                None => true,
            },
            (CursorKey::Rating(None), _) => self.avg_rating.is_none() && self.id < id,
        }
    }

    /// The cursor after this match in a listing sorted by `sort`.
    fn cursor(&self, sort: ProductSort) -> ProductCursor {
        let price = if sort == ProductSort::PriceAsc {
            self.min_price
        } else {
            self.max_price
        };
        ProductCursor::at(
            sort,
            self.id,
            self.rank,
            self.created_at,
            price,
            self.avg_rating,
        )
    }
}

impl Matches {
    /// Reads the text matches of `terms`, at most `cap` + 1.
    async fn load(conn: &mut AsyncPgConnection, terms: &SearchTerms, cap: i64) -> Result<Self> {
        let mut statement = Statement::default();
        let terms = TermsCte::bind(&mut statement, terms);
        statement.push(&format!(
            "WITH {} SELECT id, min_price, max_price, (min_price * 100)::int8 AS min_cents, \
               (max_price * 100)::int8 AS max_cents, in_stock, category_id, \
               created_at, avg_rating, \
               {RELEVANCE} AS rank \
             FROM terms, products WHERE deleted_at IS NULL AND {TEXT_MATCH} LIMIT {}",
            terms.0,
            cap + 1
        ));
        Ok(Self {
            items: statement.prepared().load(conn).await?,
            orders: Default::default(),
            cap,
            estimates: Mutex::default(),
        })
    }

    /// The matches in the order of a listing sorted by `sort`.
    fn sorted(&self, sort: ProductSort) -> impl Iterator<Item = &Match> {
        let slot = match sort {
            ProductSort::Relevance => 0,
            ProductSort::Newest => 1,
            ProductSort::PriceAsc => 2,
            ProductSort::PriceDesc => 3,
            ProductSort::Rating => 4,
        };
        let order = self.orders[slot].get_or_init(|| {
            let mut order: Vec<u32> = (0..self.items.len())
                .filter_map(|i| u32::try_from(i).ok())
                .collect();
            order.sort_unstable_by(|&a, &b| {
                Match::listing_order(sort, &self.items[a as usize], &self.items[b as usize])
            });
            order
        });
        order.iter().map(|&i| &self.items[i as usize])
    }

    /// PostgreSQL's estimate of the matches passing `filter`, asked once per filter set.
    async fn estimate(
        &self,
        conn: &mut AsyncPgConnection,
        filter: &ProductFilter,
        terms: &SearchTerms,
    ) -> Result<i64> {
        let key = filter_key(filter);
        let known = self
            .estimates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .copied();
        if let Some(total) = known {
            return Ok(total);
        }
        let total = estimate(conn, filter, Some(terms), self.cap).await?;
        self.estimates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, total);
        Ok(total)
    }
}

/// Where a search's matches come from: read for this request, or reused.
#[derive(Clone, Copy)]
pub enum MatchSource<'a> {
    Fresh,
    /// Reused from `cache` when younger than the duration (`SEARCH_CACHE_SECONDS`).
    Reused(&'a SearchCache, Duration),
}

async fn search(
    conn: &mut AsyncPgConnection,
    listing: &Listing<'_>,
    terms: &SearchTerms,
    source: MatchSource<'_>,
) -> Result<Page<Product>> {
    let Listing {
        filter,
        page,
        after,
        cap,
        names,
    } = *listing;
    let matches = match source {
        MatchSource::Fresh => Arc::new(Matches::load(conn, terms, cap).await?),
        MatchSource::Reused(cache, reuse) => {
            let search = filter.search.as_deref().unwrap_or_default();
            cache
                .matches(search, reuse, || Matches::load(conn, terms, cap))
                .await?
        }
    };
    // One pass in the sort's order: every match passing the filters counts; those after
    // the cursor and the offset, up to the limit, are shown.
    let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
    let take = usize::try_from(page.limit).unwrap_or(usize::MAX);
    let (mut total, mut skipped) = (0_i64, 0_usize);
    let mut shown: Vec<&Match> = Vec::with_capacity(take.min(100));
    let wanted = Wanted::new(filter);
    let over_cap = i64::try_from(matches.items.len()).unwrap_or(i64::MAX) > cap;
    for m in matches.sorted(filter.sort) {
        if !wanted.passes(m.category_id, (m.min_cents, m.max_cents), m.in_stock) {
            continue;
        }
        total += 1;
        if shown.len() == take {
            if over_cap {
                break; // the total is an estimate: no need to count
            }
            continue;
        }
        if after.is_some_and(|cursor| !m.follows(cursor)) {
            continue;
        }
        if skipped < skip {
            skipped += 1;
        } else {
            shown.push(m);
        }
    }
    let next = shown
        .last()
        .filter(|_| shown.len() == take)
        .map(|last| last.cursor(filter.sort).to_string());

    // The page's products as they are now; one that no longer passes the filters is left off.
    let ids: Vec<i64> = shown.iter().map(|m| m.id).collect();
    let mut current: HashMap<i64, Product> = products_by_id(conn, names, &ids)
        .await?
        .into_iter()
        .map(|p| (p.row.id, p))
        .collect();
    let items: Vec<Product> = shown
        .iter()
        .filter_map(|m| current.remove(&m.id))
        .filter(|p| {
            let cents = (p.row.min_price.cents(), p.row.max_price.cents());
            wanted.passes(p.row.category_id, cents, p.row.in_stock)
        })
        .collect();

    let listed = if over_cap {
        let total = matches.estimate(conn, filter, terms).await?;
        Page::new(items, total, page).estimated(true)
    } else {
        Page::new(items, total, page)
    };
    Ok(listed.with_next_after(next))
}

/// The live products among `ids`, in no particular order.
async fn products_by_id(
    conn: &mut AsyncPgConnection,
    names: &CategoryNames,
    ids: &[i64],
) -> Result<Vec<Product>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ProductRow> = products::table
        .filter(products::id.eq_any(ids))
        .filter(products::deleted_at.is_null())
        .select(ProductRow::as_select())
        .load(conn)
        .await?;
    names.name(conn, rows).await
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
        let key = filter.category_id.unwrap_or(WHOLE_CATALOG);
        let key = statement.param(Value::BigInt(key));
        format!(
            "(SELECT coalesce(sum(live), 0)::int8 FROM product_counts WHERE category_key = {key})"
        )
    } else {
        "0::int8".to_string()
    };
    statement.push(&format!(
        "SELECT {LISTED_COLUMNS}, NULL::float8 AS rank, {hits} AS hits \
         FROM products p WHERE p.deleted_at IS NULL"
    ));
    push_filters(&mut statement, filter, "p");
    if let Some(after) = listing.after {
        push_after(&mut statement, after, "p");
    }
    statement.push(&format!(" ORDER BY {}", order_by(filter.sort, false, "p")));
    push_page(&mut statement, page);

    if counted_by_category {
        let rows: Vec<ListedRow> = ListingStatement {
            statement,
            cached: true,
        }
        .load(conn)
        .await?;
        let total = match rows.as_slice().first() {
            Some(row) => row.hits,
            None => maintained_count(conn, filter.category_id).await?,
        };
        return finish(conn, listing, rows, Some(total)).await;
    }
    let rows: Vec<ListedRow> = ListingStatement {
        statement,
        cached: false,
    }
    .load(conn)
    .await?;
    let mut counting = Statement::default();
    counting
        .push("SELECT count(*) AS hits FROM (SELECT FROM products p WHERE p.deleted_at IS NULL");
    push_filters(&mut counting, filter, "p");
    let limit = counting.param(Value::BigInt(cap + 1));
    counting.push(&format!(" LIMIT {limit}) AS capped"));
    let counted: Counted = counting.unprepared().get_result(conn).await?;
    let counted = (counted.hits <= cap).then_some(counted.hits);
    finish(conn, listing, rows, counted).await
}

/// The page of `rows` with its total: `counted` when the matches were counted, else
/// PostgreSQL's estimate, marked as one.
async fn finish(
    conn: &mut AsyncPgConnection,
    listing: &Listing<'_>,
    rows: Vec<ListedRow>,
    counted: Option<i64>,
) -> Result<Page<Product>> {
    let page = listing.page;
    let (rows, next) = ListedRow::page(rows, listing.filter.sort, page);
    let items = listing.names.name(conn, rows).await?;
    let listed = match counted {
        Some(total) => Page::new(items, total, page),
        None => {
            let total = estimate(conn, listing.filter, None, listing.cap).await?;
            Page::new(items, total, page).estimated(true)
        }
    };
    Ok(listed.with_next_after(next))
}

/// The `product_counts` key of the whole catalog's count (0 counts products without a
/// category; other keys are category ids).
const WHOLE_CATALOG: i64 = -1;

/// Live products in the catalog, or in one category, from the maintained counts.
async fn maintained_count(conn: &mut AsyncPgConnection, category_id: Option<i64>) -> Result<i64> {
    let sum = diesel::dsl::sql::<BigInt>("coalesce(sum(live), 0)::int8");
    Ok(product_counts::table
        .select(sum)
        .filter(product_counts::category_key.eq(category_id.unwrap_or(WHOLE_CATALOG)))
        .get_result(conn)
        .await?)
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
