//! Client programs, written once against [`Client`](crate::backend::Client): nerdctl's push in each
//! historical variant (`push`) and the neighbours that race it (`neighbours`).

pub mod neighbours;
pub mod push;

use pushrace_models::Error;

/// `fmt.Errorf("<context>: %w", err)`: the class stays the inner error's.
pub(crate) fn wrap(context: impl std::fmt::Display, e: Error) -> Error {
    Error::raw(e.kind, format!("{context}: {}", e.message))
}
