//! Readable differences between a model run and a daemon run of the same operations: per-entry
//! results (ok, or the error text) and the two JSON states, path by path. Used by `pushrace diff` and
//! the differential test. Pure and deterministic (everything iterated in sorted order).

use pushrace_models::opsfile::EntryResult;
use serde_json::Value;

use pushrace_models::state::State;

/// One line per entry whose result differs (`None` names: the entry's own name from the results).
pub fn diff_results(
    model: &[EntryResult],
    daemon: &[EntryResult],
    describe: impl Fn(usize) -> String,
) -> Vec<String> {
    let mut out = Vec::new();
    let show = |r: Option<&EntryResult>| match r.map(|r| &r.result) {
        None => "no result".to_string(),
        Some(Ok(())) => "ok".to_string(),
        Some(Err(e)) => format!("error `{}`", e.message),
    };
    for i in 0..model.len().max(daemon.len()) {
        let (m, d) = (model.get(i), daemon.get(i));
        let same = match (m, d) {
            (Some(m), Some(d)) => match (&m.result, &d.result) {
                (Ok(()), Ok(())) => true,
                (Err(a), Err(b)) => a.message == b.message,
                _ => false,
            },
            _ => false,
        };
        if !same {
            out.push(format!(
                "op {i} ({}): model {}, daemon {}",
                describe(i),
                show(m),
                show(d)
            ));
        }
    }
    out
}

/// One line per JSON path where the states differ.
pub fn diff_states(model: &State, daemon: &State) -> Vec<String> {
    let a = serde_json::to_value(model).expect("state serialises");
    let b = serde_json::to_value(daemon).expect("state serialises");
    let mut out = Vec::new();
    json_diff("state", Some(&a), Some(&b), &mut out);
    out
}

fn show(v: Option<&Value>) -> String {
    match v {
        None => "absent".to_string(),
        Some(v) => serde_json::to_string(v).expect("JSON"),
    }
}

fn json_diff(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                json_diff(&format!("{path}.{k}"), x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y)))
            if x.iter().chain(y).all(Value::is_string) =>
        {
            // Sorted string lists (blobs): say which elements each side lacks.
            let before = out.len();
            for v in x.iter().filter(|v| !y.contains(v)) {
                out.push(format!("{path}: {} only in the model", show(Some(v))));
            }
            for v in y.iter().filter(|v| !x.contains(v)) {
                out.push(format!("{path}: {} only in the daemon", show(Some(v))));
            }
            if out.len() == before {
                out.push(format!("{path}: model {}, daemon {}", show(a), show(b)));
            }
        }
        _ => out.push(format!("{path}: model {}, daemon {}", show(a), show(b))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pushrace_models::state::{ContentState, NamespaceState};
    use pushrace_models::{Error, ErrorKind};

    #[test]
    fn states_differ_path_by_path() {
        let mut a = State::default();
        let mut ns = NamespaceState::default();
        ns.content.insert(
            "sha256:aa".into(),
            ContentState {
                labels: Default::default(),
                size: 1,
            },
        );
        a.namespaces.insert("default".into(), ns.clone());
        a.blobs = vec!["sha256:aa".into(), "sha256:bb".into()];
        let mut b = a.clone();
        b.namespaces
            .get_mut("default")
            .unwrap()
            .content
            .get_mut("sha256:aa")
            .unwrap()
            .size = 2;
        b.blobs = vec!["sha256:aa".into(), "sha256:cc".into()];
        b.namespaces
            .insert("other".into(), NamespaceState::default());
        assert_eq!(
            diff_states(&a, &b),
            vec![
                "state.blobs: \"sha256:bb\" only in the model",
                "state.blobs: \"sha256:cc\" only in the daemon",
                "state.namespaces.default.content.sha256:aa.size: model 1, daemon 2",
                "state.namespaces.other: model absent, daemon {\"content\":{},\"images\":{},\"ingests\":{},\"leases\":{}}",
            ]
        );
        assert!(diff_states(&a, &a).is_empty());
    }

    #[test]
    fn results_differ_by_ok_or_error_text() {
        let r = |op, result| EntryResult {
            op,
            name: "x".into(),
            result,
        };
        let nf = Error::raw(ErrorKind::NotFound, "content digest sha256:aa: not found");
        let model = vec![r(0, Ok(())), r(1, Err(nf.clone())), r(2, Err(nf.clone()))];
        let daemon = vec![r(0, Ok(())), r(1, Ok(())), r(2, Err(nf))];
        assert_eq!(
            diff_results(&model, &daemon, |i| format!("entry {i}")),
            vec!["op 1 (entry 1): model error `content digest sha256:aa: not found`, daemon ok"]
        );
    }
}
