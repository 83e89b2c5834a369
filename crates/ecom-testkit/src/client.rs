//! Typed clients per role over a [`TestApp`]: the bearer token is held once, bodies are
//! anything `Serialize`, and the common flows (sign up, log in, create a product, place
//! an order, read a page) answer typed values instead of `serde_json::Value`.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::Method;
use actix_web::test::TestRequest;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{TestApp, TestResponse};

/// Who a client acts as; says what a test means by its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No token.
    Anonymous,
    /// Signed in, no permissions.
    Shopper,
    /// Holds `manage:orders` and `manage:products`.
    Manager,
    /// Holds every permission.
    Admin,
    /// Signed in with whatever role and permissions the test gave the account.
    User,
}

/// `{email, password}` of `/auth/register` and `/auth/login`.
#[derive(Debug, Clone, Serialize)]
pub struct Credentials<'a> {
    pub email: &'a str,
    pub password: &'a str,
}

/// The token pair of `/auth/login`.
#[derive(Debug, Clone, Deserialize)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// A registered and logged-in account.
#[derive(Debug, Clone)]
pub struct SignedUp {
    pub id: i64,
    pub tokens: Tokens,
}

/// The body of `POST /products`.
#[derive(Debug, Clone, Serialize)]
pub struct NewProduct<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub price: &'a str,
    pub stock: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_name: Option<&'a str>,
}

impl<'a> NewProduct<'a> {
    /// A product with no description nor category.
    pub fn new(name: &'a str, price: &'a str, stock: i64) -> Self {
        Self {
            name,
            description: "",
            price,
            stock,
            category_name: None,
        }
    }
}

/// One `{product_id, quantity}` line of `POST /orders`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OrderLine {
    pub product_id: i64,
    pub quantity: i64,
}

/// The body of `POST /orders`, from `(product_id, quantity)` pairs.
#[derive(Debug, Clone, Serialize)]
pub struct NewOrder {
    pub items: Vec<OrderLine>,
}

impl NewOrder {
    pub fn of(pairs: &[(i64, i64)]) -> Self {
        Self {
            items: pairs
                .iter()
                .map(|&(product_id, quantity)| OrderLine {
                    product_id,
                    quantity,
                })
                .collect(),
        }
    }
}

/// What the tests read of a product.
#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: i64,
    pub name: String,
    pub price: String,
    pub stock: i64,
}

/// What the tests read of an order.
#[derive(Debug, Clone, Deserialize)]
pub struct Order {
    pub id: i64,
    pub user_id: i64,
    pub status: String,
    pub total_price: String,
}

/// The list envelope of every collection.
#[derive(Debug, Clone, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Requests as one caller: its token (if any) on every request.
pub struct Client<'a, S> {
    app: &'a TestApp<S>,
    role: Role,
    token: Option<String>,
}

impl<S, B> TestApp<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// A caller without a token.
    pub fn anonymous(&self) -> Client<'_, S> {
        Client {
            app: self,
            role: Role::Anonymous,
            token: None,
        }
    }

    /// A caller holding `token`, acting as `role`.
    pub fn client(&self, role: Role, token: impl Into<String>) -> Client<'_, S> {
        Client {
            app: self,
            role,
            token: Some(token.into()),
        }
    }

    pub fn user(&self, token: impl Into<String>) -> Client<'_, S> {
        self.client(Role::User, token)
    }

    pub fn shopper(&self, token: impl Into<String>) -> Client<'_, S> {
        self.client(Role::Shopper, token)
    }

    pub fn manager(&self, token: impl Into<String>) -> Client<'_, S> {
        self.client(Role::Manager, token)
    }

    pub fn admin(&self, token: impl Into<String>) -> Client<'_, S> {
        self.client(Role::Admin, token)
    }

    /// Registers and logs in `email`: its id and a client acting as it.
    pub async fn signed_in(&self, email: &str, password: &str) -> (i64, Client<'_, S>) {
        let (id, token) = self.sign_up(email, password).await;
        (id, self.user(token))
    }

    /// One of the [`crate::fixtures::accounts`], with a fresh token.
    pub fn fixed(&self, user_id: i64) -> Client<'_, S> {
        use crate::fixtures::{ADMIN, MANAGER};
        let role = match user_id {
            ADMIN => Role::Admin,
            MANAGER => Role::Manager,
            _ => Role::Shopper,
        };
        self.client(role, crate::access_token(user_id))
    }
}

impl<S, B> Client<'_, S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    pub fn role(&self) -> Role {
        self.role
    }

    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// A request with this caller's token; `body`, when given, as JSON.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> TestResponse {
        self.app
            .request(method, path, body, self.token.as_deref())
            .await
    }

    /// Any other request (headers, forms), with this caller's token added.
    pub async fn send_request(&self, mut req: TestRequest) -> TestResponse {
        if let Some(t) = &self.token {
            req = req.insert_header(("authorization", format!("Bearer {t}")));
        }
        self.app.send(req).await
    }

    pub async fn get(&self, path: impl AsRef<str>) -> TestResponse {
        self.send(Method::GET, path.as_ref(), None).await
    }

    pub async fn post(&self, path: impl AsRef<str>, body: impl Serialize) -> TestResponse {
        self.send(Method::POST, path.as_ref(), Some(to_json(body)))
            .await
    }

    pub async fn put(&self, path: impl AsRef<str>, body: impl Serialize) -> TestResponse {
        self.send(Method::PUT, path.as_ref(), Some(to_json(body)))
            .await
    }

    pub async fn patch(&self, path: impl AsRef<str>, body: impl Serialize) -> TestResponse {
        self.send(Method::PATCH, path.as_ref(), Some(to_json(body)))
            .await
    }

    pub async fn delete(&self, path: impl AsRef<str>) -> TestResponse {
        self.send(Method::DELETE, path.as_ref(), None).await
    }

    /// Sends one call and asserts the problem it answers, naming the call when it differs:
    /// the step of every refusal table.
    async fn assert_answers(
        &self,
        method: Method,
        path: &str,
        body: Option<serde_json::Value>,
        status: u16,
        code: &str,
    ) {
        let res = self.send(method.clone(), path, body).await;
        assert_eq!(
            res.status.as_u16(),
            status,
            "{method} {path}: {}",
            res.text()
        );
        res.assert_problem(status, code);
    }

    /// Sends each of `calls` (method, path, JSON body if any) and asserts that every one
    /// answers the same problem: a table of what this caller may not do.
    pub async fn assert_refused(
        &self,
        status: u16,
        code: &str,
        calls: impl IntoIterator<Item = (Method, &str, Option<serde_json::Value>)>,
    ) {
        for (method, path, body) in calls {
            self.assert_answers(method, path, body, status, code).await;
        }
    }

    /// `GET path`, expecting 200 with a `T`.
    pub async fn read<T: DeserializeOwned>(&self, path: impl AsRef<str>) -> T {
        self.get(path).await.assert_status(200).parse()
    }

    /// `GET path`, expecting 200 with a list envelope of `T`.
    pub async fn page<T: DeserializeOwned>(&self, path: impl AsRef<str>) -> Page<T> {
        self.read(path).await
    }

    /// `GET path`, expecting 200 with a list envelope: how many rows match.
    pub async fn listed_total(&self, path: impl AsRef<str>) -> i64 {
        self.page::<serde_json::Value>(path).await.total
    }

    /// GETs each `(path, total)` listing and asserts how many rows it matches: a table of
    /// filters.
    pub async fn assert_totals<P: AsRef<str>>(&self, cases: impl IntoIterator<Item = (P, i64)>) {
        for (path, total) in cases {
            let path = path.as_ref();
            assert_eq!(self.listed_total(path).await, total, "{path}");
        }
    }

    /// `POST /auth/register`, expecting 201; the new user's id.
    pub async fn register(&self, email: &str, password: &str) -> i64 {
        let created: Created = self
            .post("/auth/register", Credentials { email, password })
            .await
            .assert_status(201)
            .parse();
        created.id
    }

    /// `POST /auth/register`, then `POST /auth/login`.
    pub async fn sign_up(&self, email: &str, password: &str) -> SignedUp {
        SignedUp {
            id: self.register(email, password).await,
            tokens: self.log_in(email, password).await,
        }
    }

    /// `POST /auth/login`, expecting 200.
    pub async fn log_in(&self, email: &str, password: &str) -> Tokens {
        self.post("/auth/login", Credentials { email, password })
            .await
            .assert_status(200)
            .parse()
    }

    /// `POST /products`, expecting 201.
    pub async fn create_product(&self, product: &NewProduct<'_>) -> Product {
        self.post("/products", product)
            .await
            .assert_status(201)
            .parse()
    }

    /// `DELETE /products/{id}`, whatever it answers.
    pub async fn delete_product(&self, product_id: i64) -> TestResponse {
        self.delete(format!("/products/{product_id}")).await
    }

    /// `PUT /admin/roles/{name}` with these permissions, expecting 200.
    pub async fn put_role(&self, name: &str, permissions: &[&str]) -> TestResponse {
        let body = serde_json::json!({ "permissions": permissions });
        let res = self.put(format!("/admin/roles/{name}"), body).await;
        res.assert_status(200);
        res
    }

    /// `PATCH /admin/users/{id}/role`, expecting 200.
    pub async fn assign_role(&self, user_id: i64, role: &str) -> TestResponse {
        let body = serde_json::json!({ "role": role });
        let res = self
            .patch(format!("/admin/users/{user_id}/role"), body)
            .await;
        res.assert_status(200);
        res
    }

    /// `GET /users/me`: whether this caller's token still opens its account.
    pub async fn me(&self) -> TestResponse {
        self.get("/users/me").await
    }

    /// `POST /auth/login` with whatever it answers (a refusal, a throttle).
    pub async fn try_log_in(&self, email: &str, password: &str) -> TestResponse {
        self.post("/auth/login", Credentials { email, password })
            .await
    }

    /// `POST /auth/refresh` with this refresh token, whatever it answers.
    pub async fn refresh(&self, refresh_token: impl Serialize) -> TestResponse {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        self.post("/auth/refresh", body).await
    }

    /// `POST /auth/revoke` with this refresh token, whatever it answers.
    pub async fn revoke(&self, refresh_token: impl Serialize) -> TestResponse {
        let body = serde_json::json!({ "refresh_token": refresh_token });
        self.post("/auth/revoke", body).await
    }

    /// `PATCH /admin/users/{id}/ban` with `banned`, expecting 200; the user as answered.
    pub async fn set_banned(&self, user_id: i64, banned: bool) -> serde_json::Value {
        let body = serde_json::json!({ "banned": banned });
        self.patch(format!("/admin/users/{user_id}/ban"), body)
            .await
            .assert_status(200)
            .json()
    }

    /// GETs each `(path, status, code)` and asserts that problem: a table of refused reads.
    pub async fn assert_problems<P: AsRef<str>>(
        &self,
        cases: impl IntoIterator<Item = (P, u16, &str)>,
    ) {
        for (path, status, code) in cases {
            self.get(path).await.assert_problem(status, code);
        }
    }

    /// Sends each `(path, body, status, code)` with `method` and asserts that problem: a
    /// table of refused writes.
    pub async fn assert_writes_refused<P: AsRef<str>>(
        &self,
        method: Method,
        cases: impl IntoIterator<Item = (P, serde_json::Value, u16, &str)>,
    ) {
        for (path, body, status, code) in cases {
            let (method, path) = (method.clone(), path.as_ref());
            self.assert_answers(method, path, Some(body), status, code)
                .await;
        }
    }

    /// `POST /orders` with `(product_id, quantity)` lines, whatever it answers.
    pub async fn try_order(&self, pairs: &[(i64, i64)]) -> TestResponse {
        self.post("/orders", NewOrder::of(pairs)).await
    }

    /// `POST /orders/{id}/cancel` without a body, whatever it answers.
    pub async fn cancel_order(&self, order_id: i64) -> TestResponse {
        let path = format!("/orders/{order_id}/cancel");
        self.send(Method::POST, &path, None).await
    }

    /// `POST /orders` with `(product_id, quantity)` lines, expecting 201.
    pub async fn place_order(&self, pairs: &[(i64, i64)]) -> Order {
        self.try_order(pairs).await.assert_status(201).parse()
    }
}

#[derive(Deserialize)]
struct Created {
    id: i64,
}

fn to_json(body: impl Serialize) -> serde_json::Value {
    serde_json::to_value(body).expect("a test body serializes")
}

impl TestResponse {
    /// Asserts 201 with a `Location` of `{collection}/{id}` for the new row; its body.
    #[track_caller]
    pub fn assert_created(&self, collection: &str) -> serde_json::Value {
        self.assert_status(201);
        let created = self.json();
        let id = created["id"].as_i64().expect("id of the created row");
        let location = format!("{collection}/{id}");
        assert_eq!(self.header("location"), Some(location.as_str()));
        created
    }

    /// The body as a `T`, panicking with the body when it is not one.
    #[track_caller]
    pub fn parse<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("unexpected body ({e}): {}", self.text()))
    }
}
