//! How a verdict reads: text for a person, JSON for a machine.

use crate::explore::{RanOn, Verdict};
use pushrace_harness::Strategy;

impl Verdict {
    pub fn holds(&self) -> bool {
        self.violation.is_none() && self.other_failure.is_none()
    }

    /// Whether the verdict is a proof within its bounds: it holds, the whole space was explored
    /// (DFS, not stopped by a budget), and not only one shard of it.
    pub fn proved(&self) -> bool {
        self.holds() && self.report.proved() && self.options.shard.is_none()
    }

    /// Why the space was not exhausted ("stopped by the execution budget"), when it was not.
    pub fn not_exhausted_why(&self) -> Option<&'static str> {
        if self.report.exhausted {
            return None;
        }
        Some(match self.report.stopped {
            Some(pushrace_harness::Stop::Executions) => "stopped by the execution budget",
            Some(pushrace_harness::Stop::Time) => "stopped by the wall-time limit",
            Some(pushrace_harness::Stop::Failures) => "stopped at the failure",
            Some(pushrace_harness::Stop::Diverged) => "the replayed schedule did not fit",
            None => "stopped early",
        })
    }

    /// The verdict line of a run that found nothing: `HOLDS` only for a proof.
    pub fn no_violation_line(&self) -> String {
        let n = self.report.executions;
        match (self.proved(), self.not_exhausted_why(), &self.options.shard) {
            (true, _, _) => format!("HOLDS: no violation found ({})", self.scope()),
            (false, Some(why), _) => {
                format!("NOT PROVED: no violation in {n} executions; NOT exhausted ({why})")
            }
            (false, None, Some(sh)) => format!(
                "NOT PROVED: no violation in shard {}/{} ({n} executions); the other shards are not explored",
                sh.index, sh.count
            ),
            (false, None, None) => format!("NOT PROVED: no violation in {n} executions"),
        }
    }

    /// What the exploration covered, as the verdict line says it: `all interleavings` (DFS with
    /// no bound), `preemption bound 2`, or the sampler (`random sample`, `pct sample`).
    pub fn scope(&self) -> String {
        match self.options.strategy {
            Strategy::Dfs | Strategy::Replay => {
                crate::scenario::bound_text(self.options.preemptions)
            }
            Strategy::Random => "random sample".to_string(),
            Strategy::Pct => "pct sample".to_string(),
        }
    }

    fn verdict_word(&self) -> &'static str {
        match (self.holds(), self.proved()) {
            (true, true) => "holds",
            (true, false) => "not-exhausted",
            (false, _) => "violation",
        }
    }

    /// The command that replays the violation.
    pub fn replay_command(&self) -> Option<String> {
        let v = self.violation.as_ref()?;
        let scenario = self.source.argument();
        let backend = match self.ran_on {
            RanOn::Model => "",
            RanOn::Real => " --backend real",
        };
        Some(format!(
            "pushrace replay {scenario} --schedule {}{backend}",
            v.schedule.encode()
        ))
    }

    fn strategy_line(&self) -> String {
        let o = &self.options;
        let mut s = match o.strategy {
            Strategy::Dfs => format!(
                "dfs, {}, reduction {}",
                crate::scenario::bound_text(o.preemptions),
                if o.reduction { "on" } else { "off" }
            ),
            Strategy::Random => format!("random, seed {}", o.seed),
            Strategy::Pct => format!("pct, seed {}, depth {}", o.seed, o.depth),
            Strategy::Replay => "replay".to_string(),
        };
        if o.strategy == Strategy::Dfs && o.prune {
            s.push_str(", pruning on");
        }
        if let Some(sh) = &o.shard {
            s.push_str(&format!(", shard {}/{}", sh.index, sh.count));
        }
        s
    }

    /// With pruning: distinct states, cuts, a full table, and the peak memory beside them.
    fn pruning_line(&self) -> Option<String> {
        let r = &self.report;
        if !(self.options.prune && r.strategy == Strategy::Dfs) {
            return None;
        }
        let mut line = format!(
            "pruning: {} distinct states, {} executions cut at a state already explored",
            r.states, r.revisits
        );
        if let Some(m) = r.prune_full_message() {
            line.push_str(&format!("; {m}"));
        }
        if let Some(m) = r.peak_memory {
            line.push_str(&format!(
                "; peak memory {:.1} MiB",
                m as f64 / (1 << 20) as f64
            ));
        }
        Some(line + "\n")
    }

    pub fn to_text(&self) -> String {
        let r = &self.report;
        let on = match self.ran_on {
            RanOn::Model => "",
            RanOn::Real => ", on real processes",
        };
        let mut out = format!("scenario {} ({}){on}\n", self.scenario, self.source);
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
        match self.not_exhausted_why() {
            None if self.options.strategy == Strategy::Dfs
                && self.options.preemptions.is_none() =>
            {
                out.push_str("; every interleaving was explored\n")
            }
            None => out.push_str("; the space within these bounds is exhausted\n"),
            Some(why) => out.push_str(&format!("; the space was NOT exhausted ({why})\n")),
        }
        if let Some(line) = self.pruning_line() {
            out.push_str(&line);
        }
        if let Some(b) = &r.pct {
            out.push_str(&format!("PCT bound: each run finds a depth-{} bug with probability >= {:.3e} (n={}, k={})\n", b.d, b.probability, b.n, b.k));
        }
        if let Some(f) = &self.other_failure {
            out.push_str(&format!("FAILURE (not the scenario's invariant): {f}\n"));
        }
        match &self.violation {
            None if self.other_failure.is_none() => {
                out.push_str(&self.no_violation_line());
                out.push('\n');
            }
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
                "role": v.role.map(|r| r.name()),
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
            "backend": match self.ran_on {
                RanOn::Model => "model",
                RanOn::Real => "real",
            },
            "strategy": self.strategy_line(),
            "scope": self.scope(),
            "preemption_bound": self.options.preemptions,
            "executions": r.executions,
            "prune": self.options.prune,
            "distinct_states": r.states,
            "revisits": r.revisits,
            "prune_table_full_at": r.prune_full_at,
            "exhausted": r.exhausted,
            "proved": self.proved(),
            "stopped": r.stopped.map(|s| match s {
                pushrace_harness::Stop::Executions => "executions",
                pushrace_harness::Stop::Time => "time",
                pushrace_harness::Stop::Failures => "failures",
                pushrace_harness::Stop::Diverged => "diverged",
            }),
            "verdict": self.verdict_word(),
            "violation": violation,
            "other_failure": self.other_failure,
        })
    }
}
