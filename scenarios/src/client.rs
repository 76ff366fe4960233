//! The client API every program is written against, once. A backend decides what a call is: one
//! scheduling point on the model (`sim::ModelClient`), a lock on a loom mutex, or a gRPC call to a
//! real daemon.

use pushrace_models::program::{Program, Step};
use pushrace_models::{Error, Op, Outcome};
use std::future::Future;

/// A containerd client as nerdctl uses it, plus the registry it pushes to.
pub trait Client {
    /// One containerd call (the `Op` carries the namespace and the context lease).
    fn call(&self, op: Op) -> impl Future<Output = Result<Outcome, Error>>;

    /// The registry's HEAD for a blob: does the registry already have it? One step.
    fn registry_has(&self, digest: &str) -> impl Future<Output = bool>;

    /// The upload that completes a blob push: the registry has the blob from now on. One step.
    fn registry_put(&self, digest: &str) -> impl Future<Output = ()>;

    /// One tick of the daemon's background GC scheduler: a GC runs now if one is due
    /// (gc/scheduler: any delete since the last GC, or 100 mutations). Returns whether one ran.
    fn gc_tick(&self) -> impl Future<Output = bool>;
}

/// Drives a model-crate program (pull, convert) over a client, one call at a time.
pub async fn drive<C: Client, T: 'static>(client: &C, mut program: Program<T>) -> Result<T, Error> {
    let mut answer = None;
    loop {
        match program.resume(answer.take()) {
            Step::Done(r) => return r,
            Step::Call(op) => answer = Some(client.call(op).await),
        }
    }
}
