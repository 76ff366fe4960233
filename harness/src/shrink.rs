//! Shrinking: reduce a failing schedule to the fewest steps, then the fewest preemptions, such
//! that it still fails the same way (same signature: same actor and error kind by default).
//!
//! Every candidate is run with *lenient* replay: picks that cannot apply are skipped, and once
//! the candidate is used up the execution continues canonically (the current actor while it can
//! run, else the lowest enabled one: no preemption). The schedule actually executed is what gets
//! compared, so a candidate is only accepted if the real execution is smaller in
//! (steps, preemptions), which guarantees termination.
//!
//! Passes, repeated until none improves: delta-debugging removal of chunks (halving sizes down
//! to single steps), then for each context switch: cut the schedule there (continue the current
//! actor), swap it with the next step, or delay it by one step.

use crate::executor::{End, Executor, Model};
use crate::explorer::Config;
use crate::failure::FailureKind;
use crate::schedule::Schedule;
use crate::strategy::replay::{run_recorded, ReplayChooser, ReplayMode};
use crate::trace::Trace;

/// A shrunk failure.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest schedule found that fails the same way.
    pub schedule: Schedule,
    /// Its trace.
    pub trace: Trace,
    /// Its failure (same signature as the original).
    pub kind: FailureKind,
    /// Steps before shrinking.
    pub steps_before: usize,
    /// Steps after.
    pub steps_after: usize,
    /// Preemptions before.
    pub preemptions_before: usize,
    /// Preemptions after.
    pub preemptions_after: usize,
    /// Replays spent.
    pub attempts: usize,
}

struct Shrinker<'a, M: Model + ?Sized> {
    exec: &'a mut Executor,
    model: &'a M,
    cfg: &'a Config,
    target: String,
    attempts: usize,
}

impl<M: Model + ?Sized> Shrinker<'_, M> {
    fn signature(&self, kind: &FailureKind, names: &[String]) -> String {
        match &self.cfg.signature {
            Some(f) => f(kind, names),
            None => kind.signature(names),
        }
    }

    /// Runs a candidate; the executed schedule and its preemptions if it fails the same way.
    fn attempt(&mut self, candidate: &[usize]) -> Option<(Vec<usize>, usize)> {
        if self.attempts >= self.cfg.shrink_budget {
            return None;
        }
        self.attempts += 1;
        let mut chooser = ReplayChooser::new(candidate, ReplayMode::Lenient);
        let out = self.exec.run(self.model, &mut chooser, false);
        match &out.end {
            End::Failed(k) if self.signature(k, &out.names) == self.target => Some((
                self.exec.schedule.iter().map(|&a| a as usize).collect(),
                out.preemptions,
            )),
            _ => None,
        }
    }
}

fn better(a: &(Vec<usize>, usize), b: &(Vec<usize>, usize)) -> bool {
    (a.0.len(), a.1) < (b.0.len(), b.1)
}

pub(crate) fn shrink_with<M: Model + ?Sized>(
    exec: &mut Executor,
    model: &M,
    cfg: &Config,
    schedule: &Schedule,
    kind: &FailureKind,
    names: &[String],
) -> Option<Shrunk> {
    let mut s = Shrinker {
        exec,
        model,
        cfg,
        target: String::new(),
        attempts: 0,
    };
    s.target = s.signature(kind, names);
    let original = s.attempt(&schedule.steps)?;
    let mut best = original.clone();
    loop {
        let mut improved = false;
        let mut chunk = (best.0.len() / 2).max(1);
        loop {
            let mut start = 0;
            while start < best.0.len() {
                let end = (start + chunk).min(best.0.len());
                let cand: Vec<usize> = best.0[..start]
                    .iter()
                    .chain(&best.0[end..])
                    .copied()
                    .collect();
                match s.attempt(&cand) {
                    Some(r) if better(&r, &best) => {
                        best = r;
                        improved = true;
                    }
                    _ => start += chunk,
                }
            }
            if chunk == 1 {
                break;
            }
            chunk /= 2;
        }
        let mut i = 1;
        while i < best.0.len() {
            if best.0[i] != best.0[i - 1] {
                let v = &best.0;
                let mut cands = vec![v[..i].to_vec()];
                if i + 1 < v.len() && v[i + 1] != v[i] {
                    let mut c = v.clone();
                    c.swap(i, i + 1);
                    cands.push(c);
                }
                let mut c = v[..i].to_vec();
                c.push(v[i - 1]);
                c.extend_from_slice(&v[i..]);
                cands.push(c);
                for c in cands {
                    if let Some(r) = s.attempt(&c) {
                        if better(&r, &best) {
                            best = r;
                            improved = true;
                            break;
                        }
                    }
                }
            }
            i += 1;
        }
        if !improved || s.attempts >= cfg.shrink_budget {
            break;
        }
    }
    let attempts = s.attempts;
    let exec = s.exec;
    let replayed = run_recorded(exec, model, &best.0, ReplayMode::Strict, None).ok()?;
    let kind = replayed.failure.clone()?;
    Some(Shrunk {
        schedule: replayed.schedule.clone(),
        trace: replayed.trace,
        kind,
        steps_before: original.0.len(),
        steps_after: best.0.len(),
        preemptions_before: original.1,
        preemptions_after: best.1,
        attempts,
    })
}

/// Shrinks `schedule` (which must fail under strict replay) for `model`.
pub fn shrink<M: Model + ?Sized>(model: &M, cfg: &Config, schedule: &Schedule) -> Option<Shrunk> {
    let mut exec = Executor::new(cfg.max_steps);
    let first = run_recorded(
        &mut exec,
        model,
        &schedule.steps,
        ReplayMode::Strict,
        Some(schedule.actors),
    )
    .ok()?;
    let kind = first.failure?;
    shrink_with(&mut exec, model, cfg, schedule, &kind, &first.trace.actors)
}
