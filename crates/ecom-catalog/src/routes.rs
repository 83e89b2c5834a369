//! Handlers of /categories and /products: parse, authorize, call a service, render.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, post, route, web};
use ecom_core::authorized::{
    Authorized, CreateProduct, DeleteProduct, EditProduct, ManageProducts,
};
use ecom_core::http_cache::{Cached, NotModified};
use ecom_core::request_db::Db;
use ecom_core::settings::Settings;
use ecom_core::{AppResult, Page, PageQuery, Principal};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::api::{
    CategoryOut, CategoryPage, CreateCategoryRequest, CreateProductRequest, CreateReviewRequest,
    CreateVariantRequest, NewProductRefused, NewVariantRefused, ProductBodyRefused,
    ProductListQuery, ProductMissing, ProductOut, ProductPage, ReviewOut, ReviewPage,
    UpdateProductRequest, UpdateVariantRequest, VariantBodyRefused, VariantConflict,
    VariantMissing, VariantOut,
};
use crate::service::{self, CategoryNames, MatchSource, SearchCache};

/// Registers the catalog's handlers; each carries its route and its operation, and the
/// app factory answers 405 for other methods on a served path.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_categories)
        .service(create_category)
        .service(list_products)
        .service(create_product)
        .service(get_product)
        .service(update_product)
        .service(delete_product)
        .service(create_variant)
        .service(update_variant)
        .service(delete_variant)
        .service(list_product_reviews)
        .service(create_product_review);
}

fn created(location: String, body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(body)
}

/// Categories by name, each with its number of products in the catalog.
#[utoipa::path(tag = "catalog", operation_id = "listCategories",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of categories", body = CategoryPage),
        NotModified,
        (status = 400, description = "`invalid_query`: malformed query"),
        (status = 422, description = "`validation_failed`: limit or offset out of range"),
    ))]
#[get("/categories")]
pub async fn list_categories(
    db: Db,
    query: web::Query<PageQuery>,
) -> AppResult<Cached<Page<CategoryOut>>> {
    let page = query.validate()?;
    let categories = db
        .read_replica_if_anonymous(async |conn| Ok(service::list_categories(conn, page).await?))
        .await?;
    Ok(Cached(categories.map(CategoryOut::from)))
}

/// Creates a category (`manage:products`). Names are unique regardless of case.
#[utoipa::path(tag = "catalog", operation_id = "createCategory",
    request_body = CreateCategoryRequest,
    responses(
        (status = 201, description = "Created", body = CategoryOut),
        (status = 403, description = "`forbidden`: needs `manage:products`"),
        (status = 409, description = "`category_exists`: the name is taken"),
        (status = 422, description = "`validation_failed`: invalid name or unknown field"),
    ),
    security(("bearer" = [])))]
#[post("/categories")]
pub async fn create_category(
    _editor: Authorized<ManageProducts>,
    db: Db,
    body: ecom_core::JsonObject<CreateCategoryRequest>,
) -> AppResult<HttpResponse> {
    let name = body.into_inner().validate()?;
    let mut conn = db.conn().await?;
    let category = service::create_category(&mut conn, &name).await?;
    Ok(created(
        format!("/categories/{}", category.id),
        CategoryOut::from(category),
    ))
}

/// The catalog: filtered, sorted and paged; `search` is full-text, ranked by relevance.
///
/// `total` is exact for the whole catalog and for one category. With a search, a price or
/// a stock filter it is counted up to 10,000 matches; beyond that the page carries
/// `total_is_estimate: true` and `total` is PostgreSQL's estimate (at least 10,001), and a
/// search ranks the first 10,000 products its text matches.
///
/// A replica reuses a search's text matches for up to `SEARCH_CACHE_SECONDS` (5 s by
/// default): the names, prices and stock shown are always current, but a product created
/// or renamed meanwhile may take that long, plus one read of the matches, to appear in (or
/// leave) a search's results.
#[utoipa::path(tag = "catalog", operation_id = "listProducts",
    params(ProductListQuery, PageQuery),
    responses(
        (status = 200, description = "A page of products", body = ProductPage),
        NotModified,
        (status = 400, description = "`invalid_query`: malformed query (e.g. a non-integer category_id)"),
        (status = 422, description = "`validation_failed`: a parameter out of range (limit, offset, prices, sort)"),
    ))]
#[get("/products")]
pub async fn list_products(
    db: Db,
    searches: web::Data<SearchCache>,
    category_names: web::Data<CategoryNames>,
    settings: web::Data<Settings>,
    query: web::Query<ProductListQuery>,
) -> AppResult<Cached<Page<ProductOut>>> {
    let page = query.page.validate()?;
    let filter = query.validate()?;
    let after = query.cursor(&filter, &page)?;
    let reuse = Duration::from_secs(settings.search_cache_seconds);
    let products = db
        .read_replica_if_anonymous(async |conn| {
            Ok(service::list_products_reusing(
                conn,
                &filter,
                page,
                after.as_ref(),
                MatchSource::Reused(&searches, reuse),
                &category_names,
            )
            .await?)
        })
        .await?;
    Ok(Cached(products.map(ProductOut::from)))
}

/// Creates a product (`create:product`); a new `category_name` creates that category.
#[utoipa::path(tag = "catalog", operation_id = "createProduct",
    request_body = CreateProductRequest,
    responses(
        (status = 201, description = "Created", body = ProductOut),
        (status = 403, description = "`forbidden`: needs `create:product`"),
        VariantConflict,
        NewProductRefused,
    ),
    security(("bearer" = [])))]
#[post("/products")]
pub async fn create_product(
    editor: Authorized<CreateProduct>,
    db: Db,
    searches: web::Data<SearchCache>,
    body: ecom_core::JsonObject<CreateProductRequest>,
) -> AppResult<HttpResponse> {
    let new = body.into_inner().validate()?;
    let mut conn = db.conn().await?;
    let product = service::create_product_audited(&mut conn, editor.user_id, new).await?;
    searches.clear();
    Ok(created(
        format!("/products/{}", product.row.id),
        ProductOut::from(product),
    ))
}

/// A product of the catalog; deleted and missing products are 404.
#[utoipa::path(tag = "catalog", operation_id = "getProduct",
    params(("id" = i64, Path, description = "Product id")),
    responses(
        (status = 200, description = "The product", body = ProductOut),
        NotModified,
        (status = 400, description = "`invalid_path`: the id is not an integer"),
        ProductMissing,
    ))]
#[get("/products/{id}")]
pub async fn get_product(db: Db, id: web::Path<i64>) -> AppResult<Cached<ProductOut>> {
    let id = id.into_inner();
    let product = db
        .read_replica_if_anonymous(async |conn| Ok(service::get_product(conn, id).await?))
        .await?;
    Ok(Cached(product.into()))
}

/// Partial update (`edit:product`): only the fields sent change. PUT and PATCH alike.
#[utoipa::path(tag = "catalog", operation_id = "updateProduct",
    params(("id" = i64, Path, description = "Product id")),
    request_body = UpdateProductRequest,
    responses(
        (status = 200, description = "The updated product", body = ProductOut),
        (status = 403, description = "`forbidden`: needs `edit:product`"),
        ProductMissing,
        ProductBodyRefused,
    ),
    security(("bearer" = [])))]
#[route("/products/{id}", method = "PUT", method = "PATCH")]
pub async fn update_product(
    editor: Authorized<EditProduct>,
    db: Db,
    searches: web::Data<SearchCache>,
    id: web::Path<i64>,
    body: ecom_core::JsonObject<UpdateProductRequest>,
) -> AppResult<web::Json<ProductOut>> {
    let changes = body.into_inner().validate()?;
    let mut conn = db.conn().await?;
    let product =
        service::update_product_audited(&mut conn, editor.user_id, id.into_inner(), changes)
            .await?;
    searches.clear();
    Ok(web::Json(product.into()))
}

/// Takes a product out of the catalog (`delete:product`); past orders keep their lines.
#[utoipa::path(tag = "catalog", operation_id = "deleteProduct",
    params(("id" = i64, Path, description = "Product id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: needs `delete:product`"),
        ProductMissing,
    ),
    security(("bearer" = [])))]
#[delete("/products/{id}")]
pub async fn delete_product(
    editor: Authorized<DeleteProduct>,
    db: Db,
    searches: web::Data<SearchCache>,
    id: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let mut conn = db.conn().await?;
    service::delete_product_audited(&mut conn, editor.user_id, id.into_inner()).await?;
    searches.clear();
    Ok(HttpResponse::NoContent().finish())
}

/// Adds a variant to a product (`create:product`); at most 100 per product. Its options
/// must have the names of the product's other variants.
#[utoipa::path(tag = "catalog", operation_id = "createVariant",
    params(("id" = i64, Path, description = "Product id")),
    request_body = CreateVariantRequest,
    responses(
        (status = 201, description = "Created", body = VariantOut),
        (status = 403, description = "`forbidden`: needs `create:product`"),
        ProductMissing,
        VariantConflict,
        NewVariantRefused,
    ),
    security(("bearer" = [])))]
#[post("/products/{id}/variants")]
pub async fn create_variant(
    editor: Authorized<CreateProduct>,
    db: Db,
    searches: web::Data<SearchCache>,
    id: web::Path<i64>,
    body: ecom_core::JsonObject<CreateVariantRequest>,
) -> AppResult<HttpResponse> {
    let product_id = id.into_inner();
    let new = body.into_inner().validate()?;
    let mut conn = db.conn().await?;
    let variant =
        service::create_variant_audited(&mut conn, editor.user_id, product_id, new).await?;
    searches.clear();
    Ok(created(
        format!("/products/{product_id}/variants/{}", variant.id),
        VariantOut::from(variant),
    ))
}

/// Partial update of a variant (`edit:product`): only the fields sent change; `is_default:
/// true` takes the default from the old default variant. PUT and PATCH alike.
#[utoipa::path(tag = "catalog", operation_id = "updateVariant",
    params(
        ("id" = i64, Path, description = "Product id"),
        ("variant_id" = i64, Path, description = "Variant id"),
    ),
    request_body = UpdateVariantRequest,
    responses(
        (status = 200, description = "The updated variant", body = VariantOut),
        (status = 403, description = "`forbidden`: needs `edit:product`"),
        VariantMissing,
        VariantConflict,
        VariantBodyRefused,
    ),
    security(("bearer" = [])))]
#[route(
    "/products/{id}/variants/{variant_id}",
    method = "PUT",
    method = "PATCH"
)]
pub async fn update_variant(
    editor: Authorized<EditProduct>,
    db: Db,
    searches: web::Data<SearchCache>,
    path: web::Path<(i64, i64)>,
    body: ecom_core::JsonObject<UpdateVariantRequest>,
) -> AppResult<web::Json<VariantOut>> {
    let (product_id, variant_id) = path.into_inner();
    let changes = body.into_inner().validate()?;
    let mut conn = db.conn().await?;
    let variant =
        service::update_variant_audited(&mut conn, editor.user_id, product_id, variant_id, changes)
            .await?;
    searches.clear();
    Ok(web::Json(variant.into()))
}

/// Removes a variant from the catalog (`delete:product`); past orders keep their lines. A
/// product keeps at least one variant; when the default goes, the lowest-id variant left
/// becomes the default.
#[utoipa::path(tag = "catalog", operation_id = "deleteVariant",
    params(
        ("id" = i64, Path, description = "Product id"),
        ("variant_id" = i64, Path, description = "Variant id"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`forbidden`: needs `delete:product`"),
        VariantMissing,
        (status = 409, description = "`last_variant`: the product's only variant; delete the product instead"),
    ),
    security(("bearer" = [])))]
#[delete("/products/{id}/variants/{variant_id}")]
pub async fn delete_variant(
    editor: Authorized<DeleteProduct>,
    db: Db,
    searches: web::Data<SearchCache>,
    path: web::Path<(i64, i64)>,
) -> AppResult<HttpResponse> {
    let (product_id, variant_id) = path.into_inner();
    let mut conn = db.conn().await?;
    service::delete_variant_audited(&mut conn, editor.user_id, product_id, variant_id).await?;
    searches.clear();
    Ok(HttpResponse::NoContent().finish())
}

/// Reviews of a product, newest first.
#[utoipa::path(tag = "catalog", operation_id = "listProductReviews",
    params(("id" = i64, Path, description = "Product id"), PageQuery),
    responses(
        (status = 200, description = "A page of reviews", body = ReviewPage),
        NotModified,
        ProductMissing,
        (status = 422, description = "`validation_failed`: limit or offset out of range"),
    ))]
#[get("/products/{id}/reviews")]
pub async fn list_product_reviews(
    db: Db,
    id: web::Path<i64>,
    query: web::Query<PageQuery>,
) -> AppResult<Cached<Page<ReviewOut>>> {
    let page = query.validate()?;
    let id = id.into_inner();
    let reviews = db
        .read_replica_if_anonymous(async |conn| Ok(service::list_reviews(conn, id, page).await?))
        .await?;
    Ok(Cached(reviews.map(ReviewOut::from)))
}

/// Reviews a product as the signed-in user; one review per user and product.
#[utoipa::path(tag = "catalog", operation_id = "createProductReview",
    params(("id" = i64, Path, description = "Product id")),
    request_body = CreateReviewRequest,
    responses(
        (status = 201, description = "Created", body = ReviewOut),
        ProductMissing,
        (status = 409, description = "`already_reviewed`: the user has reviewed this product"),
        (status = 422, description = "`validation_failed`: rating outside 1..=5, comment too long, or unknown field"),
    ),
    security(("bearer" = [])))]
#[post("/products/{id}/reviews")]
pub async fn create_product_review(
    principal: Principal,
    db: Db,
    id: web::Path<i64>,
    body: ecom_core::JsonObject<CreateReviewRequest>,
) -> AppResult<HttpResponse> {
    let product_id = id.into_inner();
    let new = body.into_inner().validate()?;
    let mut conn = db.conn().await?;
    let review = service::create_review(&mut conn, product_id, principal.user_id, new).await?;
    Ok(created(
        format!("/products/{product_id}/reviews"),
        ReviewOut::from(review),
    ))
}
