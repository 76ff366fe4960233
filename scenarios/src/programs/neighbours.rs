//! The operations that race a push upstream: another pull, `nerdctl tag`, `nerdctl rmi -f` of a
//! parallel test, `nerdctl image convert`, `ctr images rm --sync`, the background GC scheduler, the
//! passing of time, and raw operations.

use super::wrap;
use crate::backend::Client;
use pushrace_models::oci::ImageFixture;
use pushrace_models::opsfile::Action;
use pushrace_models::{converter, pull, Ctx, Error, ErrorKind, OpKind, Outcome};
use std::sync::Arc;

/// `nerdctl pull --unpack=false REMOTE`: containerd 1.6.20's client.Pull under nerdctl's own lease,
/// without unpack (see `pushrace_models::pull::nerdctl_pull`; clients/go/pull.go is the real one).
pub async fn pull<C: Client>(
    c: &C,
    actor: &str,
    ctx: &Ctx,
    fixture: Arc<ImageFixture>,
    fetched: Option<Vec<String>>,
    remote: &str,
) -> Result<(), Error> {
    let lease = format!("{actor}-pull");
    (pull::nerdctl_pull(fixture, fetched, ctx.clone(), lease, remote.to_string()))
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

/// `nerdctl rmi [-f] NAME` (cmd/nerdctl/rmi.go and pkg/idutil/imagewalker, as the Go client does
/// it, clients/go/rmi.go): one image List (filters: the name, or a target digest starting with the
/// argument); for each image found, its RootFS for the default platform (ReadBlob of the index, of
/// the platform's manifest and of its config, only for nerdctl's `Deleted:` lines: an error there
/// is a warning), then the delete, synchronous. Nothing found is `no such image: NAME`, which `-f`
/// forgives; a failed delete fails the command even with `-f` (nerdctl v2.0.5
/// `pkg/cmd/image/remove.go`: a walk error is fatal).
pub async fn rmi<C: Client>(c: &C, ctx: &Ctx, name: &str, force: bool) -> Result<(), Error> {
    let r = async {
        let owned = name.to_string();
        let wanted = move |(n, img): &(String, pushrace_models::Image)| {
            let name = owned.as_str();
            n == name
                || img.target.digest.starts_with(name)
                || img.target.digest.starts_with(&format!("sha256:{name}"))
        };
        // Only the images it names are seen: the rest of the list decides nothing here.
        let seen = move |o| match o {
            Outcome::Images(all) => Outcome::Images(all.into_iter().filter(wanted).collect()),
            other => other,
        };
        let found = match c.exec_seen(ctx, OpKind::ImageList, seen).await? {
            Outcome::Images(found) => found,
            _ => Vec::new(),
        };
        if found.is_empty() && force {
            return Ok(());
        }
        if found.is_empty() {
            return Err(Error::raw(
                ErrorKind::NotFound,
                format!("no such image: {name}"),
            ));
        }
        for (n, img) in found {
            let _ = root_fs(c, ctx, &img.target).await;
            let delete = OpKind::ImageDelete {
                name: n,
                sync: true,
            };
            c.exec(ctx, delete).await?;
        }
        Ok(())
    }
    .await;
    r.map_err(|e| wrap(format_args!("failed to remove {name}"), e))
}

/// images.Image.RootFS for the default platform (linux/amd64 here): ReadBlob of the index, of the
/// platform's manifest, then of its config.
async fn root_fs<C: Client>(
    c: &C,
    ctx: &Ctx,
    target: &pushrace_models::Descriptor,
) -> Result<(), Error> {
    let mut manifest = target.clone();
    if pushrace_models::oci::is_index(&target.media_type) {
        let index: serde_json::Value = json_of(&c.read_blob(ctx, &target.digest).await?)?;
        let entries = index
            .get("manifests")
            .and_then(|m| m.as_array())
            .cloned()
            .unwrap_or_default();
        let amd64 = entries.iter().find(|m| {
            let p = m.get("platform");
            let field = |k: &str| p.and_then(|p| p.get(k)).and_then(|v| v.as_str());
            field("os") == Some("linux") && field("architecture") == Some("amd64")
        });
        let Some(d) = amd64.and_then(|m| m.get("digest")).and_then(|d| d.as_str()) else {
            return Ok(());
        };
        manifest.digest = d.to_string();
    }
    let m: serde_json::Value = json_of(&c.read_blob(ctx, &manifest.digest).await?)?;
    if let Some(config) = m
        .get("config")
        .and_then(|x| x.get("digest"))
        .and_then(|d| d.as_str())
    {
        c.read_blob(ctx, config).await?;
    }
    Ok(())
}

fn json_of(b: &[u8]) -> Result<serde_json::Value, Error> {
    serde_json::from_slice(b).map_err(|e| Error::raw(ErrorKind::Unknown, e.to_string()))
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
