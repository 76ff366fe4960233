//! Traces: what happened in one execution, as text, JSON and a Mermaid sequence diagram.

use crate::executor::TraceStep;
use crate::failure::FailureKind;
use crate::schedule::Schedule;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A recorded execution.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// Actor names, by index.
    pub actors: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<TraceStep>,
    /// How it failed, if it did.
    pub failure: Option<FailureKind>,
    /// The schedule, compact form.
    pub schedule: String,
    /// Preemptions in this execution.
    pub preemptions: usize,
    /// Trace hash: FNV-1a over (actor, label) of every step and the failure signature.
    /// Printed as 16 hex digits.
    pub hash: String,
}

impl Trace {
    pub(crate) fn new(
        actors: Vec<String>,
        steps: Vec<TraceStep>,
        failure: Option<FailureKind>,
        schedule: &Schedule,
        preemptions: usize,
        hash: u64,
    ) -> Self {
        Trace {
            actors,
            steps,
            failure,
            schedule: schedule.encode(),
            preemptions,
            hash: format!("{hash:016x}"),
        }
    }

    /// One line per step: `index  actor: label`, preemptions marked, then the verdict.
    pub fn to_text(&self) -> String {
        let width = self.actors.iter().map(String::len).max().unwrap_or(0);
        let mut s = String::new();
        for st in &self.steps {
            let name = self.actors.get(st.actor).map(String::as_str).unwrap_or("?");
            let _ = write!(s, "{:>4}  {:<width$}: {}", st.index, name, st.label);
            if st.preemption {
                s.push_str("   [preemption]");
            }
            if let Some(n) = &st.note {
                let _ = write!(s, "   [{n}]");
            }
            s.push('\n');
        }
        match &self.failure {
            Some(f) => {
                let _ = writeln!(s, "   !  {}", f.describe(&self.actors));
            }
            None => s.push_str("   =  ok\n"),
        }
        let _ = writeln!(
            s,
            "schedule {}  preemptions {}  trace {}",
            self.schedule, self.preemptions, self.hash
        );
        s
    }

    /// JSON (pretty).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
    }

    /// A Mermaid sequence diagram: one participant per actor plus `store`, one arrow per step,
    /// notes for completion and the failure. Paste into a GitHub issue inside a ```mermaid block.
    pub fn to_mermaid(&self) -> String {
        let mut s = String::from("sequenceDiagram\n");
        for (i, name) in self.actors.iter().enumerate() {
            let _ = writeln!(s, "    participant a{i} as {}", mermaid_escape(name));
        }
        s.push_str("    participant store\n");
        for st in &self.steps {
            let mark = if st.preemption { " (preempts)" } else { "" };
            let _ = writeln!(
                s,
                "    a{}->>store: {}{}",
                st.actor,
                mermaid_escape(&st.label),
                mark
            );
            if st.note.is_some() {
                let _ = writeln!(s, "    Note over a{}: finished", st.actor);
            }
        }
        if let Some(f) = &self.failure {
            let who = match f {
                FailureKind::ActorError { actor, .. } | FailureKind::Panic { actor, .. } => {
                    format!("a{actor},store")
                }
                _ => "store".to_string(),
            };
            let _ = writeln!(
                s,
                "    Note over {who}: FAILED: {}",
                mermaid_escape(&f.describe(&self.actors))
            );
        }
        s
    }
}

/// Mermaid treats `;` and `#` specially and a newline ends a message: entity-encode them.
fn mermaid_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            ';' => out.push_str("#59;"),
            '#' => out.push_str("#35;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn mermaid_escapes() {
        assert_eq!(mermaid_escape("a;b#c\nd"), "a#59;b#35;c d");
    }
}
