//! The list envelope and the `limit` / `offset` (alias `skip`) query shared by every listing.

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{AppError, FieldError};

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// Paging parameters as they arrive. Embed with `#[serde(flatten)]` in a listing's query type.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Page size, 1..=100 (default 20).
    #[serde(default, deserialize_with = "de::opt_i64")]
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<i64>,
    /// Items to skip, ≥ 0 (default 0).
    #[serde(default, deserialize_with = "de::opt_i64")]
    #[param(minimum = 0, default = 0)]
    pub offset: Option<i64>,
    /// Alias of `offset`, kept for the original service's clients.
    #[serde(default, deserialize_with = "de::opt_i64")]
    #[param(minimum = 0)]
    pub skip: Option<i64>,
}

/// Validated paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: i64,
    pub offset: i64,
}

impl PageQuery {
    /// Checks bounds: 422 naming the field when out of range.
    pub fn validate(&self) -> Result<PageRequest, AppError> {
        let mut errors = Vec::new();
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new("limit", "must be between 1 and 100"));
        }
        if self.offset.is_some() && self.skip.is_some() && self.offset != self.skip {
            errors.push(FieldError::new(
                "skip",
                "is an alias of offset; send one of them",
            ));
        }
        let offset = self.offset.or(self.skip).unwrap_or(0);
        if offset < 0 {
            errors.push(FieldError::new(
                if self.offset.is_some() {
                    "offset"
                } else {
                    "skip"
                },
                "must not be negative",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::validation(errors));
        }
        Ok(PageRequest { limit, offset })
    }
}

/// A listing query cut to one page (`LIMIT` and `OFFSET` of a [`PageRequest`]), the
/// same way in every listing.
pub trait Paged: diesel::query_dsl::methods::LimitDsl + Sized
where
    diesel::dsl::Limit<Self>: diesel::query_dsl::methods::OffsetDsl,
{
    fn paged(self, page: PageRequest) -> diesel::dsl::Offset<diesel::dsl::Limit<Self>> {
        use diesel::query_dsl::methods::OffsetDsl;
        self.limit(page.limit).offset(page.offset)
    }
}

impl<Q> Paged for Q
where
    Q: diesel::query_dsl::methods::LimitDsl,
    diesel::dsl::Limit<Q>: diesel::query_dsl::methods::OffsetDsl,
{
}

/// One page of a listing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Matching items in all pages.
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
    /// Present, and true, only when `total` is PostgreSQL's estimate rather than a count:
    /// listings that count their matches (searches, price and stock filters) count exactly
    /// up to a cap (10,000 for products) and estimate beyond it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub total_is_estimate: bool,
    /// The `after` cursor of the next page, on listings that page by cursor (products):
    /// present when this page is full. Cursor pages cost the same however deep they go.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub next_after: Option<String>,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, total: i64, page: PageRequest) -> Self {
        Self {
            items,
            total,
            limit: page.limit,
            offset: page.offset,
            total_is_estimate: false,
            next_after: None,
        }
    }

    /// The same page with the cursor of the next one.
    pub fn with_next_after(mut self, next_after: Option<String>) -> Self {
        self.next_after = next_after;
        self
    }

    /// The same page, its `total` marked as an estimate when `estimated`.
    pub fn estimated(mut self, estimated: bool) -> Self {
        self.total_is_estimate = estimated;
        self
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            total: self.total,
            limit: self.limit,
            offset: self.offset,
            total_is_estimate: self.total_is_estimate,
            next_after: self.next_after,
        }
    }
}

/// The schema of a [`Page`] of `item` (what `Page::<Item>::schema()` gives), described.
pub fn page_schema<T: utoipa::ToSchema>(
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::{RefOr, schema::Schema};
    let mut schema = <Page<T> as utoipa::PartialSchema>::schema();
    if let RefOr::T(Schema::Object(object)) = &mut schema {
        object.description = Some(description.to_string());
    }
    schema
}

/// Names the schema of one `Page<Item>` in the OpenAPI document (`ProductPage`, …), so
/// generated SDKs keep their model names; handlers return [`Page`] itself and document
/// `body = ProductPage`. `named_page!(ProductPage, ProductOut, "…description…");`
#[macro_export]
macro_rules! named_page {
    ($name:ident, $item:ty, $description:literal) => {
        #[doc = $description]
        #[doc = ""]
        #[doc = "The documented name of a [`Page`](ecom_core::Page) of this item."]
        pub struct $name;

        impl ::utoipa::PartialSchema for $name {
            fn schema() -> ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema> {
                $crate::pagination::page_schema::<$item>($description)
            }
        }

        impl ::utoipa::ToSchema for $name {
            fn name() -> ::std::borrow::Cow<'static, str> {
                ::std::borrow::Cow::Borrowed(stringify!($name))
            }

            fn schemas(
                schemas: &mut Vec<(
                    String,
                    ::utoipa::openapi::RefOr<::utoipa::openapi::schema::Schema>,
                )>,
            ) {
                schemas.push((
                    <$item as ::utoipa::ToSchema>::name().into_owned(),
                    <$item as ::utoipa::PartialSchema>::schema(),
                ));
                <$item as ::utoipa::ToSchema>::schemas(schemas);
            }
        }
    };
}

/// Deserializers for query strings: under `#[serde(flatten)]` every value arrives as text.
pub mod de {
    use super::*;

    /// A query value as its own JSON type, or as the text a query string makes of it.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ValueOrText<T> {
        Value(T),
        Text(String),
    }

    /// An optional `T`, reading text with `parse` (which gets it untrimmed and says why
    /// it is refused).
    fn opt_value_or_text<'de, D, T>(
        d: D,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        match Option::<ValueOrText<T>>::deserialize(d)? {
            None => Ok(None),
            Some(ValueOrText::Value(v)) => Ok(Some(v)),
            Some(ValueOrText::Text(s)) => parse(&s).map(Some).map_err(serde::de::Error::custom),
        }
    }

    /// An optional integer given as a number or as text.
    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        opt_value_or_text(d, |s| {
            s.trim()
                .parse()
                .map_err(|_| format!("`{s}` is not an integer"))
        })
    }

    /// An optional boolean given as `true`/`false` (also `1`/`0`).
    pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
        opt_value_or_text(d, |s| match s.trim() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            other => Err(format!("`{other}` is not a boolean")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Result<PageRequest, AppError> {
        let q: PageQuery = serde_urlencoded_like(s);
        q.validate()
    }

    fn serde_urlencoded_like(s: &str) -> PageQuery {
        let q = actix_web::web::Query::<PageQuery>::from_query(s).expect("parses");
        q.into_inner()
    }

    #[test]
    fn defaults_aliases_and_bounds() {
        assert_eq!(
            q("").expect("ok"),
            PageRequest {
                limit: 20,
                offset: 0
            }
        );
        assert_eq!(
            q("limit=5&skip=10").expect("ok"),
            PageRequest {
                limit: 5,
                offset: 10
            }
        );
        assert_eq!(q("offset=3").expect("ok").offset, 3);
        assert_eq!(
            q("limit=0").expect_err("too small").field_errors()[0].field,
            "limit"
        );
        assert_eq!(q("limit=101").expect_err("too big").status().as_u16(), 422);
        assert_eq!(
            q("offset=-1").expect_err("negative").field_errors()[0].field,
            "offset"
        );
    }
}
