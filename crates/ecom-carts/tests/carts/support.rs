//! The carts tests' own fixtures; the shared ones come from `ecom_testkit::fixtures`.

use std::time::Duration;

use actix_web::http::Method;
use actix_web::test::TestRequest;
use diesel_async::RunQueryDsl;
use ecom_core::AppContext;
use ecom_core::db::{PgPool, PoolOptions, build_pool};
use ecom_core::settings::SecretString;
pub use ecom_testkit::fixtures::{ADMIN, CROWD, OTHER, SHOPPER, accounts, count, token};
use ecom_testkit::{AppService, TEST_SECRET, TestApp, TestDb, TestResponse, test_settings};
use serde_json::{Value, json};

/// The modules a cart needs: the catalog, orders and carts.
pub fn modules() -> Vec<ecom_core::Module> {
    vec![
        ecom_catalog::module(),
        ecom_orders::module(),
        ecom_carts::module(),
    ]
}

/// The catalog, orders and carts modules in process, with the fixed accounts.
#[macro_export]
macro_rules! app {
    ($db:expr) => {
        ecom_testkit::test_app(ecom_testkit::fixtures::context(
            $db,
            $crate::support::modules(),
        ))
        .await
    };
}

/// [`ecom_testkit::stocked!`] with the carts app on the same database:
/// `let (db, mut conn, [mug], app) = shop!(("Mug", "8.50", 10)).await;`.
#[macro_export]
macro_rules! shop {
    ($($product:tt),+ $(,)?) => {
        async {
            let (db, conn, ids) = ecom_testkit::stocked!($($product),+).await;
            let app = $crate::app!(&db);
            (db, conn, ids, app)
        }
    };
}

/// The same modules on a real socket, and a client for it: for racing requests.
pub struct Socket {
    pub server: ecom_testkit::RunningServer,
    client: awc::Client,
    pool: PgPool,
}

impl Socket {
    /// Serves on `db` with a pool of `pool_size`.
    pub fn serve(db: &TestDb, pool_size: usize) -> Self {
        let options = PoolOptions {
            max_size: pool_size,
            wait_timeout: Duration::from_secs(60),
            statement_timeout: Duration::from_secs(60),
            application_name: "ecom-carts-test".into(),
        };
        let pool = build_pool(&db.url, &options).expect("pool");
        let ctx = AppContext::new(
            test_settings(db, &[]),
            pool.clone(),
            &SecretString::new(TEST_SECRET),
            modules(),
        )
        .expect("app context builds")
        .with_resolver(accounts());
        Self {
            server: ecom_testkit::spawn_server(ctx),
            client: ecom_testkit::http_client(),
            pool,
        }
    }

    /// Sends `method path` as `who`: status and body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        who: As<'_>,
    ) -> (u16, Value) {
        let mut req = self.client.request(method, self.server.url(path));
        for header in who.headers() {
            req = req.insert_header(header);
        }
        let mut res = match body {
            Some(b) => req.send_json(&b).await,
            None => req.send().await,
        }
        .expect("the server answers");
        let bytes = res.body().await.expect("a body");
        (
            res.status().as_u16(),
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A product as the catalog shows it.
    pub async fn product(&self, id: i64) -> Value {
        self.send(
            Method::GET,
            &format!("/products/{id}"),
            None,
            As::anonymous(),
        )
        .await
        .1
    }

    /// A cart made by `who` with `quantity` of the product's default variant: its body
    /// at creation (with the guest token) and the variant.
    pub async fn cart_with(&self, who: As<'_>, product: i64, quantity: i64) -> (Value, i64) {
        let (status, cart) = self.send(Method::POST, "/carts", None, who).await;
        assert_eq!(status, 201, "{cart}");
        let variant = match self.product(product).await["variants"][0]["id"].as_i64() {
            Some(id) => id,
            None => default_variant(&self.pool, product).await,
        };
        let holder = match cart["token"].as_str() {
            Some(t) => As {
                cart_token: Some(t),
                ..who
            },
            None => who,
        };
        let put = format!("/carts/{}/items/{variant}", cart["id"]);
        let (status, body) = self
            .send(
                Method::PUT,
                &put,
                Some(json!({"quantity": quantity})),
                holder,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        (cart, variant)
    }
}

/// Who sends a request: a bearer token and a cart token, either optional.
#[derive(Debug, Clone, Copy, Default)]
pub struct As<'a> {
    pub bearer: Option<&'a str>,
    pub cart_token: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
}

impl<'a> As<'a> {
    pub fn anonymous() -> Self {
        Self::default()
    }
    pub fn user(bearer: &'a str) -> Self {
        Self {
            bearer: Some(bearer),
            ..Self::default()
        }
    }
    pub fn guest(cart_token: &'a str) -> Self {
        Self {
            cart_token: Some(cart_token),
            ..Self::default()
        }
    }
    pub fn with_key(self, key: &'a str) -> Self {
        Self {
            idempotency_key: Some(key),
            ..self
        }
    }
    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(t) = self.bearer {
            headers.push(("authorization", format!("Bearer {t}")));
        }
        if let Some(t) = self.cart_token {
            headers.push(("x-cart-token", t.to_string()));
        }
        if let Some(k) = self.idempotency_key {
            headers.push(("idempotency-key", k.to_string()));
        }
        headers
    }
}

/// Sends `method path` in process as `who`, with an optional JSON body.
pub async fn call<S: AppService>(
    app: &TestApp<S>,
    method: Method,
    path: &str,
    body: Option<Value>,
    who: As<'_>,
) -> TestResponse {
    let mut req = TestRequest::default().method(method).uri(path);
    for header in who.headers() {
        req = req.insert_header(header);
    }
    if let Some(b) = body {
        req = req.set_json(b);
    }
    app.send(req).await
}

/// A guest cart: (id, token).
pub async fn guest_cart<S: AppService>(app: &TestApp<S>) -> (i64, String) {
    let res = post_cart(app, As::anonymous()).await;
    res.assert_status(201);
    let body = res.json();
    (
        body["id"].as_i64().expect("id"),
        body["token"].as_str().expect("token").to_string(),
    )
}

/// The signed-in user's cart id (made if needed).
pub async fn user_cart<S: AppService>(app: &TestApp<S>, bearer: &str) -> i64 {
    let res = post_cart(app, As::user(bearer)).await;
    assert!(matches!(res.status.as_u16(), 200 | 201), "{}", res.text());
    res.json()["id"].as_i64().expect("id")
}

/// `PUT /carts/{id}/items/{variant}` with `quantity` as `who`.
pub async fn put_item<S: AppService>(
    app: &TestApp<S>,
    cart: i64,
    variant: i64,
    quantity: i64,
    who: As<'_>,
) -> TestResponse {
    call(
        app,
        Method::PUT,
        &format!("/carts/{cart}/items/{variant}"),
        Some(json!({"quantity": quantity})),
        who,
    )
    .await
}

/// The product's default variant id: as the product JSON shows it, or, while it does not
/// list its variants yet, as the catalog stores it.
pub async fn variant_of<S: AppService>(app: &TestApp<S>, product: i64) -> i64 {
    let body = app
        .get(format!("/products/{product}"))
        .await
        .assert_status(200)
        .json();
    match body["variants"][0]["id"].as_i64() {
        Some(id) => id,
        None => default_variant(&app.ctx.pool, product).await,
    }
}

/// The product's default variant as the catalog's table holds it.
pub async fn default_variant(pool: &PgPool, product: i64) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Variant {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let mut conn = pool.get().await.expect("a connection");
    let row: Variant =
        diesel::sql_query("SELECT id FROM product_variants WHERE product_id = $1 AND is_default")
            .bind::<diesel::sql_types::BigInt, _>(product)
            .get_result(&mut conn)
            .await
            .expect("the default variant");
    row.id
}

/// The product's stock as the catalog shows it.
pub async fn stock_of<S: AppService>(app: &TestApp<S>, product: i64) -> i64 {
    app.get(format!("/products/{product}"))
        .await
        .assert_status(200)
        .json()["stock"]
        .as_i64()
        .expect("stock")
}

/// Changes a product's price and/or stock as the administrator.
pub async fn change_product<S: AppService>(app: &TestApp<S>, product: i64, changes: Value) {
    app.put(
        &format!("/products/{product}"),
        changes,
        Some(&token(ADMIN)),
    )
    .await
    .assert_status(200);
}

/// Deletes a product as the administrator.
pub async fn delete_product<S: AppService>(app: &TestApp<S>, product: i64) {
    app.delete(&format!("/products/{product}"), Some(&token(ADMIN)))
        .await
        .assert_status(204);
}

/// The codes of a cart's problems for `variant`, sorted.
pub fn problem_codes(cart: &Value, variant: i64) -> Vec<String> {
    let mut codes: Vec<String> = cart["problems"]
        .as_array()
        .expect("problems")
        .iter()
        .filter(|p| p["variant_id"] == variant)
        .map(|p| p["code"].as_str().expect("code").to_string())
        .collect();
    codes.sort();
    codes
}

/// The quantity of `variant` in a cart body (0 when it has no line).
pub fn quantity_in(cart: &Value, variant: i64) -> i64 {
    cart["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["variant_id"] == variant)
        .map_or(0, |i| i["quantity"].as_i64().expect("quantity"))
}

/// `GET /carts/{id}` as `who`.
pub async fn get_cart<S: AppService>(app: &TestApp<S>, id: i64, who: As<'_>) -> TestResponse {
    call(app, Method::GET, &format!("/carts/{id}"), None, who).await
}

/// `POST /carts` as `who`.
pub async fn post_cart<S: AppService>(app: &TestApp<S>, who: As<'_>) -> TestResponse {
    call(app, Method::POST, "/carts", None, who).await
}
