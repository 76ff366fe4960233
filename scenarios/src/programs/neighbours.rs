//! The operations that race a push upstream: another pull, `nerdctl tag`, `nerdctl rmi -f` of a
//! parallel test, `nerdctl image convert`, `ctr images rm --sync`, the background GC scheduler, the
//! passing of time, and raw operations.

use super::wrap;
use crate::backend::Client;
use pushrace_models::oci::ImageFixture;
use pushrace_models::opsfile::Action;
use pushrace_models::{converter, pull, Ctx, Error, ErrorKind, OpKind, Outcome};
use std::sync::Arc;

/// `nerdctl pull`: containerd's Pull under its own lease (see `pushrace_models::pull`).
pub async fn pull<C: Client>(
    c: &C,
    actor: &str,
    ctx: &Ctx,
    fixture: Arc<ImageFixture>,
    fetched: Option<Vec<String>>,
) -> Result<(), Error> {
    (pull::pull(fixture, fetched, ctx.clone(), format!("{actor}-pull")))
        .drive(c)
        .await
        .map(|_| ())
}

/// `nerdctl tag SRC DST`: get the source, create DST; when DST exists, delete it (synchronously, as
/// nerdctl does since #4062) and create again.
pub async fn tag<C: Client>(c: &C, ctx: &Ctx, src: &str, dst: &str) -> Result<(), Error> {
    let img = match c
        .exec(
            ctx,
            OpKind::ImageGet {
                name: src.to_string(),
            },
        )
        .await?
    {
        Outcome::Image(i) => i,
        o => {
            return Err(Error::raw(
                ErrorKind::Unknown,
                format!("image.get: unexpected {o:?}"),
            ))
        }
    };
    let create = OpKind::ImageCreate {
        name: dst.to_string(),
        media_type: img.target.media_type.clone(),
        target: img.target.digest.clone(),
        size: Some(img.target.size),
        labels: img.labels.clone(),
    };
    match c.exec(ctx, create.clone()).await {
        Err(e) if e.kind == ErrorKind::AlreadyExists => {
            c.exec(
                ctx,
                OpKind::ImageDelete {
                    name: dst.to_string(),
                    sync: true,
                },
            )
            .await?;
            c.exec(ctx, create).await.map(|_| ())
        }
        r => r.map(|_| ()),
    }
}

/// `nerdctl rmi [-f] NAME`: resolve the image, delete it synchronously (a full GC that sweeps every
/// namespace). With `force`, a missing image is not an error.
pub async fn rmi<C: Client>(c: &C, ctx: &Ctx, name: &str, force: bool) -> Result<(), Error> {
    let r = async {
        c.exec(
            ctx,
            OpKind::ImageGet {
                name: name.to_string(),
            },
        )
        .await?;
        c.exec(
            ctx,
            OpKind::ImageDelete {
                name: name.to_string(),
                sync: true,
            },
        )
        .await
    }
    .await;
    match r {
        Err(e) if force && e.kind == ErrorKind::NotFound && e.missing_digest().is_none() => Ok(()),
        r => r
            .map(|_| ())
            .map_err(|e| wrap(format_args!("failed to remove {name}"), e)),
    }
}

/// `nerdctl image convert --platform P SRC DST`.
pub async fn image_convert<C: Client>(
    c: &C,
    actor: &str,
    ctx: &Ctx,
    src: &str,
    dst: &str,
    platforms: &[String],
) -> Result<(), Error> {
    let program = converter::convert(
        src.to_string(),
        dst.to_string(),
        platforms.to_vec(),
        ctx.clone(),
        format!("{actor}-convert"),
    );
    (program).drive(c).await.map(|_| ())
}

/// `ctr images rm [--sync] NAME`.
pub async fn ctr_rm<C: Client>(c: &C, ctx: &Ctx, name: &str, sync: bool) -> Result<(), Error> {
    c.exec(
        ctx,
        OpKind::ImageDelete {
            name: name.to_string(),
            sync,
        },
    )
    .await
    .map(|_| ())
}

/// Raw operations from the `apply` vocabulary, in order; `image.pull`/`image.convert` run their
/// programs. Errors do not stop the list (a client sees the error and goes on); the first error is
/// returned at the end.
pub async fn ops<C: Client>(c: &C, actor: &str, actions: &[Action]) -> Result<(), Error> {
    let mut first = None;
    for (i, a) in actions.iter().enumerate() {
        let r = match a {
            Action::Op(op) => c.call(op.clone()).await.map(|_| ()),
            a => {
                let id = format!(
                    "{actor}-op{i}-{}",
                    a.program_kind().expect("not an operation")
                );
                (a.program(id).expect("not an operation"))
                    .drive(c)
                    .await
                    .map(|_| ())
            }
        };
        if let Err(e) = r {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}
