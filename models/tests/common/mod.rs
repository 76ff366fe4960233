//! Shared helpers: run a `pushrace apply` ops file and look at the result.
#![allow(dead_code)]

use pushrace_models::opsfile;
use pushrace_models::state::State;
use pushrace_models::{Digest, Error, Store};

/// The outcome of running an ops file through the `pushrace apply` contract.
pub struct Run {
    pub store: Store,
    pub results: Vec<Result<(), Error>>,
}

/// Parses and runs `text` (panics on bad input: these files are written by the tests).
pub fn apply(text: &str) -> Run {
    let ops = opsfile::parse("test.toml", text).unwrap_or_else(|e| panic!("bad ops file: {e}"));
    let (store, results) = ops.run();
    store
        .check_consistency()
        .unwrap_or_else(|e| panic!("store inconsistent: {e}"));
    Run {
        store,
        results: results.into_iter().map(|r| r.result).collect(),
    }
}

/// The sha256 digest string of `data`.
pub fn dg(data: &str) -> String {
    Digest::of(data.as_bytes()).to_string()
}

impl Run {
    /// Asserts every op succeeded.
    pub fn all_ok(&self) -> &Self {
        for (i, r) in self.results.iter().enumerate() {
            if let Err(e) = r {
                panic!("op {i} failed: {}", e.message);
            }
        }
        self
    }

    pub fn ok(&self, i: usize) -> bool {
        self.results[i].is_ok()
    }

    /// The error text of op `i` (panics when it succeeded).
    pub fn err(&self, i: usize) -> String {
        match &self.results[i] {
            Ok(()) => panic!("op {i} succeeded, an error was expected"),
            Err(e) => e.message.clone(),
        }
    }

    pub fn state(&self) -> State {
        self.store.state()
    }

    /// Does namespace `ns` have a content record for the digest of `data`?
    pub fn has(&self, ns: &str, data: &str) -> bool {
        self.store
            .namespace(ns)
            .is_some_and(|n| n.content.contains_key(dg(data).as_str()))
    }

    /// Does the backend hold the bytes of `data`?
    pub fn blob(&self, data: &str) -> bool {
        self.store.blobs().contains_key(dg(data).as_str())
    }

    pub fn image(&self, ns: &str, name: &str) -> bool {
        self.store
            .namespace(ns)
            .is_some_and(|n| n.images.contains_key(name))
    }

    pub fn lease(&self, ns: &str, id: &str) -> bool {
        self.store
            .namespace(ns)
            .is_some_and(|n| n.leases.contains_key(id))
    }

    pub fn ingest(&self, ns: &str, r: &str) -> bool {
        self.store
            .namespace(ns)
            .is_some_and(|n| n.ingests.contains_key(r))
    }

    /// The lease's resources as `type:id` strings, sorted.
    pub fn resources(&self, ns: &str, id: &str) -> Vec<String> {
        let l = &self.store.namespace(ns).unwrap().leases[id];
        l.resources()
            .iter()
            .map(|r| format!("{}:{}", r.type_name(), r.id()))
            .collect()
    }
}
