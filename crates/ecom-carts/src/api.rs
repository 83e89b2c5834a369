//! Request and response bodies of /carts.

use ecom_core::error::Problem;
use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

use crate::model::{Cart, CartProblem};

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// A cart as sent.
pub type CartOut = Cart;

/// A cart just made; a guest cart comes with the token that holds it, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewCartOut {
    /// Guest carts only: 256 random bits, hex. Send it as `X-Cart-Token` to use the cart;
    /// the store keeps only its hash and cannot show it again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        nullable = false,
        example = "5f0e2b6c1d9a4e7f8b3c2a1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f"
    )]
    pub token: Option<String>,
    #[serde(flatten)]
    pub cart: CartOut,
}

/// The 409 of a checkout: the problem body, with the cart's problems when they blocked it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartHasProblems {
    #[serde(flatten)]
    pub problem: Problem,
    /// With `cart_has_problems`: what to settle before checking out (as `GET /carts/{id}`
    /// shows it). The other conflicts of a checkout send the plain problem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<CartProblem>,
}

/// A cart that is missing, expired, merged, or not the caller's. Declared once; core gives
/// each error its `Problem` body.
#[derive(IntoResponses)]
pub enum CartMissing {
    /// `not_found`: no such cart for this caller (missing, expired, merged, or not held:
    /// another user's cart, or a guest cart without its `X-Cart-Token`)
    #[response(status = 404)]
    NotFound,
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// The absolute quantity of one variant in the cart.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quantity": 2}))]
pub struct SetQuantityRequest {
    /// 0..=1000; 0 removes the line.
    #[schema(minimum = 0, maximum = 1000)]
    pub quantity: i64,
}

/// The guest cart to merge into the caller's cart.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The guest cart's token, as `POST /carts` gave it.
    #[schema(min_length = 1, max_length = 128)]
    pub cart_token: String,
}

ecom_core::debug_showing!(MergeRequest {});
