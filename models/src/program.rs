//! Client procedures that span many calls (pull, convert) written once, as sans-IO coroutines.
//!
//! A procedure is an `async` block that talks only through an `Rpc` handle: each `rpc.call(op)`
//! hands the operation out to whoever drives the program and suspends until that driver supplies
//! the answer. No executor, thread or clock is involved, so the same procedure runs inside
//! `Store::apply` (driven synchronously), as an actor under the explorer (one call per scheduling
//! point) and against a real daemon (one gRPC call per step).

use crate::errors::Error;
use crate::op::{Op, Outcome};
use crate::store::Store;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Slot {
    request: Option<Op>,
    answer: Option<Result<Outcome, Error>>,
}

/// The only way a procedure reaches the store.
#[derive(Clone, Default)]
pub struct Rpc(Rc<RefCell<Slot>>);

impl Rpc {
    /// Performs one client call. The driver answers it before the procedure continues.
    pub async fn call(&self, op: Op) -> Result<Outcome, Error> {
        self.0.borrow_mut().request = Some(op);
        Suspend(false).await;
        self.0
            .borrow_mut()
            .answer
            .take()
            .expect("a program resumed without an answer to its call")
    }
}

/// Returns `Pending` exactly once, handing control back to the driver.
struct Suspend(bool);

impl Future for Suspend {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

/// What a program wants next.
#[derive(Debug)]
pub enum Step<T> {
    Call(Op),
    Done(Result<T, Error>),
}

/// A suspended client procedure.
pub struct Program<T> {
    future: Pin<Box<dyn Future<Output = Result<T, Error>>>>,
    rpc: Rpc,
}

impl<T: 'static> Program<T> {
    pub fn new<F, Fut>(body: F) -> Program<T>
    where
        F: FnOnce(Rpc) -> Fut,
        Fut: Future<Output = Result<T, Error>> + 'static,
    {
        let rpc = Rpc::default();
        Program {
            future: Box::pin(body(rpc.clone())),
            rpc,
        }
    }

    /// Runs the program up to its next call (or its end). `answer` is the result of the call the
    /// previous `resume` returned; `None` on the first resume.
    pub fn resume(&mut self, answer: Option<Result<Outcome, Error>>) -> Step<T> {
        if let Some(a) = answer {
            self.rpc.0.borrow_mut().answer = Some(a);
        }
        match self
            .future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(r) => Step::Done(r),
            Poll::Pending => Step::Call(
                self.rpc
                    .0
                    .borrow_mut()
                    .request
                    .take()
                    .expect("a program suspended without making a call"),
            ),
        }
    }

    /// Drives the program to completion against a store, each call applied in turn; `trace` sees
    /// every call and its result.
    pub fn run(
        mut self,
        store: &mut Store,
        mut trace: impl FnMut(&Op, &Result<Outcome, Error>),
    ) -> Result<T, Error> {
        let mut answer = None;
        loop {
            match self.resume(answer.take()) {
                Step::Done(r) => return r,
                Step::Call(op) => {
                    let r = store.apply(&op);
                    trace(&op, &r);
                    answer = Some(r);
                }
            }
        }
    }
}

/// Typed shorthands for the calls procedures make. Each is exactly one `call`.
impl Rpc {
    pub async fn info(&self, ctx: &crate::Ctx, digest: &str) -> Result<crate::ContentInfo, Error> {
        match self
            .call(Op {
                ctx: ctx.clone(),
                kind: crate::OpKind::ContentInfo {
                    digest: digest.to_string(),
                },
            })
            .await?
        {
            Outcome::Info(i) => Ok(i),
            other => Err(unexpected("content.info", &other)),
        }
    }

    /// `content.ReadBlob`'s read: the whole blob in one ReadAt.
    pub async fn read(&self, ctx: &crate::Ctx, digest: &str) -> Result<crate::Bytes, Error> {
        let kind = crate::OpKind::ContentRead {
            digest: digest.to_string(),
            offset: 0,
            len: None,
        };
        match self
            .call(Op {
                ctx: ctx.clone(),
                kind,
            })
            .await?
        {
            Outcome::Data(d) => Ok(d),
            other => Err(unexpected("content.read", &other)),
        }
    }

    pub async fn image_get(&self, ctx: &crate::Ctx, name: &str) -> Result<crate::Image, Error> {
        match self
            .call(Op {
                ctx: ctx.clone(),
                kind: crate::OpKind::ImageGet {
                    name: name.to_string(),
                },
            })
            .await?
        {
            Outcome::Image(i) => Ok(i),
            other => Err(unexpected("image.get", &other)),
        }
    }

    /// image.create / image.update and friends: calls that answer with the image.
    pub async fn image_call(
        &self,
        ctx: &crate::Ctx,
        kind: crate::OpKind,
    ) -> Result<crate::Image, Error> {
        let name = kind.name();
        match self
            .call(Op {
                ctx: ctx.clone(),
                kind,
            })
            .await?
        {
            Outcome::Image(i) => Ok(i),
            other => Err(unexpected(name, &other)),
        }
    }

    /// containerd's `client.WithLease`: the context's lease when it has one; otherwise a new lease
    /// `lease_id` (24 h expiry) for the duration of `body`, deleted without sync afterwards,
    /// whatever `body` returned.
    pub async fn with_lease<T, F, Fut>(
        &self,
        ctx: &crate::Ctx,
        lease_id: &str,
        body: F,
    ) -> Result<T, Error>
    where
        F: FnOnce(crate::Ctx) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        if ctx.lease.is_some() {
            return body(ctx.clone()).await;
        }
        self.exec(ctx, crate::pull::default_lease(lease_id)).await?;
        let result = body(ctx.with_lease(lease_id)).await;
        let delete = crate::OpKind::LeaseDelete {
            id: lease_id.to_string(),
            sync: false,
        };
        let _ = self.exec(&ctx.with_lease(lease_id), delete).await;
        result
    }

    /// Any call whose outcome the procedure does not look at.
    pub async fn exec(&self, ctx: &crate::Ctx, kind: crate::OpKind) -> Result<(), Error> {
        self.call(Op {
            ctx: ctx.clone(),
            kind,
        })
        .await
        .map(|_| ())
    }
}

fn unexpected(what: &str, got: &Outcome) -> Error {
    Error::raw(
        crate::ErrorKind::Unknown,
        format!("{what}: unexpected outcome {got:?}"),
    )
}
