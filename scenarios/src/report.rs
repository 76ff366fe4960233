//! How a verdict reads: text for a person, JSON for a machine.

use crate::explore::Verdict;
use pushrace_harness::Strategy;

impl Verdict {
    pub fn holds(&self) -> bool {
        self.violation.is_none() && self.other_failure.is_none()
    }

    /// The command that replays the violation.
    pub fn replay_command(&self) -> Option<String> {
        let v = self.violation.as_ref()?;
        let scenario = self.source.argument();
        Some(format!(
            "pushrace replay {scenario} --schedule {}",
            v.schedule.encode()
        ))
    }

    fn strategy_line(&self) -> String {
        let o = &self.options;
        let mut s = match o.strategy {
            Strategy::Dfs => format!(
                "dfs, preemption bound {}, reduction {}",
                o.preemptions,
                if o.reduction { "on" } else { "off" }
            ),
            Strategy::Random => format!("random, seed {}", o.seed),
            Strategy::Pct => format!("pct, seed {}, depth {}", o.seed, o.depth),
            Strategy::Replay => "replay".to_string(),
        };
        if let Some(sh) = &o.shard {
            s.push_str(&format!(", shard {}/{}", sh.index, sh.count));
        }
        s
    }

    pub fn to_text(&self) -> String {
        let r = &self.report;
        let mut out = format!("scenario {} ({})\n", self.scenario, self.source);
        let what = match r.strategy {
            // A persisted failure (`[check] schedule`, a saved regression) replayed first.
            Strategy::Replay => "replayed the saved schedule first and it still fails: 1 execution",
            _ => &format!("explored {} executions", r.executions),
        };
        out.push_str(&format!(
            "{what} ({}) in {:.2?}",
            self.strategy_line(),
            r.elapsed
        ));
        out.push_str(if r.exhausted {
            "; the space within these bounds is exhausted\n"
        } else {
            "; the space was NOT exhausted\n"
        });
        if let Some(b) = &r.pct {
            out.push_str(&format!("PCT bound: each run finds a depth-{} bug with probability >= {:.3e} (n={}, k={})\n", b.d, b.probability, b.n, b.k));
        }
        if let Some(f) = &self.other_failure {
            out.push_str(&format!("FAILURE (not the scenario's invariant): {f}\n"));
        }
        match &self.violation {
            None if self.other_failure.is_none() => out.push_str("HOLDS: no violation found\n"),
            None => {}
            Some(v) => {
                out.push_str(&format!("VIOLATION of {}\n", v.invariant));
                match &v.actor {
                    Some(a) => {
                        out.push_str(&format!("  {a} failed at step {}: {}\n", v.step, v.message))
                    }
                    None => out.push_str(&format!("  after step {}: {}\n", v.step, v.message)),
                }
                if let (Some(d), Some(w)) = (&v.digest, &v.what) {
                    out.push_str(&format!("  {d} is the {w}\n"));
                }
                out.push_str(&format!(
                    "  shrunk from {} to {} steps, {} to {} preemptions\n\ntrace:\n",
                    v.steps_before, v.steps_after, v.preemptions_before, v.preemptions_after
                ));
                for line in v.trace.to_text().lines() {
                    out.push_str(&format!("  {line}\n"));
                }
                out.push_str("\nmermaid:\n```mermaid\n");
                out.push_str(&v.trace.to_mermaid());
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str("```\n\nreplay:\n  ");
                out.push_str(&self.replay_command().unwrap_or_default());
                out.push('\n');
            }
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let r = &self.report;
        let violation = self.violation.as_ref().map(|v| {
            serde_json::json!({
                "invariant": v.invariant,
                "actor": v.actor,
                "step": v.step,
                "message": v.message,
                "digest": v.digest,
                "what": v.what,
                "role": v.role,
                "schedule": v.schedule.encode(),
                "steps_before": v.steps_before,
                "steps_after": v.steps_after,
                "preemptions_before": v.preemptions_before,
                "preemptions_after": v.preemptions_after,
                "trace": serde_json::from_str::<serde_json::Value>(&v.trace.to_json()).unwrap_or_default(),
                "mermaid": v.trace.to_mermaid(),
                "replay": self.replay_command(),
            })
        });
        serde_json::json!({
            "scenario": self.scenario,
            "source": self.source.to_string(),
            "strategy": self.strategy_line(),
            "executions": r.executions,
            "exhausted": r.exhausted,
            "verdict": if self.holds() { "holds" } else { "violation" },
            "violation": violation,
            "other_failure": self.other_failure,
        })
    }
}
