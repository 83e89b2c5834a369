//! Reviews: one per user and product, kept consistent with the product's rating.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ecom_core::{Page, PageRequest};

use super::Result;
use crate::error::CatalogError;
use crate::model::{NewReview, Review, ReviewInsert};
use crate::schema::{products, reviews};

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
