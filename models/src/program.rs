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

/// What of an answer the program sees ([`Call::call_seen`]).
type Seen = Box<dyn FnOnce(Outcome) -> Outcome>;

#[derive(Default)]
struct Slot {
    request: Option<Op>,
    /// The request's [`Seen`], until the driver takes it to answer with only what is seen.
    seen: Option<Seen>,
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

    /// [`Call::call_seen`] from a program: the driver answers with only what `seen` keeps
    /// ([`Program::drive`] passes it on), or, if the driver did not take it, it is applied here.
    pub async fn call_seen(
        &self,
        op: Op,
        seen: impl FnOnce(Outcome) -> Outcome + 'static,
    ) -> Result<Outcome, Error> {
        self.0.borrow_mut().seen = Some(Box::new(seen));
        let answer = self.call(op).await;
        match self.0.borrow_mut().seen.take() {
            Some(seen) => answer.map(seen),
            None => answer,
        }
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

    /// The one loop that drives a program: every call it makes is answered by `c`, in order. The
    /// model's `apply`, the explorer's actors, loom, shuttle and the real daemon all come through
    /// here.
    pub async fn drive(mut self, c: &impl Call) -> Result<T, Error> {
        let mut answer = None;
        loop {
            match self.resume(answer.take()) {
                Step::Done(r) => return r,
                Step::Call(op) => {
                    let seen = self.rpc.0.borrow_mut().seen.take();
                    answer = Some(match seen {
                        Some(seen) => c.call_seen(op, seen).await,
                        None => c.call(op).await,
                    });
                }
            }
        }
    }

    /// Drives the program to completion against a store, each call applied in turn; `trace` sees
    /// every call and its result.
    pub fn run(
        self,
        store: &mut Store,
        mut trace: impl FnMut(&Op, &Result<Outcome, Error>),
    ) -> Result<T, Error> {
        let apply = Apply(RefCell::new(|op: &Op| {
            let r = store.apply(op);
            trace(op, &r);
            r
        }));
        now_or_never(self.drive(&apply))
    }
}

/// A synchronous answerer as a [`Call`]: its futures are ready at once.
pub struct Apply<F>(pub RefCell<F>);

impl<F: FnMut(&Op) -> Result<Outcome, Error>> Call for Apply<F> {
    fn call(&self, op: Op) -> impl Future<Output = Result<Outcome, Error>> {
        std::future::ready((self.0.borrow_mut())(&op))
    }
}

/// Polls a future whose every await is ready (a program driven by an [`Apply`]) to its end.
pub fn now_or_never<T>(f: impl Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("a synchronous driver's call was not ready"),
    }
}

/// Whoever answers a client's calls: the program's own [`Rpc`] handle, a store, the explorer's
/// scheduling points, a real daemon. The typed shorthands programs use are written once, here.
///
/// Programs share state through `Rc` and run on one thread, so their futures are never `Send`:
/// the lint about auto-trait bounds on `async fn` in public traits does not apply.
#[allow(async_fn_in_trait)]
pub trait Call {
    /// Performs one client call (the `Op` carries the namespace and the context lease).
    fn call(&self, op: Op) -> impl Future<Output = Result<Outcome, Error>>;

    /// Performs one call of which the caller sees only `seen(outcome)`, and any error in full: a
    /// content.Info whose record is not looked at, an image list filtered to one name. A backend
    /// that keeps each actor's history of answers (the explorer's, for visited-state pruning)
    /// keeps only what the program saw: a program cannot tell apart two answers that `seen` maps
    /// alike, so neither can its future.
    async fn call_seen(
        &self,
        op: Op,
        seen: impl FnOnce(Outcome) -> Outcome + 'static,
    ) -> Result<Outcome, Error> {
        self.call(op).await.map(seen)
    }

    /// content.Info when only its success or its error matters, not the record.
    async fn info_status(&self, ctx: &crate::Ctx, digest: &str) -> Result<(), Error> {
        let kind = crate::OpKind::ContentInfo {
            digest: digest.to_string(),
        };
        let seen = |o| match o {
            Outcome::Info(_) => Outcome::Done,
            other => other,
        };
        match self.exec_seen(ctx, kind, seen).await? {
            Outcome::Done => Ok(()),
            other => Err(unexpected("content.info", &other)),
        }
    }

    /// content.Info when only one label is looked at: its value, if the record has it.
    async fn info_label(
        &self,
        ctx: &crate::Ctx,
        digest: &str,
        key: &str,
    ) -> Result<Option<String>, Error> {
        let kind = crate::OpKind::ContentInfo {
            digest: digest.to_string(),
        };
        let kept = key.to_string();
        let seen = move |o| match o {
            Outcome::Info(mut i) => {
                i.labels.retain(|k, _| *k == kept);
                Outcome::Info(i)
            }
            other => other,
        };
        match self.exec_seen(ctx, kind, seen).await? {
            Outcome::Info(i) => Ok(i.labels.get(key).cloned()),
            other => Err(unexpected("content.info", &other)),
        }
    }

    /// content.Info.
    async fn info(&self, ctx: &crate::Ctx, digest: &str) -> Result<crate::ContentInfo, Error> {
        let kind = crate::OpKind::ContentInfo {
            digest: digest.to_string(),
        };
        match self.exec(ctx, kind).await? {
            Outcome::Info(i) => Ok(i),
            other => Err(unexpected("content.info", &other)),
        }
    }

    /// The whole blob in one ReadAt.
    async fn read(&self, ctx: &crate::Ctx, digest: &str) -> Result<crate::Bytes, Error> {
        let kind = crate::OpKind::ContentRead {
            digest: digest.to_string(),
            offset: 0,
            len: None,
        };
        match self.exec(ctx, kind).await? {
            Outcome::Data(d) => Ok(d),
            other => Err(unexpected("content.read", &other)),
        }
    }

    /// `content.ReadBlob`: its `ReaderAt` makes an Info (for the size), then one ReadAt reads the
    /// blob.
    async fn read_blob(&self, ctx: &crate::Ctx, digest: &str) -> Result<crate::Bytes, Error> {
        self.info_status(ctx, digest).await?;
        self.read(ctx, digest).await
    }

    /// images.Get.
    async fn image_get(&self, ctx: &crate::Ctx, name: &str) -> Result<crate::Image, Error> {
        let kind = crate::OpKind::ImageGet {
            name: name.to_string(),
        };
        self.image_call(ctx, kind).await
    }

    /// image.create / image.update and friends: calls that answer with the image.
    async fn image_call(
        &self,
        ctx: &crate::Ctx,
        kind: crate::OpKind,
    ) -> Result<crate::Image, Error> {
        let name = kind.name();
        match self.exec(ctx, kind).await? {
            Outcome::Image(i) => Ok(i),
            other => Err(unexpected(name, &other)),
        }
    }

    /// Any call, in the context `ctx`.
    async fn exec(&self, ctx: &crate::Ctx, kind: crate::OpKind) -> Result<Outcome, Error> {
        self.call(Op {
            ctx: ctx.clone(),
            kind,
        })
        .await
    }

    /// Any call, in the context `ctx`, of which the caller sees only `seen` ([`Call::call_seen`]).
    async fn exec_seen(
        &self,
        ctx: &crate::Ctx,
        kind: crate::OpKind,
        seen: impl FnOnce(Outcome) -> Outcome + 'static,
    ) -> Result<Outcome, Error> {
        let op = Op {
            ctx: ctx.clone(),
            kind,
        };
        self.call_seen(op, seen).await
    }

    /// containerd's `client.WithLease`: the context's lease when it has one; otherwise a new lease
    /// `lease_id` (24 h expiry) for the duration of `body`, deleted without sync afterwards,
    /// whatever `body` returned.
    async fn with_lease<T, F, Fut>(
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
}

impl Call for Rpc {
    fn call(&self, op: Op) -> impl Future<Output = Result<Outcome, Error>> {
        Rpc::call(self, op)
    }

    fn call_seen(
        &self,
        op: Op,
        seen: impl FnOnce(Outcome) -> Outcome + 'static,
    ) -> impl Future<Output = Result<Outcome, Error>> {
        Rpc::call_seen(self, op, seen)
    }
}

fn unexpected(what: &str, got: &Outcome) -> Error {
    Error::raw(
        crate::ErrorKind::Unknown,
        format!("{what}: unexpected outcome {got:?}"),
    )
}
