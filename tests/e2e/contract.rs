//! The OpenAPI document is the contract: its operations are collected from the handlers
//! as they are registered (utoipa-actix-web), so a route cannot be served undocumented;
//! here every documented operation answers as documented, the committed `openapi.json` is
//! what the server serves, no documented status is lost, and each operation is described
//! well enough for SDK generators (ids, tags, errors, security).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use actix_web::http::Method;
use actix_web::test::TestRequest;
use ecom_testkit::{TestDb, served_openapi, test_app};
use serde_json::Value;

use crate::store_context;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

async fn served_document() -> Value {
    served_openapi(store_context).await
}

/// `(method, path)` of every operation in the document.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                ops.insert((method.to_string(), path.clone()));
            }
        }
    }
    ops
}

/// A concrete URL for a documented path: every `{param}` becomes `1`.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push('1');
            }
            '}' => inside = false,
            _ if inside => {}
            _ => out.push(c),
        }
    }
    out
}

fn is_router_miss(status: u16, body: &Value) -> bool {
    status == 405
        || (status == 404
            && body["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("no resource at")))
}

#[actix_web::test]
async fn every_documented_operation_is_served_and_protected_as_documented() {
    let db = TestDb::new().await;
    let app = test_app(store_context(&db)).await;
    let doc = app.openapi().await;
    let ops = documented(&doc);
    assert!(ops.len() >= 30, "the document lists the whole API");
    for (method, path) in &ops {
        let url = concrete(path);
        let req = TestRequest::default()
            .method(Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"))
            .uri(&url);
        let res = app.send(req).await;
        let status = res.status.as_u16();
        assert!(
            !is_router_miss(status, &res.json()),
            "{method} {path} is documented but not served: {status} {}",
            res.text()
        );
        // Without a token, a protected operation answers 401 and a public one never does;
        // one whose requirements include `{}` (a token is optional: carts) is public here.
        let secured = doc["paths"][path][method]["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty() && !s.iter().any(|r| r == &serde_json::json!({})));
        assert_eq!(
            status == 401,
            secured,
            "{method} {path}: answered {status} without a token but documents security {}",
            doc["paths"][path][method]["security"]
        );
    }
    // Other methods on a documented path are not served either.
    let paths: BTreeSet<&String> = ops.iter().map(|(_, p)| p).collect();
    for path in paths {
        for method in METHODS {
            if ops.contains(&(method.to_string(), path.clone())) {
                continue;
            }
            let req = TestRequest::default()
                .method(Method::from_bytes(method.to_uppercase().as_bytes()).expect("method"))
                .uri(&concrete(path));
            let res = app.send(req).await;
            assert_eq!(
                res.status.as_u16(),
                405,
                "{method} {path} is served but not documented: {}",
                res.text()
            );
            let allow = res.header("allow").unwrap_or_default().to_string();
            for (served, _) in ops.iter().filter(|(_, p)| p == path) {
                assert!(
                    allow.contains(&served.to_uppercase()),
                    "{method} {path}: Allow `{allow}` lacks {served}"
                );
            }
        }
    }
}

/// `openapi.json` at the root of the repository, as SDK teams read it in review.
#[actix_web::test]
async fn the_committed_document_is_the_served_one() {
    let doc = served_document().await;
    let mut text = serde_json::to_string_pretty(&doc).expect("serialize");
    text.push('\n');
    let file = workspace_root().join("openapi.json");
    let committed = std::fs::read_to_string(&file).unwrap_or_default();
    if committed == text {
        return;
    }
    let update = std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1");
    let in_ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    if update && !in_ci {
        std::fs::write(&file, &text).expect("write openapi.json");
        eprintln!("rewrote {}", file.display());
        return;
    }
    let line = committed
        .lines()
        .zip(text.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| committed.lines().count().min(text.lines().count()));
    panic!(
        "openapi.json differs from the served /openapi.json (first at line {}); regenerate it \
         with `UPDATE_OPENAPI=1 cargo test -p ecom-api --test e2e contract` and commit it",
        line + 1
    );
}

/// The `code` an error description starts with: "`not_found`: no such product".
fn leading_code(description: &str) -> Option<&str> {
    let code = description.strip_prefix('`')?.split('`').next()?;
    (!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_')).then_some(code)
}

/// What SDK generators and their users need from each operation.
#[actix_web::test]
async fn every_operation_is_described_for_sdks() {
    let doc = served_document().await;
    let mut failures: Vec<String> = Vec::new();
    macro_rules! check {
        ($ok:expr, $($msg:tt)+) => {
            if !$ok {
                failures.push(format!($($msg)+));
            }
        };
    }
    macro_rules! check_eq {
        ($a:expr, $b:expr, $($msg:tt)+) => {
            check!($a == $b, "{}: {} != {}", format!($($msg)+), $a, $b)
        };
    }
    let declared_tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    let mut ids = BTreeSet::new();
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][&method];
        let name = format!("{} {path}", method.to_uppercase());
        let id = op["operationId"].as_str().unwrap_or_default();
        check!(
            id.starts_with(|c: char| c.is_ascii_lowercase())
                && id.chars().all(|c| c.is_ascii_alphanumeric()),
            "{name}: operationId `{id}` is not lowerCamelCase"
        );
        check!(ids.insert(id.to_string()), "{name}: operationId {id} twice");
        let tags: Vec<&str> = op["tags"]
            .as_array()
            .map(|t| t.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        check!(
            tags.len() == 1 && declared_tags.contains(tags[0]),
            "{name}: one declared tag, got {tags:?}"
        );
        check!(op["summary"].is_string(), "{name}: no summary");
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let code: u16 = status.parse().expect("numeric status");
            if code < 400 {
                continue;
            }
            let content = &response["content"]["application/problem+json"];
            check_eq!(
                problem_schema(&doc, &content["schema"]),
                "#/components/schemas/Problem",
                "{name} {status}: errors are problem+json"
            );
            let description = response["description"].as_str().unwrap_or_default();
            check!(
                leading_code(description).is_some(),
                "{name} {status}: the description does not start with its `code`: {description}"
            );
        }
        let security = op["security"].as_array().cloned().unwrap_or_default();
        if !security.is_empty() {
            for scheme in ["bearer", "oauth2_password"] {
                check!(
                    security.iter().any(|s| s.get(scheme).is_some()),
                    "{name}: {scheme} is not accepted"
                );
            }
            for status in ["401", "403"] {
                check!(responses.contains_key(status), "{name}: no {status}");
            }
        }
        if op["requestBody"]["content"]["application/json"].is_object() {
            for status in ["400", "413", "415", "422"] {
                check!(responses.contains_key(status), "{name}: no {status}");
            }
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["name"] == "limit" {
                check_eq!(param["schema"]["minimum"], 1, "{name}: limit");
                check_eq!(param["schema"]["maximum"], 100, "{name}: limit");
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    check_eq!(schemas["Money"]["type"], "string", "Money");
    check_eq!(schemas["Money"]["format"], "decimal", "Money");
    for (schema, field, min, max) in [
        ("CreateReviewRequest", "rating", 1, 5),
        ("OrderItemRequest", "quantity", 1, 1000),
    ] {
        let property = &schemas[schema]["properties"][field];
        check_eq!(property["minimum"], min, "{schema}.{field}");
        check_eq!(property["maximum"], max, "{schema}.{field}");
    }
    for schema in [
        "ProductOut",
        "OrderOut",
        "UserProfile",
        "TokenPair",
        "CreateProductRequest",
        "CreateOrderRequest",
        "RegisterRequest",
        "Problem",
        "SalesReportOut",
    ] {
        check!(
            schemas[schema]["examples"].is_array() || schemas[schema]["example"].is_object(),
            "{schema} has no example"
        );
    }
    assert!(
        failures.is_empty(),
        "{} problems in the document:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The `Problem` reference an error body's schema is or extends (`allOf` with `Problem`
/// first, RFC 9457 extension members after: a cart checkout's `problems`).
fn problem_schema<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let named = schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
        .map(|name| &doc["components"]["schemas"][name]);
    match named.map(|s| &s["allOf"][0]["$ref"]) {
        Some(base) if base.is_string() => base,
        _ => &schema["$ref"],
    }
}

/// Every body is documented as an object: serde would build a struct from an array too
/// (`[null, null]` as `{full_name: null, bio: null}`); the server refuses it (found by
/// schemathesis).
#[actix_web::test]
async fn bodies_must_be_objects() {
    let db = TestDb::new().await;
    let app = test_app(store_context(&db)).await;
    let (_, token) = app.sign_up("array@example.com", crate::PASSWORD).await;
    let array = serde_json::json!([null, null]);
    for (method, path) in [
        (Method::PUT, "/users/me"),
        (Method::PATCH, "/users/me"),
        (Method::POST, "/orders"),
    ] {
        app.request(method.clone(), path, Some(array.clone()), Some(&token))
            .await
            .assert_problem(422, "validation_failed");
    }
    app.post(
        "/auth/login",
        serde_json::json!(["array@example.com", crate::PASSWORD]),
        None,
    )
    .await
    .assert_problem(422, "validation_failed");
}

/// `METHOD path status` of every response the document declares.
fn operation_statuses(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (method, path) in documented(doc) {
        let responses = doc["paths"][&path][&method]["responses"]
            .as_object()
            .expect("responses");
        for status in responses.keys() {
            out.insert(format!("{} {path} {status}", method.to_uppercase()));
        }
    }
    out
}

/// The lines of a committed list under `tests/e2e`, which must hold at least `at_least`
/// of them: the record that the document is compared with.
fn committed_list(name: &str, at_least: usize) -> BTreeSet<String> {
    let file = workspace_root().join("tests/e2e").join(name);
    let committed: BTreeSet<String> = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("read {name}: {e}"))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    assert!(committed.len() >= at_least, "{name} covers the API");
    committed
}

/// No operation loses a documented status: `operation_statuses.txt` lists every
/// `(method, path, status)` the document declared when responses were written per route,
/// before the common ones moved to `complete()` (a new status or route is added there).
#[actix_web::test]
async fn no_documented_status_is_lost() {
    let doc = served_document().await;
    let served = operation_statuses(&doc);
    let committed = committed_list("operation_statuses.txt", 150);
    let lost: Vec<_> = committed.difference(&served).collect();
    assert!(lost.is_empty(), "statuses no longer documented: {lost:?}");
    let new: Vec<_> = served.difference(&committed).collect();
    assert!(
        new.is_empty(),
        "statuses documented but not in tests/e2e/operation_statuses.txt (add them): {new:?}"
    );
}

/// The backquoted codes (`not_found`, …) an error description names.
fn codes_in(description: &str) -> impl Iterator<Item = &str> {
    description
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| !c.is_empty() && c.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
}

/// No response loses a documented code: `operation_codes.txt` lists `METHOD path status
/// code` as the document named them when each route wrote out its error responses.
#[actix_web::test]
async fn no_documented_code_is_lost() {
    let doc = served_document().await;
    let mut served = BTreeSet::new();
    for (method, path) in documented(&doc) {
        let responses = doc["paths"][&path][&method]["responses"]
            .as_object()
            .expect("responses");
        for (status, response) in responses {
            let description = response["description"].as_str().unwrap_or_default();
            for code in codes_in(description) {
                served.insert(format!("{} {path} {status} {code}", method.to_uppercase()));
            }
        }
    }
    let committed = committed_list("operation_codes.txt", 250);
    let lost: Vec<_> = committed.difference(&served).collect();
    assert!(lost.is_empty(), "codes no longer documented: {lost:?}");
}
