//! The OpenAPI base document (core's paths, error schemas, security schemes), the
//! operational routes, and Swagger UI served from the vendored copy.

use actix_web::web;
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::error::{FieldError, Problem};
use crate::http::{PoolStates, PoolStatus, Readiness, Status, health, metrics, ready};
use crate::money::{Money, MoneyInput};
use crate::read_replica::PoolState;

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
    components(schemas(
        Problem,
        FieldError,
        Status,
        Readiness,
        PoolStates,
        PoolStatus,
        PoolState,
        Money,
        MoneyInput
    )),
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

/// What every operation answers because of core's extractors and middleware, added to
/// each operation of the merged document unless its annotation says it already (so a
/// handler lists only its domain statuses, each as `(status = 404, description =
/// "`not_found`: …")`):
/// - every error response (4xx, 5xx) without a body is a `Problem` in
///   `application/problem+json`;
/// - protected (`bearer`) operations also accept the OAuth2 password scheme (Swagger's
///   Authorize button), and answer 401 without a valid token and 403 for a banned account;
/// - JSON bodies answer 400 when malformed, 413 over 64 KiB, 415 in another content
///   type and 422 when a field is invalid or unknown;
/// - integer path parameters answer 400 when they are not integers, query strings 400
///   when they do not parse.
pub fn complete(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::security::SecurityRequirement;
    let bearer = SecurityRequirement::new(BEARER, Vec::<String>::new());
    let oauth2 = SecurityRequirement::new(OAUTH2_PASSWORD, Vec::<String>::new());
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in operations.into_iter().flatten() {
            let responses = &mut op.responses.responses;
            problem_bodies(responses);
            if let Some(security) = op.security.as_mut().filter(|s| s.contains(&bearer)) {
                if !security.contains(&oauth2) {
                    security.push(oauth2.clone());
                }
                add_problem(
                    responses,
                    "401",
                    "`not_authenticated`, `invalid_token`, `token_expired` or `session_revoked` (the login was ended): no valid access token",
                );
                add_problem(responses, "403", "`account_banned`: the account is banned");
            }
            let json_body = op.request_body.as_ref().is_some_and(|b| match b {
                utoipa::openapi::RefOr::T(b) => b.content.contains_key("application/json"),
                utoipa::openapi::RefOr::Ref(_) => false,
            });
            if json_body {
                add_problem(responses, "400", "`malformed_json`: the body is not JSON");
                add_problem(
                    responses,
                    "413",
                    "`payload_too_large`: the body is larger than 64 KiB",
                );
                add_problem(
                    responses,
                    "415",
                    "`unsupported_media_type`: the body is not application/json",
                );
                add_problem(
                    responses,
                    "422",
                    "`validation_failed`: a field is invalid or unknown",
                );
            }
            let mut in_path = false;
            let mut in_query = false;
            for param in op.parameters.iter().flatten() {
                if let utoipa::openapi::RefOr::T(p) = param {
                    match p.parameter_in {
                        utoipa::openapi::path::ParameterIn::Path => in_path = true,
                        utoipa::openapi::path::ParameterIn::Query => in_query = true,
                        _ => {}
                    }
                }
            }
            if in_path {
                add_problem(
                    responses,
                    "400",
                    "`invalid_path`: a path parameter is not an integer",
                );
            }
            if in_query {
                add_problem(
                    responses,
                    "400",
                    "`invalid_query`: the query string does not parse",
                );
            }
        }
    }
}

/// Error responses declared without a body carry the `Problem` body.
fn problem_bodies(
    responses: &mut std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::Response>,
    >,
) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr};
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let RefOr::T(response) = response
            && is_error
            && response.content.is_empty()
        {
            response.content.insert(
                crate::error::PROBLEM_JSON.to_string(),
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build()
                    .into(),
            );
        }
    }
}

fn add_problem(
    responses: &mut std::collections::BTreeMap<
        String,
        utoipa::openapi::RefOr<utoipa::openapi::Response>,
    >,
    status: &str,
    description: &str,
) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    if let Some(RefOr::T(existing)) = responses.get_mut(status) {
        // The annotation documents this status already: add the code if it lacks it.
        let code = description.split(['`', ':']).nth(1).unwrap_or(description);
        if !existing.description.contains(code) {
            existing.description = format!("{}; {description}", existing.description);
        }
        return;
    }
    responses.entry(status.to_string()).or_insert_with(|| {
        ResponseBuilder::new()
            .description(description)
            .content(
                crate::error::PROBLEM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build(),
            )
            .build()
            .into()
    });
}

/// Core's document; the app merges each module's fragment into it.
pub fn base_document(project_name: &str) -> utoipa::openapi::OpenApi {
    let mut doc = CoreApi::openapi();
    doc.info.title = project_name.to_string();
    doc
}

/// `/health`, `/ready`, `/metrics`: registered like a module's handlers.
pub fn register_ops(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(health).service(ready).service(metrics);
}

/// `/docs` (the redirect to Swagger UI), not an operation of the API.
pub fn configure_docs(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/docs").route(web::get().to(docs_redirect)));
}

/// One handler served under several methods (`PUT` and `PATCH /users/me`) is one
/// operation per method; operation ids must be unique, so each copy after the first
/// takes its method as the verb: `updateCurrentUser` → `patchCurrentUser`.
pub fn distinct_method_ids(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let mut seen = std::collections::BTreeSet::new();
        let operations = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, op) in operations {
            let Some(op) = op.as_mut() else { continue };
            let Some(id) = op.operation_id.clone() else {
                continue;
            };
            if seen.insert(id.clone()) {
                continue;
            }
            let noun = id.trim_start_matches(|c: char| c.is_ascii_lowercase());
            op.operation_id = Some(format!("{method}{noun}"));
        }
    }
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
