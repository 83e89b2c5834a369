//! Rows and domain types of the catalog.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ecom_core::Money;

use crate::schema::{categories, product_variants, products, reviews};

/// A `json` value kept as the text PostgreSQL stored and sent, and written out as it is:
/// the product's maintained `variants` and `options` reach a response without being
/// parsed into a tree and serialized again (a listing shows up to 100 products). They are
/// `json`, not `jsonb`, so that PostgreSQL sends the stored text instead of printing a
/// `jsonb` tree for every row (a fifth of a listing statement's time).
#[derive(Debug, Clone, diesel::deserialize::FromSqlRow)]
pub struct RawJson(pub Box<serde_json::value::RawValue>);

impl RawJson {
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl serde::Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl diesel::deserialize::FromSql<diesel::sql_types::Json, diesel::pg::Pg> for RawJson {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        // `json`'s binary form is its text.
        let text = std::str::from_utf8(value.as_bytes())?.to_owned();
        Ok(Self(serde_json::value::RawValue::from_string(text)?))
    }
}

/// A product row as listings and `GET /products/{id}` read it (never the search vector).
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = products, check_for_backend(diesel::pg::Pg))]
pub struct ProductRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    /// The default variant's price and stock.
    pub price: Money,
    pub stock: i32,
    pub category_id: Option<i64>,
    pub review_count: i32,
    pub avg_rating: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Over the live variants: the lowest and highest price, and whether any has stock.
    pub min_price: Money,
    pub max_price: Money,
    pub in_stock: bool,
    /// The live variants in id order and the option names with their values, in the
    /// API's shape, as the variants' trigger keeps them.
    pub variants: RawJson,
    pub options: RawJson,
}

/// The category a product belongs to, as shown on the product.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = categories, check_for_backend(diesel::pg::Pg))]
pub struct CategoryRef {
    pub id: i64,
    pub name: String,
}

/// A live product with its category.
#[derive(Debug, Clone)]
pub struct Product {
    pub row: ProductRow,
    pub category: Option<CategoryRef>,
}

/// A category with the number of live products in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategorySummary {
    pub id: i64,
    pub name: String,
    pub product_count: i64,
}

/// A review as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = reviews, check_for_backend(diesel::pg::Pg))]
pub struct Review {
    pub id: i64,
    pub product_id: i64,
    pub user_id: i64,
    pub rating: i16,
    pub comment: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Where a new product goes: an existing category, or one found or created by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CategoryChoice {
    Id(i64),
    Name(String),
}

/// A validated new product with its variants (1..=100, exactly one of them default).
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub category: Option<CategoryChoice>,
    pub variants: Vec<NewVariant>,
}

/// Live variants a product may have.
pub const MAX_VARIANTS: usize = 100;

/// A validated new variant; `options` trimmed and within the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVariant {
    pub sku: Option<String>,
    pub price: Money,
    pub stock: i32,
    pub options: VariantOptions,
    pub is_default: bool,
}

impl NewVariant {
    /// The only variant of a product without options (what `price` and `stock` create).
    pub fn plain(price: Money, stock: i32) -> Self {
        Self {
            sku: None,
            price,
            stock,
            options: VariantOptions::new(),
            is_default: true,
        }
    }
}

/// A validated partial update of a variant: `None` leaves a field as it is; `sku:
/// Some(None)` removes the SKU; `make_default` takes the default flag from the old default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VariantChanges {
    pub sku: Option<Option<String>>,
    pub price: Option<Money>,
    pub stock: Option<i32>,
    pub options: Option<VariantOptions>,
    pub make_default: bool,
}

impl VariantChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = product_variants)]
pub(crate) struct VariantInsert<'a> {
    pub product_id: i64,
    pub sku: Option<&'a str>,
    pub price: Money,
    pub stock: i32,
    pub options: serde_json::Value,
    pub is_default: bool,
}

impl<'a> VariantInsert<'a> {
    pub fn new(product_id: i64, new: &'a NewVariant) -> Self {
        Self {
            product_id,
            sku: new.sku.as_deref(),
            price: new.price,
            stock: new.stock,
            options: options_json(&new.options),
            is_default: new.is_default,
        }
    }
}

/// Options as stored: a JSON object of strings.
pub(crate) fn options_json(options: &VariantOptions) -> serde_json::Value {
    serde_json::Value::Object(
        options
            .iter()
            .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
            .collect(),
    )
}

/// A live variant as the variant endpoints show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub id: i64,
    pub product_id: i64,
    pub sku: Option<String>,
    pub price: Money,
    pub stock: i32,
    pub options: VariantOptions,
    pub is_default: bool,
}

/// A variant row as stored (its options still JSON).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = product_variants, check_for_backend(diesel::pg::Pg))]
pub(crate) struct VariantRow {
    pub id: i64,
    pub product_id: i64,
    pub sku: Option<String>,
    pub price: Money,
    pub stock: i32,
    pub options: serde_json::Value,
    pub is_default: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = products)]
pub(crate) struct ProductInsert<'a> {
    pub name: &'a str,
    pub description: &'a str,
    /// The default variant's price and stock; the variants' trigger then keeps these.
    pub price: Money,
    pub stock: i32,
    pub min_price: Money,
    pub max_price: Money,
    pub category_id: Option<i64>,
}

/// A validated partial update: `None` leaves a field as it is; `category_id: Some(None)`
/// takes the product out of its category.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = products)]
pub struct ProductChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub price: Option<Money>,
    pub stock: Option<i32>,
    pub category_id: Option<Option<i64>>,
}

impl ProductChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.description.is_none()
            && self.price.is_none()
            && self.stock.is_none()
            && self.category_id.is_none()
    }
}

/// A validated new review.
#[derive(Debug, Clone)]
pub struct NewReview {
    pub rating: i16,
    pub comment: Option<String>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = reviews)]
pub(crate) struct ReviewInsert<'a> {
    pub product_id: i64,
    pub user_id: i64,
    pub rating: i16,
    pub comment: Option<&'a str>,
}

/// Order of a product listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductSort {
    /// Best full-text match first; needs a search.
    Relevance,
    /// Most recently created first.
    Newest,
    PriceAsc,
    PriceDesc,
    /// Highest average rating first; unrated products last.
    Rating,
}

impl ProductSort {
    pub const NAMES: [&'static str; 5] =
        ["relevance", "newest", "price_asc", "price_desc", "rating"];

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "relevance" => Self::Relevance,
            "newest" => Self::Newest,
            "price_asc" => Self::PriceAsc,
            "price_desc" => Self::PriceDesc,
            "rating" => Self::Rating,
            _ => return None,
        })
    }
}

impl ProductSort {
    /// The name clients send in `sort`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Relevance => "relevance",
            Self::Newest => "newest",
            Self::PriceAsc => "price_asc",
            Self::PriceDesc => "price_desc",
            Self::Rating => "rating",
        }
    }
}

/// Where a keyset page starts: the sort key and id of the previous page's last product.
/// Clients get it as `next_after` and send it back as `after`; page 500 then costs what
/// page 1 costs, and rows inserted meanwhile neither repeat nor skip products.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProductCursor {
    pub sort: ProductSort,
    pub key: CursorKey,
    pub id: i64,
}

/// The sort key a cursor carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CursorKey {
    /// The relevance, exactly (its bits), as the statement computed it.
    Rank(f64),
    CreatedAt(DateTime<Utc>),
    Price(Money),
    /// `None`: an unrated product.
    Rating(Option<f64>),
}

impl ProductCursor {
    /// The cursor after `row` in a listing sorted by `sort`; `rank` is its relevance.
    pub fn after(sort: ProductSort, row: &ProductRow, rank: Option<f64>) -> Self {
        // The price sorts go by the cheapest variant upwards, the dearest downwards.
        let price = if sort == ProductSort::PriceAsc {
            row.min_price
        } else {
            row.max_price
        };
        Self::at(
            sort,
            row.id,
            rank.unwrap_or_default(),
            row.created_at,
            price,
            row.avg_rating,
        )
    }

    /// The cursor after the product with these sort keys in a listing sorted by `sort`.
    pub fn at(
        sort: ProductSort,
        id: i64,
        rank: f64,
        created_at: DateTime<Utc>,
        price: Money,
        avg_rating: Option<f64>,
    ) -> Self {
        let key = match sort {
            ProductSort::Relevance => CursorKey::Rank(rank),
            ProductSort::Newest => CursorKey::CreatedAt(created_at),
            ProductSort::PriceAsc | ProductSort::PriceDesc => CursorKey::Price(price),
            ProductSort::Rating => CursorKey::Rating(avg_rating),
        };
        Self { sort, key, id }
    }

    /// Reads a cursor given as `after` (`sort.key.id`); `None` when it is not one.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('.');
        let (sort, key, id) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let sort = ProductSort::parse(sort)?;
        let bits = |k: &str| u64::from_str_radix(k, 16).ok().map(f64::from_bits);
        let key = match sort {
            ProductSort::Relevance => CursorKey::Rank(bits(key).filter(|r| r.is_finite())?),
            ProductSort::Newest => {
                CursorKey::CreatedAt(DateTime::from_timestamp_micros(key.parse().ok()?)?)
            }
            ProductSort::PriceAsc | ProductSort::PriceDesc => {
                CursorKey::Price(Money::from_cents(key.parse().ok()?).ok()?)
            }
            ProductSort::Rating if key == "-" => CursorKey::Rating(None),
            ProductSort::Rating => CursorKey::Rating(Some(bits(key).filter(|r| r.is_finite())?)),
        };
        Some(Self {
            sort,
            key,
            id: id.parse().ok()?,
        })
    }
}

impl std::fmt::Display for ProductCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match self.key {
            CursorKey::Rank(rank) | CursorKey::Rating(Some(rank)) => {
                format!("{:x}", rank.to_bits())
            }
            CursorKey::Rating(None) => "-".to_string(),
            CursorKey::CreatedAt(at) => at.timestamp_micros().to_string(),
            // Money shows exactly two places: without the point, the cents.
            CursorKey::Price(price) => price.to_string().replace('.', ""),
        };
        write!(f, "{}.{key}.{}", self.sort.name(), self.id)
    }
}

/// A validated product listing request.
#[derive(Debug, Clone)]
pub struct ProductFilter {
    /// Full-text search, already trimmed and non-empty.
    pub search: Option<String>,
    pub category_id: Option<i64>,
    pub min_price: Option<Money>,
    pub max_price: Option<Money>,
    /// `Some(true)`: stock > 0 only; `Some(false)`: sold-out products only.
    pub in_stock: Option<bool>,
    pub sort: ProductSort,
}

impl Default for ProductFilter {
    fn default() -> Self {
        Self {
            search: None,
            category_id: None,
            min_price: None,
            max_price: None,
            in_stock: None,
            sort: ProductSort::Newest,
        }
    }
}

/// A variant's options, name → value (`{"Size": "M"}`); empty for a product's only
/// variant when it has no options.
pub type VariantOptions = std::collections::BTreeMap<String, String>;

/// What a line asks for: a variant, or a product (meaning its default variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemRef {
    Variant(i64),
    Product(i64),
}

/// One line of a stock reservation or return: `quantity` units of a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockLine {
    pub item: ItemRef,
    pub quantity: i32,
}

/// A reserved line (one per variant, duplicates merged), with what an order line copies:
/// the product's name, the variant's SKU, options and unit price at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedLine {
    pub product_id: i64,
    pub variant_id: i64,
    pub name: String,
    pub sku: Option<String>,
    pub options: VariantOptions,
    pub unit_price: Money,
    pub quantity: i32,
}

/// A variant that lacks stock for a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub product_id: i64,
    pub variant_id: i64,
    pub requested: i32,
    pub available: i32,
}

/// Why a reservation was refused: products or variants that do not exist (or left the
/// catalog), and variants with too little stock. Nothing was reserved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockShortfall {
    pub unknown_products: Vec<i64>,
    pub unknown_variants: Vec<i64>,
    pub insufficient: Vec<Shortage>,
}

impl StockShortfall {
    pub fn is_empty(&self) -> bool {
        self.unknown_products.is_empty()
            && self.unknown_variants.is_empty()
            && self.insufficient.is_empty()
    }
}

impl std::fmt::Display for StockShortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids = |ids: &[i64]| {
            ids.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !self.unknown_products.is_empty() {
            parts.push(format!("unknown products: {}", ids(&self.unknown_products)));
        }
        if !self.unknown_variants.is_empty() {
            parts.push(format!("unknown variants: {}", ids(&self.unknown_variants)));
        }
        if !self.insufficient.is_empty() {
            let lines: Vec<String> = self
                .insufficient
                .iter()
                .map(|s| {
                    format!(
                        "variant {} of product {} has {} in stock, {} requested",
                        s.variant_id, s.product_id, s.available, s.requested
                    )
                })
                .collect();
            parts.push(format!("insufficient stock: {}", lines.join("; ")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// A variant as a cart shows it, read fresh on every cart read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantOnSale {
    pub variant_id: i64,
    pub product_id: i64,
    pub product_name: String,
    pub sku: Option<String>,
    pub options: VariantOptions,
    pub unit_price: Money,
    /// Units on sale now: the variant's stock; 0 when the variant or its product is deleted.
    pub available: i32,
    /// False when the variant or its product is deleted.
    pub on_sale: bool,
}

/// What `seed_demo` created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSummary {
    pub categories: i64,
    pub products: i64,
    pub reviews: i64,
}
