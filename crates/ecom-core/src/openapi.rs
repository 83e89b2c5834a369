//! The OpenAPI base document (core's paths, error schemas, security schemes), the
//! operational routes, and Swagger UI served from the vendored copy.

use actix_web::web;
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{FieldError, Problem};
use crate::http::{__path_health, __path_metrics, __path_ready, Status, health, metrics, ready};
use crate::money::Money;

/// Name of the bearer-token security scheme; domain paths reference it.
pub const BEARER: &str = "bearer";
/// Name of the OAuth2 password-flow scheme (Swagger's Authorize button).
pub const OAUTH2_PASSWORD: &str = "oauth2_password";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ecom",
        description = "E-commerce backend: accounts, catalog, checkout that never oversells, orders and admin.\n\n\
            Errors are RFC 9457 `application/problem+json` with a stable `code`. Money is an exact decimal \
            sent as a two-place string. Lists are `{items, total, limit, offset}` with `limit` 1..=100.",
        license(name = "MIT")
    ),
    paths(health, ready, metrics),
    components(schemas(Problem, FieldError, Status, Money)),
    modifiers(&SecuritySchemes),
    tags((name = "ops", description = "Liveness, readiness and metrics"))
)]
struct CoreApi;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            OAUTH2_PASSWORD,
            SecurityScheme::OAuth2(OAuth2::new([Flow::Password(Password::new(
                "/auth/login",
                Scopes::new(),
            ))])),
        );
    }
}

/// Core's document; the app merges each module's fragment into it.
pub fn base_document(project_name: &str) -> utoipa::openapi::OpenApi {
    let mut doc = CoreApi::openapi();
    doc.info.title = project_name.to_string();
    doc
}

/// `/health`, `/ready`, `/metrics`.
pub fn configure_ops(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health").route(web::get().to(health)))
        .service(web::resource("/ready").route(web::get().to(ready)))
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .service(web::resource("/docs").route(web::get().to(docs_redirect)));
}

/// `/docs` → `/docs/`, where Swagger UI's relative assets resolve.
async fn docs_redirect() -> actix_web::HttpResponse {
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/docs/"))
        .finish()
}

/// Swagger UI at `/docs`, reading the document served at `/openapi.json`.
pub fn swagger_ui(doc: utoipa::openapi::OpenApi) -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}")
        .url("/openapi.json", doc)
        .config(utoipa_swagger_ui::Config::default().persist_authorization(true))
}
