//! Rows and domain types of the catalog.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ecom_core::Money;

use crate::schema::{categories, products, reviews};

/// A product row as listings and `GET /products/{id}` read it (never the search vector).
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = products, check_for_backend(diesel::pg::Pg))]
pub struct ProductRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub price: Money,
    pub stock: i32,
    pub category_id: Option<i64>,
    pub review_count: i32,
    pub avg_rating: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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

/// A validated new product.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub name: String,
    pub description: String,
    pub price: Money,
    pub stock: i32,
    pub category: Option<CategoryChoice>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = products)]
pub(crate) struct ProductInsert<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub price: Money,
    pub stock: i32,
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

/// One line of a stock reservation or return: `quantity` units of a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockLine {
    pub product_id: i64,
    pub quantity: i32,
}

/// A reserved line, with the product's name and unit price at the moment of reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedLine {
    pub product_id: i64,
    pub name: String,
    pub unit_price: Money,
    pub quantity: i32,
}

/// A product that lacks stock for a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortage {
    pub product_id: i64,
    pub requested: i32,
    pub available: i32,
}

/// Why a reservation was refused: products that do not exist (or left the catalog), and
/// products with too little stock. Nothing was reserved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockShortfall {
    pub unknown: Vec<i64>,
    pub insufficient: Vec<Shortage>,
}

impl std::fmt::Display for StockShortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.unknown.is_empty() {
            let ids: Vec<String> = self.unknown.iter().map(|id| id.to_string()).collect();
            parts.push(format!("unknown products: {}", ids.join(", ")));
        }
        if !self.insufficient.is_empty() {
            let lines: Vec<String> = self
                .insufficient
                .iter()
                .map(|s| {
                    format!(
                        "product {} has {} in stock, {} requested",
                        s.product_id, s.available, s.requested
                    )
                })
                .collect();
            parts.push(format!("insufficient stock: {}", lines.join("; ")));
        }
        f.write_str(&parts.join("; "))
    }
}

/// What `seed_demo` created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedSummary {
    pub categories: i64,
    pub products: i64,
    pub reviews: i64,
}
