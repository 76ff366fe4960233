//! The built-in scenarios: every file under `scenarios/corpus/`, embedded at build time.

use crate::scenario::{self, Scenario, ScenarioError};

include!(concat!(env!("OUT_DIR"), "/corpus.rs"));

/// The built-in scenario called `name`.
pub fn builtin(name: &str) -> Option<Result<Scenario, ScenarioError>> {
    CORPUS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| scenario::parse(&format!("builtin:{n}"), text))
}

/// A built-in name or a path to a scenario file.
pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
    if let Some(s) = builtin(name_or_path) {
        return s;
    }
    let err = |message: String| ScenarioError {
        file: name_or_path.to_string(),
        line: None,
        key: None,
        message,
    };
    let path = std::path::Path::new(name_or_path);
    if std::fs::metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Err(err(format!(
            "no such file, and not a built-in scenario (built-ins: {})",
            names().join(", ")
        )));
    }
    let max = pushrace_models::limits::MAX_FILE_BYTES;
    let text = pushrace_models::limits::read_regular_text(path, max).map_err(err)?;
    scenario::parse(name_or_path, &text)
}

pub fn names() -> Vec<&'static str> {
    CORPUS.iter().map(|(n, _)| *n).collect()
}
