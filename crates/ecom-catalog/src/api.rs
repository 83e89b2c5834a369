//! Request and response bodies of /categories and /products, and their validation.

use chrono::{DateTime, Utc};
use ecom_core::pagination::de::{opt_bool, opt_i64};
use ecom_core::{FieldError, Money, PageQuery, PageRequest};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, IntoResponses, ToSchema};

use crate::error::CatalogError;
use crate::model::{
    CategoryChoice, CategoryRef, CategorySummary, MAX_VARIANTS, NewProduct, NewReview, NewVariant,
    Product, ProductChanges, ProductCursor, ProductFilter, ProductSort, RawJson, Review, Variant,
    VariantChanges, VariantOptions,
};

const NAME_MAX: usize = 200;
const DESCRIPTION_MAX: usize = 10_000;
const CATEGORY_NAME_MAX: usize = 100;
const COMMENT_MAX: usize = 5_000;
const SEARCH_MAX: usize = 200;
const SKU_MAX: usize = 64;
const OPTIONS_MAX: usize = 3;
const OPTION_NAME_MAX: usize = 50;
const OPTION_VALUE_MAX: usize = 100;

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// A category as shown on a product.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryBrief {
    pub id: i64,
    #[schema(example = "Electronics")]
    pub name: String,
}

/// A variant of a product: what is sold, with its own SKU, price and stock.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 97, "sku": "TEE-RED-M", "price": "19.99", "stock": 12,
    "options": {"Colour": "Red", "Size": "M"}, "is_default": false
}))]
pub struct VariantOut {
    pub id: i64,
    /// Unique among the catalog's variants; `null` when the variant has none.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: Option<String>,
    pub price: Money,
    pub stock: i32,
    /// Option name → value; `{}` for the only variant of a product without options.
    #[schema(value_type = std::collections::HashMap<String, String>)]
    pub options: VariantOptions,
    /// The variant a line naming only the product buys; exactly one per product.
    pub is_default: bool,
}

impl From<Variant> for VariantOut {
    fn from(v: Variant) -> Self {
        Self {
            id: v.id,
            sku: v.sku,
            price: v.price,
            stock: v.stock,
            options: v.options,
            is_default: v.is_default,
        }
    }
}

/// An option of a product and the values its variants use, in order of first use.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductOptionOut {
    #[schema(example = "Size")]
    pub name: String,
    #[schema(example = json!(["S", "M", "L"]))]
    pub values: Vec<String>,
}

/// A product of the catalog.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": 42, "name": "Wireless Keyboard", "description": "Quiet keys, USB-C charging.",
    "price": "49.99", "stock": 120, "category": {"id": 3, "name": "Electronics"},
    "avg_rating": 4.5, "review_count": 2,
    "created_at": "2026-11-25T18:00:00Z", "updated_at": "2026-11-25T18:00:00Z",
    "options": [],
    "variants": [{"id": 42, "sku": null, "price": "49.99", "stock": 120, "options": {},
                  "is_default": true}],
    "min_price": "49.99", "max_price": "49.99", "in_stock": true
}))]
pub struct ProductOut {
    pub id: i64,
    #[schema(example = "Wireless Keyboard")]
    pub name: String,
    pub description: String,
    pub price: Money,
    pub stock: i32,
    pub category: Option<CategoryBrief>,
    /// Average of the ratings, two decimals; `null` until the first review.
    #[schema(example = 4.5)]
    pub avg_rating: Option<f64>,
    pub review_count: i32,
    #[serde(serialize_with = "ecom_core::calendar::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "ecom_core::calendar::rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// The option names of the variants, by name, each with its values in order of first use.
    #[schema(value_type = Vec<ProductOptionOut>)]
    pub options: RawJson,
    /// The product's variants in id order.
    #[schema(value_type = Vec<VariantOut>)]
    pub variants: RawJson,
    /// The lowest and highest variant price.
    pub min_price: Money,
    pub max_price: Money,
    /// Whether some variant has stock.
    pub in_stock: bool,
}

impl From<Product> for ProductOut {
    fn from(p: Product) -> Self {
        let r = p.row;
        Self {
            id: r.id,
            name: r.name,
            description: r.description,
            price: r.price,
            stock: r.stock,
            category: p
                .category
                .map(|CategoryRef { id, name }| CategoryBrief { id, name }),
            avg_rating: r.avg_rating.map(|a| (a * 100.0).round() / 100.0),
            review_count: r.review_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
            options: r.options,
            variants: r.variants,
            min_price: r.min_price,
            max_price: r.max_price,
            in_stock: r.in_stock,
        }
    }
}

/// A category with its number of live products.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryOut {
    pub id: i64,
    #[schema(example = "Electronics")]
    pub name: String,
    pub product_count: i64,
}

impl From<CategorySummary> for CategoryOut {
    fn from(c: CategorySummary) -> Self {
        Self {
            id: c.id,
            name: c.name,
            product_count: c.product_count,
        }
    }
}

/// A review of a product.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReviewOut {
    pub id: i64,
    pub user_id: i64,
    pub product_id: i64,
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i16,
    pub comment: Option<String>,
    #[serde(serialize_with = "ecom_core::calendar::rfc3339")]
    pub created_at: DateTime<Utc>,
}

impl From<Review> for ReviewOut {
    fn from(r: Review) -> Self {
        Self {
            id: r.id,
            user_id: r.user_id,
            product_id: r.product_id,
            rating: r.rating,
            comment: r.comment,
            created_at: r.created_at,
        }
    }
}

ecom_core::named_page!(
    ProductPage,
    ProductOut,
    "`{items, total, limit, offset}` of products."
);
ecom_core::named_page!(
    CategoryPage,
    CategoryOut,
    "`{items, total, limit, offset}` of categories."
);
ecom_core::named_page!(
    ReviewPage,
    ReviewOut,
    "`{items, total, limit, offset}` of reviews."
);

// ---------------------------------------------------------------------------------------
// Query strings
// ---------------------------------------------------------------------------------------

/// Sort order of `GET /products`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProductSortParam {
    Relevance,
    Newest,
    PriceAsc,
    PriceDesc,
    Rating,
}

/// Filters and sort of `GET /products`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductListQuery {
    /// Full-text search over name (weighted higher) and description; websearch syntax
    /// (`"exact phrase"`, `or`, `-exclude`). Plain queries also match word prefixes and,
    /// by trigram similarity, names with small typos.
    #[param(max_length = 200)]
    pub search: Option<String>,
    /// Alias of `search`, kept for the original service's clients.
    #[param(max_length = 200)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "opt_i64")]
    pub category_id: Option<i64>,
    /// Lowest price, inclusive: products with a variant at this price or more
    /// (`max_price` ≥ it).
    #[param(value_type = Option<String>, example = "10.00")]
    pub min_price: Option<String>,
    /// Highest price, inclusive: products with a variant at this price or less
    /// (`min_price` ≤ it).
    #[param(value_type = Option<String>, example = "99.99")]
    pub max_price: Option<String>,
    /// `true`: only products with a variant in stock; `false`: only sold-out products.
    #[serde(default, deserialize_with = "opt_bool")]
    pub in_stock: Option<bool>,
    /// `relevance` (default with a search; needs one), `newest` (default), `price_asc` (by
    /// the cheapest variant), `price_desc` (by the dearest variant), `rating` (unrated last).
    #[param(value_type = Option<ProductSortParam>)]
    pub sort: Option<String>,
    /// Keyset paging: the `next_after` of the previous page (same filters and sort), instead
    /// of an `offset`. Deep pages cost what the first one costs.
    #[param(max_length = 100)]
    pub after: Option<String>,
    /// `limit`, `offset` and `skip` (documented by [`PageQuery`]).
    #[serde(flatten)]
    #[param(ignore)]
    pub page: PageQuery,
}

fn parse_price(field: &str, value: &Option<String>, errors: &mut Vec<FieldError>) -> Option<Money> {
    let raw = value.as_deref()?;
    match raw.parse::<Money>() {
        Ok(m) => Some(m),
        Err(e) => {
            errors.push(FieldError::new(field, e.to_string()));
            None
        }
    }
}

impl ProductListQuery {
    /// The keyset cursor, when `after` is given: it must come from a listing with the same
    /// sort, and replaces `offset` (422 otherwise).
    pub fn cursor(
        &self,
        filter: &ProductFilter,
        page: &PageRequest,
    ) -> Result<Option<ProductCursor>, CatalogError> {
        let Some(after) = self.after.as_deref() else {
            return Ok(None);
        };
        let refuse = |message: &str| CatalogError::Invalid(vec![FieldError::new("after", message)]);
        let cursor = ProductCursor::parse(after.trim())
            .ok_or_else(|| refuse("is not a cursor this listing gave (`next_after`)"))?;
        if cursor.sort != filter.sort {
            return Err(refuse("belongs to a listing with another sort"));
        }
        if page.offset != 0 {
            return Err(refuse("replaces offset; send one of them"));
        }
        Ok(Some(cursor))
    }

    /// Checks every parameter; 422 listing each bad one.
    pub fn validate(&self) -> Result<ProductFilter, CatalogError> {
        let mut errors = Vec::new();
        let search = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let name = self
            .name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        let search = match (search, name) {
            (Some(s), Some(n)) if s != n => {
                errors.push(FieldError::new(
                    "name",
                    "is an alias of search; send one of them",
                ));
                Some(s)
            }
            (s, n) => s.or(n),
        };
        if search.is_some_and(|s| s.chars().count() > SEARCH_MAX) {
            errors.push(FieldError::new("search", "must be at most 200 characters"));
        }
        let min_price = parse_price("min_price", &self.min_price, &mut errors);
        let max_price = parse_price("max_price", &self.max_price, &mut errors);
        if let (Some(min), Some(max)) = (min_price, max_price)
            && min > max
        {
            errors.push(FieldError::new("max_price", "must not be below min_price"));
        }
        let sort = match self.sort.as_deref().map(str::trim) {
            None => {
                if search.is_some() {
                    ProductSort::Relevance
                } else {
                    ProductSort::Newest
                }
            }
            Some(s) => match ProductSort::parse(s) {
                Some(ProductSort::Relevance) if search.is_none() => {
                    errors.push(FieldError::new("sort", "relevance needs a search"));
                    ProductSort::Newest
                }
                Some(sort) => sort,
                None => {
                    errors.push(FieldError::new(
                        "sort",
                        format!("must be one of {}", ProductSort::NAMES.join(", ")),
                    ));
                    ProductSort::Newest
                }
            },
        };
        if !errors.is_empty() {
            return Err(CatalogError::Invalid(errors));
        }
        Ok(ProductFilter {
            search: search.map(str::to_string),
            category_id: self.category_id,
            min_price,
            max_price,
            in_stock: self.in_stock,
            sort,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------

/// `POST /categories`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategoryRequest {
    #[schema(example = "Electronics", min_length = 1, max_length = 100)]
    pub name: String,
}

impl CreateCategoryRequest {
    pub fn validate(self) -> Result<String, CatalogError> {
        category_name("name", &self.name)
    }
}

/// The length limits hold for the name as sent (as the OpenAPI schema says), the
/// emptiness check for the name trimmed, which is what is stored.
fn category_name(field: &str, raw: &str) -> Result<String, CatalogError> {
    let name = raw.trim();
    if name.is_empty() || raw.chars().count() > CATEGORY_NAME_MAX {
        return Err(CatalogError::invalid(field, "must be 1 to 100 characters"));
    }
    Ok(name.to_string())
}

/// `POST /products`: `price` and `stock` (one default variant without SKU or options), or
/// `variants`, not both.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "name": "Wireless Keyboard", "description": "Quiet keys, USB-C charging.",
    "price": "49.99", "stock": 120, "category_name": "Electronics"
}))]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    #[schema(example = "Wireless Keyboard", min_length = 1, max_length = 200)]
    pub name: String,
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: String,
    /// The only variant's price (with `stock`, instead of `variants`). More than 2 decimal
    /// places, ≤ 0 or over 99,999,999.99 is refused.
    #[schema(value_type = Option<ecom_core::money::MoneyInput>)]
    pub price: Option<serde_json::Value>,
    /// The only variant's stock (with `price`, instead of `variants`).
    #[schema(minimum = 0, maximum = 2147483647)]
    pub stock: Option<i64>,
    /// 1 to 100 variants; the first is the default unless one says `is_default: true`.
    #[schema(min_items = 1, max_items = 100)]
    pub variants: Option<Vec<CreateVariantRequest>>,
    /// An existing category.
    pub category_id: Option<i64>,
    /// A category by name, created when it does not exist yet. Not with `category_id`.
    #[schema(max_length = 100)]
    pub category_name: Option<String>,
}

/// Collects field errors while building a validated value.
#[derive(Default)]
struct Checks(Vec<FieldError>);

impl Checks {
    fn fail(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    fn name(&mut self, raw: &str) -> String {
        let name = raw.trim();
        if name.is_empty() || raw.chars().count() > NAME_MAX {
            self.fail("name", "must be 1 to 200 characters");
        }
        name.to_string()
    }

    fn description(&mut self, raw: &str) -> String {
        if raw.chars().count() > DESCRIPTION_MAX {
            self.fail("description", "must be at most 10000 characters");
        }
        raw.trim().to_string()
    }

    fn price(&mut self, field: &str, raw: &serde_json::Value) -> Money {
        match Money::deserialize(raw) {
            Ok(m) if m.is_zero() => {
                self.fail(field, "must be greater than 0");
                m
            }
            Ok(m) => m,
            Err(e) => {
                self.fail(field, e.to_string());
                Money::ZERO
            }
        }
    }

    fn stock(&mut self, field: &str, raw: i64) -> i32 {
        match i32::try_from(raw) {
            Ok(s) if s >= 0 => s,
            Ok(_) => {
                self.fail(field, "must not be negative");
                0
            }
            Err(_) => {
                self.fail(field, "must be between 0 and 2147483647");
                0
            }
        }
    }

    /// `null` or 1 to 64 of `A-Z a-z 0-9 . _ -`, as sent (a SKU is matched exactly).
    fn sku(&mut self, field: &str, raw: Option<String>) -> Option<String> {
        let sku = raw?;
        let valid = (1..=SKU_MAX).contains(&sku.len())
            && sku
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !valid {
            self.fail(field, "must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'");
        }
        Some(sku)
    }

    /// At most 3 names of 1 to 50 characters, values of 1 to 100, trimmed (the limits hold
    /// as sent, emptiness once trimmed, as for names).
    fn options(&mut self, field: &str, raw: VariantOptions) -> VariantOptions {
        if raw.len() > OPTIONS_MAX {
            self.fail(field, "must have at most 3 options");
        }
        let mut options = VariantOptions::new();
        for (name, value) in raw {
            let (trimmed_name, trimmed_value) = (name.trim(), value.trim());
            if trimmed_name.is_empty() || name.chars().count() > OPTION_NAME_MAX {
                self.fail(field, "option names must be 1 to 50 characters");
            } else if trimmed_value.is_empty() || value.chars().count() > OPTION_VALUE_MAX {
                self.fail(
                    &format!("{field}.{trimmed_name}"),
                    "must be 1 to 100 characters",
                );
            }
            let value = trimmed_value.to_string();
            if options.insert(trimmed_name.to_string(), value).is_some() {
                self.fail(field, format!("names the option `{trimmed_name}` twice"));
            }
        }
        options
    }

    /// The variants of a new product: 1 to 100, at most one `is_default: true` (else the
    /// first is the default).
    fn variants(&mut self, raw: Vec<CreateVariantRequest>) -> Vec<NewVariant> {
        if raw.is_empty() || raw.len() > MAX_VARIANTS {
            self.fail("variants", "must hold 1 to 100 variants");
        }
        if raw.iter().filter(|v| v.is_default == Some(true)).count() > 1 {
            self.fail("variants", "at most one variant may be the default");
        }
        let chosen = raw.iter().any(|v| v.is_default == Some(true));
        let mut variants: Vec<NewVariant> = raw
            .into_iter()
            .enumerate()
            .map(|(i, v)| v.checked(self, &format!("variants[{i}]")))
            .collect();
        if !chosen && let Some(first) = variants.first_mut() {
            first.is_default = true;
        }
        variants
    }

    fn finish<T>(self, value: T) -> Result<T, CatalogError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(CatalogError::Invalid(self.0))
        }
    }
}

impl CreateProductRequest {
    pub fn validate(self) -> Result<NewProduct, CatalogError> {
        let mut checks = Checks::default();
        let name = checks.name(&self.name);
        let description = checks.description(&self.description);
        let variants = match (self.variants, self.price, self.stock) {
            (Some(variants), price, stock) => {
                if price.is_some() || stock.is_some() {
                    checks.fail("variants", "send price and stock, or variants, not both");
                }
                checks.variants(variants)
            }
            (None, Some(price), Some(stock)) => {
                let price = checks.price("price", &price);
                vec![NewVariant::plain(price, checks.stock("stock", stock))]
            }
            (None, price, _) => {
                let missing = if price.is_none() { "price" } else { "stock" };
                checks.fail(missing, "is required unless variants are given");
                Vec::new()
            }
        };
        let category = match (self.category_id, self.category_name) {
            (Some(_), Some(_)) => {
                checks.fail(
                    "category_name",
                    "send category_id or category_name, not both",
                );
                None
            }
            (Some(id), None) => Some(CategoryChoice::Id(id)),
            (None, Some(name)) => match category_name("category_name", &name) {
                Ok(name) => Some(CategoryChoice::Name(name)),
                Err(CatalogError::Invalid(mut errors)) => {
                    checks.0.append(&mut errors);
                    None
                }
                Err(_) => None,
            },
            (None, None) => None,
        };
        checks.finish(NewProduct {
            name,
            description,
            category,
            variants,
        })
    }
}

/// `PUT`/`PATCH /products/{id}`: every field optional; `category_id: null` removes the
/// product from its category.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProductRequest {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    #[schema(max_length = 10000)]
    pub description: Option<String>,
    #[schema(value_type = Option<ecom_core::money::MoneyInput>)]
    pub price: Option<serde_json::Value>,
    #[schema(minimum = 0, maximum = 2147483647)]
    pub stock: Option<i64>,
    #[serde(default, deserialize_with = "ecom_core::http::present")]
    #[schema(value_type = Option<i64>)]
    pub category_id: Option<Option<i64>>,
}

impl UpdateProductRequest {
    pub fn validate(self) -> Result<ProductChanges, CatalogError> {
        let mut checks = Checks::default();
        let changes = ProductChanges {
            name: self.name.as_deref().map(|n| checks.name(n)),
            description: self.description.as_deref().map(|d| checks.description(d)),
            price: self.price.as_ref().map(|p| checks.price("price", p)),
            stock: self.stock.map(|s| checks.stock("stock", s)),
            category_id: self.category_id,
        };
        checks.finish(changes)
    }
}

/// `POST /products/{id}/variants`, and each of `variants` in `POST /products`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "sku": "TEE-RED-M", "price": "19.99", "stock": 12,
    "options": {"Colour": "Red", "Size": "M"}
}))]
#[serde(deny_unknown_fields)]
pub struct CreateVariantRequest {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: Option<String>,
    #[schema(value_type = ecom_core::money::MoneyInput)]
    pub price: serde_json::Value,
    #[schema(minimum = 0, maximum = 2147483647)]
    pub stock: i64,
    /// At most 3 `name: value` pairs (names 1..=50, values 1..=100 characters, trimmed);
    /// the same names as the product's other variants. Default `{}`.
    #[serde(default)]
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    pub options: VariantOptions,
    /// `true` makes it the product's default variant (the old default stops being it).
    pub is_default: Option<bool>,
}

impl CreateVariantRequest {
    pub fn validate(self) -> Result<NewVariant, CatalogError> {
        let mut checks = Checks::default();
        let variant = self.checked(&mut checks, "");
        checks.finish(variant)
    }

    /// The variant with its errors in `checks`, fields named under `prefix` (`variants[2]`).
    fn checked(self, checks: &mut Checks, prefix: &str) -> NewVariant {
        let field = |name: &str| {
            if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}.{name}")
            }
        };
        NewVariant {
            sku: checks.sku(&field("sku"), self.sku),
            price: checks.price(&field("price"), &self.price),
            stock: checks.stock(&field("stock"), self.stock),
            options: checks.options(&field("options"), self.options),
            is_default: self.is_default == Some(true),
        }
    }
}

/// `PATCH`/`PUT /products/{id}/variants/{variant_id}`: every field optional; `sku: null`
/// removes the SKU; `is_default` may only be `true`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVariantRequest {
    #[serde(default, deserialize_with = "ecom_core::http::present")]
    #[schema(value_type = Option<String>, pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: Option<Option<String>>,
    #[schema(value_type = Option<ecom_core::money::MoneyInput>)]
    pub price: Option<serde_json::Value>,
    #[schema(minimum = 0, maximum = 2147483647)]
    pub stock: Option<i64>,
    /// Replaces the variant's options; the names must stay those of the product's other
    /// variants (a product's only variant may change them).
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    pub options: Option<VariantOptions>,
    /// Only `true`: the variant becomes the default and the old default stops being it.
    pub is_default: Option<bool>,
}

impl UpdateVariantRequest {
    pub fn validate(self) -> Result<VariantChanges, CatalogError> {
        let mut checks = Checks::default();
        if self.is_default == Some(false) {
            checks.fail(
                "is_default",
                "may only be true: make another variant the default instead",
            );
        }
        let changes = VariantChanges {
            sku: self.sku.map(|sku| checks.sku("sku", sku)),
            price: self.price.as_ref().map(|p| checks.price("price", p)),
            stock: self.stock.map(|s| checks.stock("stock", s)),
            options: self.options.map(|o| checks.options("options", o)),
            make_default: self.is_default == Some(true),
        };
        checks.finish(changes)
    }
}

/// `POST /products/{id}/reviews`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReviewRequest {
    #[schema(minimum = 1, maximum = 5, example = 5)]
    pub rating: i64,
    #[schema(max_length = 5000, example = "Great keyboard, quiet keys.")]
    pub comment: Option<String>,
}

impl CreateReviewRequest {
    pub fn validate(self) -> Result<NewReview, CatalogError> {
        let mut checks = Checks::default();
        let rating = match i16::try_from(self.rating) {
            Ok(r) if (1..=5).contains(&r) => r,
            _ => {
                checks.fail("rating", "must be between 1 and 5");
                0
            }
        };
        let comment = self
            .comment
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        if comment
            .as_deref()
            .is_some_and(|c| c.chars().count() > COMMENT_MAX)
        {
            checks.fail("comment", "must be at most 5000 characters");
        }
        checks.finish(NewReview { rating, comment })
    }
}

/// `GET`, `PUT`, `PATCH`, `DELETE /products/{id}` and its reviews: the product must exist.
/// Declared once; core gives each error its `Problem` body.
#[derive(IntoResponses)]
pub enum ProductMissing {
    /// `not_found`: no such product in the catalog
    #[response(status = 404)]
    NotFound,
}

/// `PATCH`, `PUT`, `DELETE /products/{id}/variants/{variant_id}`: the product and the variant
/// must exist, the variant under the product.
#[derive(IntoResponses)]
pub enum VariantMissing {
    /// `not_found`: no such product, or no such variant of it
    #[response(status = 404)]
    NotFound,
}

/// The body of `POST /products/{id}/variants` refused.
#[derive(IntoResponses)]
pub enum NewVariantRefused {
    /// `validation_failed` (an invalid or unknown field), `option_mismatch` (other option
    /// names than the product's other variants) or `too_many_variants` (the product has 100)
    #[response(status = 422)]
    Invalid,
}

/// The body of a variant update refused.
#[derive(IntoResponses)]
pub enum VariantBodyRefused {
    /// `validation_failed` (an invalid or unknown field, `is_default: false`) or
    /// `option_mismatch` (other option names than the product's other variants)
    #[response(status = 422)]
    Invalid,
}

/// A variant write that conflicts with another live variant.
#[derive(IntoResponses)]
pub enum VariantConflict {
    /// `sku_taken` (another variant has the SKU) or `duplicate_variant` (another variant of
    /// the product has the same options)
    #[response(status = 409)]
    Conflict,
}

/// The body of `POST /products` refused.
#[derive(IntoResponses)]
pub enum NewProductRefused {
    /// `validation_failed` (an invalid or unknown field, price and stock together with
    /// variants, two defaults), `unknown_category` or `option_mismatch` (variants with
    /// different option names)
    #[response(status = 422)]
    Invalid,
}

/// The body of a product write (`PUT`/`PATCH /products/{id}`) refused.
#[derive(IntoResponses)]
pub enum ProductBodyRefused {
    /// `validation_failed` (an invalid or unknown field) or `unknown_category`
    #[response(status = 422)]
    Invalid,
}
