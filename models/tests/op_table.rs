//! `opsfile::op_table` is the inverse of the ops format's builders: every kind of call a real
//! client makes, written as an `[[op]]` table and read back, is the same operation (what lets
//! `pushrace record` hand a recorded client's calls to a model `ops` actor).

use pushrace_models::clock::Duration;
use pushrace_models::leases::Resource;
use pushrace_models::opsfile::{op_table, parse_with, Action, Digests};
use pushrace_models::{Ctx, Digest, Labels, Op, OpKind, WriteStyle};

fn ops() -> Vec<Op> {
    let data = br#"{"schemaVersion":2}"#;
    let d = Digest::of(data);
    let mut labels = Labels::new();
    labels.insert("containerd.io/gc.ref.content.m.0".into(), d.to_string());
    let leased = Ctx::new("default").with_lease("push-a-lease1");
    let other = Ctx::new("other");
    let op = |ctx: &Ctx, kind| Op {
        ctx: ctx.clone(),
        kind,
    };
    vec![
        op(
            &leased,
            OpKind::ContentWrite {
                r: "ref-1".into(),
                data: data.to_vec().into(),
                expected: None,
                labels: labels.clone(),
                style: WriteStyle::Commit,
            },
        ),
        op(
            &other,
            OpKind::IngestOpen {
                r: "ref-2".into(),
                data: Vec::new().into(),
                expected: Some(d.clone()),
            },
        ),
        op(
            &leased,
            OpKind::ContentRead {
                digest: d.to_string(),
                offset: 3,
                len: Some(7),
            },
        ),
        op(
            &leased,
            OpKind::ContentRead {
                digest: d.to_string(),
                offset: 0,
                len: None,
            },
        ),
        op(
            &other,
            OpKind::ContentInfo {
                digest: d.to_string(),
            },
        ),
        op(
            &leased,
            OpKind::ImageCreate {
                name: "example.com/app:1-tmp".into(),
                media_type: "application/vnd.oci.image.index.v1+json".into(),
                target: d.to_string(),
                size: Some(289),
                labels: Labels::new(),
            },
        ),
        op(
            &leased,
            OpKind::ImageUpdate {
                name: "example.com/app:1".into(),
                media_type: None,
                target: None,
                size: None,
                labels: Some(labels.clone()),
            },
        ),
        op(
            &leased,
            OpKind::ImageDelete {
                name: "example.com/app:1-tmp".into(),
                sync: true,
            },
        ),
        op(
            &leased,
            OpKind::ImageGet {
                name: "example.com/app:1".into(),
            },
        ),
        op(
            &leased,
            OpKind::LeaseCreate {
                id: "push-a-lease1".into(),
                expire: Some(Duration(3_600_000_000_000)),
                flat: false,
                labels,
            },
        ),
        op(
            &leased,
            OpKind::LeaseAdd {
                id: "push-a-lease1".into(),
                resource: Resource::Content(d.to_string()),
            },
        ),
        op(
            &leased,
            OpKind::LeaseRemove {
                id: "push-a-lease1".into(),
                resource: Resource::Image("x".into()),
            },
        ),
        op(
            &leased,
            OpKind::LeaseDelete {
                id: "push-a-lease1".into(),
                sync: false,
            },
        ),
        op(&Ctx::new("default"), OpKind::ImageList),
        op(&Ctx::new("default"), OpKind::ContentWalk),
    ]
}

#[test]
fn every_call_kind_reads_back_as_itself() {
    let ops = ops();
    let tables: Vec<_> = ops.iter().map(|o| op_table(o).unwrap()).collect();
    let mut doc = toml::Table::new();
    doc.insert(
        "op".into(),
        toml::Value::Array(tables.into_iter().map(toml::Value::Table).collect()),
    );
    let text = toml::to_string(&doc).unwrap();
    let file = parse_with("recorded.toml", &text, Digests::AsSent)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(file.entries.len(), ops.len());
    for (e, want) in file.entries.iter().zip(&ops) {
        match &e.action {
            Action::Op(got) => assert_eq!(got, want, "{text}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn binary_data_is_refused_naming_the_call() {
    let op = Op {
        ctx: Ctx::new("default"),
        kind: OpKind::ContentWrite {
            r: "layer".into(),
            data: vec![0xff, 0x00].into(),
            expected: None,
            labels: Labels::new(),
            style: WriteStyle::Open,
        },
    };
    let e = op_table(&op).unwrap_err();
    assert!(e.contains("2 bytes of binary data"), "{e}");
}
