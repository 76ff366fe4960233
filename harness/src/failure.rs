//! What can go wrong in an execution, and how two failures are judged "the same".

use serde::{Deserialize, Serialize};
use std::fmt;

/// The error an actor returns. It deliberately does not implement `std::error::Error`, so that
/// any `std::error::Error` converts into it with `?` (the same trick as `anyhow`).
///
/// `kind` is what shrinking compares (two failures are the same if the same actor failed with
/// the same kind); it defaults to the message. Give a stable kind (e.g. `"NotFound"`) when the
/// message carries details that vary between schedules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorError {
    /// Stable classification used to compare failures.
    pub kind: String,
    /// Human-readable message.
    pub message: String,
}

impl ActorError {
    /// An error whose kind is its message.
    pub fn msg(message: impl fmt::Display) -> Self {
        let message = message.to_string();
        ActorError {
            kind: message.clone(),
            message,
        }
    }
    /// An error with an explicit kind.
    pub fn new(kind: impl Into<String>, message: impl fmt::Display) -> Self {
        ActorError {
            kind: kind.into(),
            message: message.to_string(),
        }
    }
}

impl<E: std::error::Error> From<E> for ActorError {
    fn from(e: E) -> Self {
        ActorError::msg(e)
    }
}

impl fmt::Display for ActorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Why an execution failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FailureKind {
    /// An actor's future completed with `Err`.
    ActorError {
        /// Actor index.
        actor: usize,
        /// Its error.
        error: ActorError,
    },
    /// An actor panicked (caught; the tool keeps going).
    Panic {
        /// Actor index.
        actor: usize,
        /// The panic message.
        message: String,
    },
    /// An invariant checked after a step returned `Err` (or panicked).
    Invariant {
        /// Invariant name.
        name: String,
        /// Its message.
        message: String,
    },
    /// A final check (after all actors finished) returned `Err`.
    Final {
        /// Check name.
        name: String,
        /// Its message.
        message: String,
    },
    /// Every unfinished actor is blocked.
    Deadlock {
        /// The blocked actors.
        blocked: Vec<usize>,
    },
    /// The execution reached the step budget: a possible livelock (or a budget too small).
    StepBudget {
        /// The budget.
        steps: usize,
    },
    /// The model broke the harness's rules (awaited a foreign future, built no actors, ...).
    Misuse {
        /// Actor index, if the misuse is an actor's.
        actor: Option<usize>,
        /// What went wrong.
        message: String,
    },
    /// The same schedule gave different executions: the model is not deterministic.
    Nondeterminism {
        /// What differed.
        message: String,
    },
}

impl FailureKind {
    /// The default signature two failures must share to be "the same": the failing actor and
    /// the error kind (or panic message, invariant name and message, ...). Used by shrinking
    /// unless the caller supplies its own (`Config::signature`).
    pub fn signature(&self, actors: &[String]) -> String {
        let name = |i: &usize| {
            actors
                .get(*i)
                .map(String::as_str)
                .unwrap_or("?")
                .to_string()
        };
        match self {
            FailureKind::ActorError { actor, error } => {
                format!("error {}: {}", name(actor), error.kind)
            }
            FailureKind::Panic { actor, message } => format!("panic {}: {}", name(actor), message),
            FailureKind::Invariant { name, message } => format!("invariant {name}: {message}"),
            FailureKind::Final { name, message } => format!("final {name}: {message}"),
            FailureKind::Deadlock { blocked } => {
                let names: Vec<String> = blocked.iter().map(name).collect();
                format!("deadlock: {}", names.join(","))
            }
            FailureKind::StepBudget { .. } => "step budget".to_string(),
            FailureKind::Misuse { message, .. } => format!("misuse: {message}"),
            FailureKind::Nondeterminism { .. } => "nondeterminism".to_string(),
        }
    }

    /// A one-line human description, with actor names.
    pub fn describe(&self, actors: &[String]) -> String {
        let name = |i: &usize| {
            actors
                .get(*i)
                .map(String::as_str)
                .unwrap_or("?")
                .to_string()
        };
        match self {
            FailureKind::ActorError { actor, error } => {
                format!("actor {} failed: {}", name(actor), error.message)
            }
            FailureKind::Panic { actor, message } => {
                format!("actor {} panicked: {}", name(actor), message)
            }
            FailureKind::Invariant { name, message } => {
                format!("invariant {name} violated: {message}")
            }
            FailureKind::Final { name, message } => format!("final check {name} failed: {message}"),
            FailureKind::Deadlock { blocked } => {
                let names: Vec<String> = blocked.iter().map(name).collect();
                format!(
                    "deadlock: every unfinished actor is blocked ({})",
                    names.join(", ")
                )
            }
            FailureKind::StepBudget { steps } => {
                format!("possible livelock: the execution reached its budget of {steps} steps")
            }
            FailureKind::Misuse {
                actor: Some(a),
                message,
            } => format!("actor {} misused the harness: {message}", name(a)),
            FailureKind::Misuse {
                actor: None,
                message,
            } => format!("model misused the harness: {message}"),
            FailureKind::Nondeterminism { message } => format!("NONDETERMINISM: {message}"),
        }
    }
}
