//! A caller who holds a permission, as a handler argument: `admin: Authorized<ManageUsers>`
//! says in the signature what the endpoint needs, instead of a `principal.require(…)` line
//! at the top of every handler.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use crate::error::AppError;
use crate::principal::{Permission, Principal};

/// A permission named as a type, for [`Authorized`].
pub trait Required {
    const PERMISSION: Permission;
}

macro_rules! required {
    ($($permission:ident),+ $(,)?) => {
        $(
            #[doc = concat!("Needs [`Permission::", stringify!($permission), "`].")]
            #[derive(Debug, Clone, Copy)]
            pub struct $permission;

            impl Required for $permission {
                const PERMISSION: Permission = Permission::$permission;
            }
        )+
    };
}

required!(
    CreateProduct,
    EditProduct,
    DeleteProduct,
    ManageProducts,
    ManageOrders,
    ManageUsers,
    ViewReports,
    ManageWebhooks,
);

/// An authenticated principal holding `P`: extracting it answers as [`Principal`] does
/// (401, 403 `account_banned`), then 403 `forbidden` when `P` is not held.
#[derive(Debug, Clone)]
pub struct Authorized<P> {
    pub principal: Principal,
    permission: PhantomData<P>,
}

impl<P> std::ops::Deref for Authorized<P> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<P: Required + 'static> FromRequest for Authorized<P> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let principal = Principal::from_request(req, payload);
        Box::pin(async move {
            let principal = principal.await?;
            principal.require(P::PERMISSION)?;
            Ok(Authorized {
                principal,
                permission: PhantomData,
            })
        })
    }
}

/// The 403 of an operation that needs `manage:orders`, for `#[utoipa::path]` responses
/// (orders, payments, events: one text for all of them).
#[derive(utoipa::IntoResponses)]
pub enum NeedsManageOrders {
    /// `forbidden`: needs `manage:orders`
    #[response(status = 403)]
    Forbidden,
}
