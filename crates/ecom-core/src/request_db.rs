//! One pooled connection per request. The principal extractor resolves the caller on a
//! connection and, when the request has no body to read, keeps it for the handler; the
//! handler's [`Db`] takes that one instead of checking out another. A request with a body
//! gives its connection back before the body is read, so a slow upload never holds one.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::db::{PgConn, PgPool, PooledConn};
use crate::error::{AppError, AppResult};
use crate::read_replica::ReadReplica;

/// The handler's way to the database: the request's kept connection, or a new one.
pub struct Db {
    pool: web::Data<PgPool>,
    req: HttpRequest,
}

/// The connection the principal was resolved on, kept in the request's extensions.
struct KeptConn(PooledConn);

impl Db {
    /// The request's connection: the one the caller was resolved on, else one from the
    /// pool (503 when none frees up in time).
    pub async fn conn(&self) -> Result<PooledConn, AppError> {
        let kept = self.req.extensions_mut().remove::<KeptConn>();
        match kept {
            Some(KeptConn(conn)) => Ok(conn),
            None => Ok(self.pool.get().await?),
        }
    }

    /// The pool itself, for services that take connections as they go.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `read` on the read replica when the request carries no credentials (its answer
    /// is the same for every anonymous caller, who may see it up to
    /// `READ_REPLICA_MAX_LAG_MS` old), else on the primary: whoever has a token reads their
    /// own writes. See [`Db::read_replica`].
    pub async fn read_replica_if_anonymous<T>(
        &self,
        read: impl AsyncFn(&mut PgConn) -> AppResult<T>,
    ) -> AppResult<T> {
        if self.req.headers().contains_key(header::AUTHORIZATION) {
            let mut conn = self.conn().await?;
            return read(&mut conn).await;
        }
        self.read_replica(read).await
    }

    /// Runs `read` (which must only read) on the read replica while it is up and within
    /// `READ_REPLICA_MAX_LAG_MS`, else on the primary. A read that fails on the replica with
    /// a server error (the replica stopped, a query cancelled by replay) runs again on the
    /// primary, and the replica is skipped until its next check finds it up: a replica
    /// going away costs time, never an error.
    pub async fn read_replica<T>(
        &self,
        read: impl AsyncFn(&mut PgConn) -> AppResult<T>,
    ) -> AppResult<T> {
        let replica = self.req.app_data::<web::Data<ReadReplica>>();
        if let Some(replica) = replica
            && let Some(pool) = replica.usable()
        {
            // The caller's connection (kept when a principal was resolved) is not needed.
            self.req.extensions_mut().remove::<KeptConn>();
            let outcome = match pool.get().await {
                Ok(mut conn) => read(&mut conn).await,
                Err(e) => Err(AppError::from(e)),
            };
            match outcome {
                Err(e) if e.status().is_server_error() => {
                    tracing::warn!(
                        code = e.code(),
                        "a read failed on the read replica; reading from the primary"
                    );
                    replica.mark_down();
                }
                outcome => return outcome,
            }
        }
        let mut conn = self.conn().await?;
        read(&mut conn).await
    }
}

impl FromRequest for Db {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(pool_of(req).map(|pool| Db {
            pool,
            req: req.clone(),
        }))
    }
}

pub(crate) fn pool_of(req: &HttpRequest) -> Result<web::Data<PgPool>, AppError> {
    req.app_data::<web::Data<PgPool>>()
        .cloned()
        .ok_or_else(|| AppError::internal("PgPool missing from app data"))
}

/// Keeps `conn` for the handler when the request has no body still to read.
pub(crate) fn keep_for_handler(req: &HttpRequest, conn: PooledConn) {
    let headers = req.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if !has_body {
        req.extensions_mut().insert(KeptConn(conn));
    }
}
