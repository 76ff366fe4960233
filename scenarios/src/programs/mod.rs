//! Client programs, written once against [`Client`](crate::client::Client): nerdctl's push in each
//! historical variant (`push`) and the neighbours that race it (`neighbours`).

pub mod neighbours;
pub mod push;

use crate::client::Client;
use pushrace_models::{Ctx, Error, ErrorKind, Op, OpKind, Outcome};

/// Shorthand for a call whose outcome is not needed.
pub(crate) async fn exec<C: Client>(c: &C, ctx: &Ctx, kind: OpKind) -> Result<Outcome, Error> {
    c.call(Op {
        ctx: ctx.clone(),
        kind,
    })
    .await
}

/// `fmt.Errorf("<context>: %w", err)`: the class stays the inner error's.
pub(crate) fn wrap(context: impl std::fmt::Display, e: Error) -> Error {
    Error::raw(e.kind, format!("{context}: {}", e.message))
}

pub(crate) fn is_not_found(r: &Result<Outcome, Error>) -> bool {
    matches!(r, Err(e) if e.kind == ErrorKind::NotFound)
}
