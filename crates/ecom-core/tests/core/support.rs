//! A module of test-only routes that exercise core's extractors and error rendering.

use actix_web::{HttpResponse, web};
use ecom_core::db::PgPool;
use ecom_core::request_db::Db;
use ecom_core::{AppError, Module, PageQuery, Permission, Principal};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Strict {
    name: String,
    price: ecom_core::Money,
}

async fn echo(body: web::Json<Strict>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"name": body.name, "price": body.price}))
}

async fn item(id: web::Path<i64>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"id": id.into_inner()}))
}

async fn page(q: web::Query<PageQuery>) -> Result<HttpResponse, AppError> {
    let p = q.validate()?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"limit": p.limit, "offset": p.offset})))
}

async fn boom() -> Result<HttpResponse, AppError> {
    Err(AppError::internal("SELECT secret FROM internals failed"))
}

/// A database error that is not a known kind: must be a 500 without its text.
async fn bad_sql(pool: web::Data<PgPool>) -> Result<HttpResponse, AppError> {
    use diesel_async::RunQueryDsl;
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT * FROM table_that_does_not_exist")
        .execute(&mut conn)
        .await?;
    Ok(HttpResponse::Ok().finish())
}

async fn guarded(principal: Principal) -> Result<HttpResponse, AppError> {
    principal.require(Permission::ManageOrders)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"user_id": principal.user_id})))
}

/// How many idle connections the pool had when the handler asked for its connection, and
/// how many connections exist once it has it.
async fn connections(_principal: Principal, db: Db) -> Result<HttpResponse, AppError> {
    let idle_before = db.pool().status().available;
    let _conn = db.conn().await?;
    let open = db.pool().status().size;
    Ok(HttpResponse::Ok().json(serde_json::json!({"idle_before": idle_before, "open": open})))
}

async fn whoami(principal: Principal) -> HttpResponse {
    HttpResponse::Ok()
        .json(serde_json::json!({"user_id": principal.user_id, "role": principal.role}))
}

/// Plain actix routes, registered through `map` so they stay out of the document.
pub fn module() -> Module {
    Module::routes(
        "test",
        |cfg| {
            cfg.map(|c| {
                c.service(web::resource("/t/echo").route(web::post().to(echo)))
                    .service(web::resource("/t/items/{id}").route(web::get().to(item)))
                    .service(web::resource("/t/page").route(web::get().to(page)))
                    .service(web::resource("/t/boom").route(web::get().to(boom)))
                    .service(web::resource("/t/bad-sql").route(web::get().to(bad_sql)))
                    .service(web::resource("/t/guarded").route(web::get().to(guarded)))
                    .service(web::resource("/t/whoami").route(web::get().to(whoami)))
                    .service(
                        web::resource("/t/connections")
                            .route(web::get().to(connections))
                            .route(web::post().to(connections)),
                    )
            });
        },
        utoipa::openapi::OpenApi::default(),
    )
}
