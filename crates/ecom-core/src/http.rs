//! The app factory shared by the binary and the tests: app data, extractor limits,
//! middleware, the operational endpoints and the merged OpenAPI document.
//!
//! A [`Module`] is one registration function over utoipa-actix-web's `ServiceConfig`:
//! the document's operations are collected from the handlers it registers (each with its
//! actix route macro and `#[utoipa::path]`), so what is served is what is documented.
//! Each handler is its own guarded resource, so the default service answers 405 (with
//! `Allow`) from the served document. Trailing slashes are trimmed once, before routing
//! ([`NormalizePath`]), for the original service's clients (`/products/`).

use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError, UrlencodedError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::{
    Condition, ErrorHandlerResponse, ErrorHandlers, Next, NormalizePath, from_fn,
};
use actix_web::{App, Error, HttpRequest, HttpResponse, get, web};
use actix_web_prom::{PrometheusMetrics, PrometheusMetricsBuilder};
use diesel_async::RunQueryDsl;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::access_token::AccessTokens;
use crate::db::{PgPool, PoolCollector};
use crate::error::{AppError, FieldError, PROBLEM_JSON, problem, problem_response};
use crate::principal::SharedResolver;
use crate::read_replica::{PoolState, ReadReplica};
use crate::settings::{SecretString, Settings};
use crate::telemetry::request_context;

/// Largest request body accepted, in bytes (API.md: over 64 KiB → 413).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Registers a module's handlers on utoipa-actix-web's service config, which collects
/// each handler's `#[utoipa::path]` operation as it registers its actix route.
pub type Register = Arc<dyn Fn(&mut ServiceConfig<'_>) + Send + Sync>;

/// What a domain crate contributes to the app: one registration function (its routes,
/// whose operations the OpenAPI document is built from) and the schemas and tags of its
/// OpenAPI fragment.
///
/// Where this differs from ARCHITECTURE's "one actix `configure` function": each handler
/// carries its actix route macro and its `#[utoipa::path]`, and the crate's `configure`
/// registers them on utoipa-actix-web's `ServiceConfig`, so a route cannot be served
/// undocumented or documented unserved. Responses list only the crate's own statuses and
/// codes (error families once, as `#[derive(IntoResponses)]` types in its `api`);
/// [`crate::openapi::complete`] adds the common ones and the `Problem` bodies.
#[derive(Clone)]
pub struct Module {
    pub name: &'static str,
    pub register: Register,
    pub openapi: utoipa::openapi::OpenApi,
}

impl Module {
    /// A module of documented routes: `register` calls `cfg.service(handler)` for each
    /// handler carrying both its actix route macro and its `#[utoipa::path]`.
    pub fn routes(
        name: &'static str,
        register: impl Fn(&mut ServiceConfig<'_>) + Send + Sync + 'static,
        openapi: utoipa::openapi::OpenApi,
    ) -> Self {
        Self {
            name,
            register: Arc::new(register),
            openapi,
        }
    }
}

/// Registers core's operational routes and every module's on one service config.
fn register_all(modules: &[Module], cfg: &mut ServiceConfig<'_>) {
    crate::openapi::register_ops(cfg);
    for module in modules {
        (module.register)(cfg);
    }
}

/// The methods served on each documented path, from the served document: the router
/// answers 405 (with `Allow`) for another method on one of them.
#[derive(Debug)]
struct ServedPaths(Vec<(actix_web::dev::ResourceDef, Vec<actix_web::http::Method>)>);

impl ServedPaths {
    fn new(doc: &utoipa::openapi::OpenApi) -> Self {
        use actix_web::http::Method;
        let paths = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    (Method::GET, item.get.is_some()),
                    (Method::POST, item.post.is_some()),
                    (Method::PUT, item.put.is_some()),
                    (Method::PATCH, item.patch.is_some()),
                    (Method::DELETE, item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(m, served)| served.then_some(m))
                .collect();
                (actix_web::dev::ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        Self(paths)
    }

    fn allowed(&self, path: &str) -> Option<&[actix_web::http::Method]> {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, methods)| methods.as_slice())
    }
}

/// Whether the server has begun shutting down. Set once, at the first SIGTERM or SIGINT:
/// from then on `/ready` answers 503 and every response closes its connection, so a load
/// balancer stops routing here (and drops its kept-alive connections) before the listener
/// closes. Clones share the flag; background tasks may wait on [`Draining::started`].
#[derive(Debug, Clone)]
pub struct Draining(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Draining {
    fn default() -> Self {
        Self(Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl Draining {
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the server as draining (idempotent).
    pub fn start(&self) {
        self.0.send_replace(true);
    }

    pub fn is_draining(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once draining has started (at once if it already has).
    pub async fn started(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = rx.wait_for(|draining| *draining).await;
    }
}

/// Everything the app factory needs, built once and cloned into each worker.
#[derive(Clone)]
pub struct AppContext {
    pub settings: web::Data<Settings>,
    pub pool: web::Data<PgPool>,
    pub tokens: web::Data<AccessTokens>,
    trusted_proxies: web::Data<crate::client_address::TrustedProxies>,
    draining: Draining,
    resolver: Option<web::Data<SharedResolver>>,
    read_replica: Option<web::Data<ReadReplica>>,
    metrics: PrometheusMetrics,
    openapi: utoipa::openapi::OpenApi,
    served: web::Data<ServedPaths>,
    modules: Vec<Module>,
}

impl AppContext {
    /// Builds the shared state; `secret` signs access tokens.
    pub fn new(
        settings: Settings,
        pool: PgPool,
        secret: &SecretString,
        modules: Vec<Module>,
    ) -> Result<Self, String> {
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(PoolCollector::new(pool.clone())))
            .map_err(|e| e.to_string())?;
        let prometheus_metrics = PrometheusMetricsBuilder::new("ecom")
            .registry(registry)
            .mask_unmatched_patterns("unmatched")
            .exclude_regex("^/docs")
            .build()
            .map_err(|e| e.to_string())?;
        let mut openapi = crate::openapi::base_document(&settings.project_name);
        for module in &modules {
            openapi.merge(module.openapi.clone());
        }
        // The operations are those the handlers register: collected from a throwaway app.
        let (_, served) = App::new()
            .into_utoipa_app()
            .configure(|cfg| register_all(&modules, cfg))
            .split_for_parts();
        openapi.merge(served);
        crate::openapi::complete(&mut openapi);
        crate::openapi::distinct_method_ids(&mut openapi);
        let served = web::Data::new(ServedPaths::new(&openapi));
        let tokens = AccessTokens::new(secret, settings.access_token_expire_minutes);
        let trusted_proxies =
            crate::client_address::TrustedProxies(settings.trusted_proxy_networks()?);
        Ok(Self {
            trusted_proxies: web::Data::new(trusted_proxies),
            settings: web::Data::new(settings),
            pool: web::Data::new(pool),
            tokens: web::Data::new(tokens),
            draining: Draining::new(),
            resolver: None,
            read_replica: None,
            metrics: prometheus_metrics,
            openapi,
            served,
            modules,
        })
    }

    /// Installs the resolver the principal extractor asks for the caller's current state.
    pub fn with_resolver(mut self, resolver: SharedResolver) -> Self {
        self.resolver = Some(web::Data::new(resolver));
        self
    }

    /// Serves anonymous catalog reads and reports from `replica` while it is up (see
    /// [`crate::read_replica`]); `/ready` shows its state.
    pub fn with_read_replica(mut self, replica: Arc<ReadReplica>) -> Self {
        let collector = crate::read_replica::ReplicaCollector::new(replica.clone());
        if let Err(e) = self.metrics.registry.register(Box::new(collector)) {
            tracing::warn!(error = %e, "the read replica's metrics are not exported");
        }
        self.read_replica = Some(web::Data::from(replica));
        self
    }

    /// The shutdown flag every app built from this context reads (see [`Draining`]).
    pub fn draining(&self) -> &Draining {
        &self.draining
    }

    /// The merged OpenAPI document served at `/openapi.json`.
    pub fn openapi(&self) -> &utoipa::openapi::OpenApi {
        &self.openapi
    }
}

/// The whole application: core endpoints, every module, middleware, error shaping.
pub fn build_app(
    ctx: &AppContext,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody + use<>>,
        Error = Error,
        InitError = (),
    > + use<>,
> {
    let origins = ctx.settings.cors_origins();
    let app = App::new()
        .app_data(ctx.settings.clone())
        .app_data(ctx.trusted_proxies.clone())
        .app_data(ctx.pool.clone())
        .app_data(ctx.tokens.clone())
        .app_data(web::Data::new(ctx.draining.clone()))
        .app_data(
            web::JsonConfig::default()
                .limit(BODY_LIMIT)
                .error_handler(json_error),
        )
        .app_data(
            web::FormConfig::default()
                .limit(BODY_LIMIT)
                .error_handler(form_error),
        )
        .app_data(web::PayloadConfig::new(BODY_LIMIT))
        .app_data(web::QueryConfig::default().error_handler(query_error))
        .app_data(web::PathConfig::default().error_handler(path_error));
    let app = app.app_data(web::Data::new(ctx.metrics.registry.clone()));
    let app = match &ctx.resolver {
        Some(resolver) => app.app_data(resolver.clone()),
        None => app,
    };
    let app = match &ctx.read_replica {
        Some(replica) => app.app_data(replica.clone()),
        None => app,
    };
    let app = app.app_data(ctx.served.clone());
    app.into_utoipa_app()
        .configure(|cfg| register_all(&ctx.modules, cfg))
        .into_app()
        .configure(crate::openapi::configure_docs)
        .service(crate::openapi::swagger_ui(ctx.openapi.clone()))
        .default_service(web::to(unmatched))
        .wrap(ErrorHandlers::new().default_handler(problem_for_bare_errors))
        // Before routing: `/products/` is `/products` (the original service's clients
        // send the slash), for every route at once.
        .wrap(NormalizePath::trim())
        .wrap(from_fn(swagger_index))
        .wrap(Condition::new(!origins.is_empty(), cors(&origins)))
        .wrap(ctx.metrics.clone())
        .wrap(from_fn(close_while_draining))
        .wrap(from_fn(request_context))
}

/// `/docs/` is Swagger UI's page while `/docs` redirects there; trimming the slash would
/// make them one, so the page is asked for by its file name before [`NormalizePath`].
async fn swagger_index(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    if req.path() == "/docs/" {
        let uri = actix_web::http::Uri::from_static("/docs/index.html");
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }
    next.call(req).await
}

/// While draining, every response asks the client to close its connection, so kept-alive
/// connections (a load balancer's pool) move to other replicas before the listener closes.
async fn close_while_draining(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let draining = req
        .app_data::<web::Data<Draining>>()
        .is_some_and(|d| d.is_draining());
    let mut res = next.call(req).await?;
    if draining {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}

fn cors(origins: &[String]) -> actix_cors::Cors {
    let base = actix_cors::Cors::default()
        .allow_any_method()
        .allow_any_header()
        .expose_headers(["x-request-id", "retry-after", "www-authenticate"])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        return base.allow_any_origin();
    }
    origins.iter().fold(base, |cors, o| cors.allowed_origin(o))
}

/// No route matched: 405 with `Allow` when the path is served with other methods (each
/// handler is its own resource, guarded by its method), else 404.
async fn unmatched(req: HttpRequest) -> Result<HttpResponse, AppError> {
    let allowed = req
        .app_data::<web::Data<ServedPaths>>()
        .and_then(|s| s.allowed(req.path()));
    if let Some(methods) = allowed {
        let status = StatusCode::METHOD_NOT_ALLOWED;
        let body = problem(
            status,
            "method_not_allowed",
            "this method is not allowed on this resource",
            &[],
        );
        let mut res = problem_response(status, &body, None);
        let allow = methods
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if let Ok(value) = HeaderValue::from_str(&allow) {
            res.headers_mut().insert(header::ALLOW, value);
        }
        return Ok(res);
    }
    Err(AppError::not_found(format!(
        "no resource at {}",
        req.path()
    )))
}

/// Rewrites any error response that is not problem+json yet (405 from routing, actix
/// internals) into the same shape as every other error.
fn problem_for_bare_errors<B: MessageBody>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "the resource does not exist"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this method is not allowed on this resource",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than 64 KiB",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "send application/json"),
        s if s.is_server_error() => ("internal_error", "an internal error occurred"),
        _ => ("bad_request", "the request is not valid"),
    };
    let body = problem(status, code, detail, &[]);
    let (req, old) = res.into_parts();
    let mut new = problem_response(status, &body, None);
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = old.headers().get(&name) {
            new.headers_mut().insert(name, v.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new)
            .map_into_right_body::<B>()
            .map_body(|_, b: EitherBody<B, BoxBody>| b),
    ))
}

fn too_large() -> AppError {
    AppError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than 64 KiB",
    )
}

fn unsupported_media() -> AppError {
    AppError::unsupported_media_type("send the body as application/json")
}

/// Whether the request declares a body of this media type (`application/json`, …),
/// for handlers that read the body by hand.
pub fn has_content_type(req: &HttpRequest, media_type: &str) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with(media_type))
}

/// serde reports "unknown field `role`"; name that field for the client.
fn field_of(message: &str) -> String {
    for marker in ["unknown field `", "missing field `", "duplicate field `"] {
        if let Some((_, rest)) = message.split_once(marker)
            && let Some((field, _)) = rest.split_once('`')
        {
            return field.to_string();
        }
    }
    "body".to_string()
}

/// The problem for a JSON body that serde refused: 400 when it is not JSON at all,
/// 422 naming the field when its content is wrong (unknown field, wrong type).
pub fn json_body_error(e: &serde_json::Error) -> AppError {
    if e.is_data() {
        let message = e.to_string();
        let clean = message
            .split(" at line ")
            .next()
            .unwrap_or(&message)
            .to_string();
        return AppError::validation(vec![FieldError::new(field_of(&clean), clean)]);
    }
    AppError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
}

/// A JSON request body that must be an object, as every body of the API is documented.
/// serde would also build a struct from an array (`[null, null]` as `{full_name, bio}`);
/// this extractor refuses anything but an object with 422, then deserializes like
/// `web::Json` (same size limit, content type and malformed-JSON errors).
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonObject<T> {
    type Error = Error;
    type Future = futures_util::future::LocalBoxFuture<'static, Result<Self, Error>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = value.await?.into_inner();
            Ok(JsonObject(object_from_value(value)?))
        })
    }
}

/// Deserializes a JSON object into `T`; anything but an object is 422.
pub fn object_from_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, AppError> {
    if !value.is_object() {
        return Err(AppError::invalid_field("body", "must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| json_body_error(&e))
}

/// For partial updates: `#[serde(default, deserialize_with = "ecom_core::http::present")]`
/// on an `Option<Option<T>>` tells a field sent as `null` (`Some(None)`, "clear it") from
/// one not sent (`None`, "leave it").
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Parses a body read by hand (`web::Bytes`) as a JSON object into `T`.
pub fn json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| json_body_error(&e))?;
    object_from_value(value)
}

fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> Error {
    let app = match &err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
            too_large()
        }
        JsonPayloadError::ContentType => unsupported_media(),
        JsonPayloadError::Deserialize(e) => json_body_error(e),
        _ => AppError::bad_request("bad_request", "the request body could not be read"),
    };
    app.into()
}

fn form_error(err: UrlencodedError, _req: &HttpRequest) -> Error {
    let app = match &err {
        UrlencodedError::Overflow { .. } => too_large(),
        UrlencodedError::ContentType => unsupported_media(),
        UrlencodedError::Parse(e) => {
            let message = e.to_string();
            AppError::validation(vec![FieldError::new(field_of(&message), message)])
        }
        _ => AppError::bad_request("bad_request", "the form body could not be read"),
    };
    app.into()
}

fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> Error {
    let detail = match &err {
        QueryPayloadError::Deserialize(e) => format!("invalid query string: {e}"),
        _ => "invalid query string".to_string(),
    };
    AppError::bad_request("invalid_query", detail).into()
}

fn path_error(err: PathError, _req: &HttpRequest) -> Error {
    let detail = match &err {
        PathError::Deserialize(e) => format!("invalid path parameter: {e}"),
        _ => "invalid path parameter".to_string(),
    };
    AppError::bad_request("invalid_path", detail).into()
}

/// Body of `/health` and `/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(tag = "ops", operation_id = "getHealth",
    responses((status = 200, description = "The process is alive", body = Status)))]
#[get("/health")]
pub async fn health() -> web::Json<Status> {
    web::Json(Status { status: "ok" })
}

/// Body of `/ready`: each database pool's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: &'static str,
    pub pools: PoolStates,
}

/// The state of the primary's pool, and of the read replica's when `DATABASE_READ_URL` is
/// set. Only the primary decides readiness: reads skip a replica that is down or lagging.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolStates {
    pub primary: PoolStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<PoolStatus>,
}

/// One pool's state; `lag_ms` (the replica only) is how far its last check found it
/// behind the primary.
#[derive(Debug, Serialize, ToSchema)]
pub struct PoolStatus {
    pub state: PoolState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
}

/// Readiness: the primary answers a query, and the server is not shutting down. The body
/// names each pool's state (see [`Readiness`]).
#[utoipa::path(tag = "ops", operation_id = "getReadiness",
    responses(
        (status = 200, description = "Ready to serve; the body names each database pool's state (`primary`, and `replica` when `DATABASE_READ_URL` is set: `up`, `lagging` or `down`; a replica that is not `up` is skipped, reads go to the primary)", body = Readiness),
        (status = 503, description = "`service_unavailable`: the primary does not answer, or the server is draining for shutdown (from the first SIGTERM or SIGINT, while it still serves for a short grace before it stops accepting); the problem carries the same `pools` member"),
    ))]
#[get("/ready")]
pub async fn ready(
    req: HttpRequest,
    draining: web::Data<Draining>,
    pool: web::Data<PgPool>,
) -> Result<HttpResponse, AppError> {
    let primary = primary_answers(&pool).await;
    let pools = PoolStates {
        primary: PoolStatus {
            state: if primary.is_ok() {
                PoolState::Up
            } else {
                PoolState::Down
            },
            lag_ms: None,
        },
        replica: req
            .app_data::<web::Data<ReadReplica>>()
            .map(|r| PoolStatus {
                state: r.state(),
                lag_ms: r.lag().map(|l| l.as_millis() as u64),
            }),
    };
    if draining.is_draining() {
        // Expected during every shutdown: answered without an error log line.
        let status = StatusCode::SERVICE_UNAVAILABLE;
        let mut body = problem(
            status,
            "service_unavailable",
            "the server is shutting down",
            &[],
        );
        body.extensions.insert(
            "pools".into(),
            serde_json::to_value(&pools).unwrap_or_default(),
        );
        return Ok(problem_response(status, &body, None));
    }
    match primary {
        Ok(()) => Ok(HttpResponse::Ok().json(Readiness {
            status: "ready",
            pools,
        })),
        Err(e) => Err(e.with_extension("pools", &pools)),
    }
}

/// Whether the primary's pool hands out a connection that answers `SELECT 1`.
async fn primary_answers(pool: &PgPool) -> Result<(), AppError> {
    let mut conn = pool.get().await?;
    diesel::sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .map_err(AppError::unavailable)?;
    Ok(())
}

/// Prometheus text: request counts and latency histograms per route and status, pool
/// gauges. With `METRICS_TOKEN` set, only for `Authorization: Bearer <METRICS_TOKEN>`.
#[utoipa::path(tag = "ops", operation_id = "getMetrics",
    responses(
        (status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"),
        (status = 401, description = "`not_authenticated`: `METRICS_TOKEN` is set and the request does not carry it as a bearer token"),
    ))]
#[get("/metrics")]
pub async fn metrics(req: HttpRequest) -> HttpResponse {
    if let Err(e) = require_metrics_token(&req) {
        return e.into_response();
    }
    // actix-web-prom keeps the registry; read it back from the middleware's app data.
    let families = req
        .app_data::<web::Data<prometheus::Registry>>()
        .map(|r| r.gather())
        .unwrap_or_default();
    let mut text = String::new();
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut text) {
        return AppError::internal(e.to_string()).into_response();
    }
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        ))
        .body(text)
}

/// With `METRICS_TOKEN` set, the request must present it as its bearer token (compared
/// in constant time, so response timing does not reveal how much of a guess was right).
fn require_metrics_token(req: &HttpRequest) -> Result<(), AppError> {
    use subtle::ConstantTimeEq;
    let Some(expected) = req
        .app_data::<web::Data<Settings>>()
        .and_then(|s| s.metrics_token.clone())
    else {
        return Ok(());
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .unwrap_or_default();
    if bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes())) {
        Ok(())
    } else {
        Err(AppError::unauthorized(
            "not_authenticated",
            "the metrics need the bearer token set as METRICS_TOKEN",
        ))
    }
}

impl AppError {
    /// Renders this error directly (for handlers that build responses by hand).
    pub fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}
