//! Listing and searching products, and one product by id.

use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Float, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use ecom_core::{Page, PageRequest};

use super::Result;
use crate::error::CatalogError;
use crate::model::{CategoryRef, Product, ProductFilter, ProductRow, ProductSort};
use crate::schema::{categories, products};

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
