//! Translating a model schedule into a schedule of real actors, call by call (`pushrace replay
//! --backend real --from-model`), and listing every step that has no partner on the other side.
//!
//! The model's calls and a real client's are not the same: containerd's converter reads a blob
//! through a `ReaderAt` that makes its own `Info`, the model has registry steps that are HTTP, not
//! gRPC, and a command actor has an `exec …` step per process it starts. So a model schedule
//! cannot be replayed on real actors as it is. The translation:
//!
//! - each step is reduced to a *key*: its label (for a step completed after it ran, the
//!   completion: a real `Content.Write` is labelled by its ref and completed with the model's
//!   `content.write DIGEST …`), without read ranges (`@0+491`: the model reads a blob whole), with
//!   lease names replaced by per-actor ordinals in order of first use (the model names a lease by
//!   its purpose, `push-a-convert-1`; the interposer by ordinal, `push-a-lease1`), and with a
//!   name's registry `HOST:PORT/` (a host with a numeric port: the private registry's
//!   `127.0.0.1:43123/app:1` on the real side, the scenario's fixed name such as
//!   `localhost:5000/app:1` on the model's) written `{registry}/`, since the real registry's
//!   port differs from run to run;
//! - per actor, the model's keys and the real ones (from a run of the real actors one after
//!   another) are aligned by a longest common subsequence: a matched pair is the same call;
//! - the real schedule follows the model trace: at a model step with a partner, its actor runs
//!   its real steps up to and including the partner; a model step without one is listed and
//!   skipped; real steps without one run with their actor's next paired step and are listed
//!   (`exec` steps are not: they start processes, they are not calls);
//! - after the model trace, what is left runs in the canonical order (a lenient replay).

use pushrace_harness::{Schedule, Trace};

/// A step of one side: actor, label, and the key it is matched by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Side {
    pub actor: usize,
    pub label: String,
    pub key: String,
}

/// A translated schedule and what did not pair up.
#[derive(Clone, Debug)]
pub struct Translation {
    /// The real actors' schedule (replay it leniently).
    pub schedule: Schedule,
    /// Pairs found.
    pub paired: usize,
    /// Model steps with no real partner, in model order.
    pub model_only: Vec<Side>,
    /// Real calls with no model partner before their actor's last paired call, in the real run's
    /// order.
    pub real_only: Vec<Side>,
    /// Real calls after their actor's last paired call (the model's actor ended before them,
    /// often by failing; the replay runs them in the canonical order).
    pub beyond: usize,
    /// Each real actor's keys in the order the translation plans them.
    pub planned: Vec<Vec<String>>,
}

/// Most steps one actor may have on either side: the alignment is quadratic.
pub const MAX_ACTOR_STEPS: usize = 4096;

impl Translation {
    /// One line per unpaired step, then a summary.
    pub fn report(&self, actors: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.model_only {
            out.push(format!("model only: {}: {}", actors[s.actor], s.label));
        }
        for s in &self.real_only {
            out.push(format!("real only:  {}: {}", actors[s.actor], s.label));
        }
        out.push(format!(
            "{} calls paired, {} model steps and {} real calls without a partner, {} real calls after their actor's last paired one",
            self.paired,
            self.model_only.len(),
            self.real_only.len(),
            self.beyond
        ));
        out
    }
}

/// The steps of `trace` with their keys (lease ordinals counted per actor).
pub fn sides(trace: &Trace) -> Vec<Side> {
    let mut leases: Vec<Vec<String>> = vec![Vec::new(); trace.actors.len()];
    let step_key = |actor: usize, text: &str, leases: &mut Vec<Vec<String>>| {
        let verb = text.starts_with("lease.");
        let words = text.split(' ').filter(|w| !w.starts_with('@')).enumerate();
        let words = words.map(|(i, w)| lease_ordinal(w, verb && i == 1, &mut leases[actor]));
        let words = words.map(|w| registry_placeholder(&w));
        words.collect::<Vec<_>>().join(" ")
    };
    let key_of = |st: &pushrace_harness::TraceStep, leases: &mut Vec<Vec<String>>| {
        let text = st.completion.as_deref().unwrap_or(&st.label);
        step_key(st.actor, text, leases)
    };
    let steps = trace.steps.iter().map(|st| Side {
        actor: st.actor,
        label: st.label.clone(),
        key: key_of(st, &mut leases),
    });
    steps.collect()
}

/// `lease=NAME` and the lease verbs' `NAME` argument (`is_lease`) become `L<n>`, n counted per
/// actor.
fn lease_ordinal(word: &str, is_lease: bool, seen: &mut Vec<String>) -> String {
    let (prefix, name) = match word.strip_prefix("lease=") {
        Some(n) => ("lease=", n),
        None if is_lease => ("", word),
        None => return word.to_string(),
    };
    let n = match seen.iter().position(|s| s == name) {
        Some(i) => i + 1,
        None => {
            seen.push(name.to_string());
            seen.len()
        }
    };
    format!("{prefix}L{n}")
}

/// `HOST:PORT/REST` (HOST letters, digits, `.` and `-`; PORT digits) becomes `{registry}/REST`;
/// any other word is left as it is (a digest's `sha256:…` has no `/` after it, `example.com/app:1`
/// no port).
pub fn registry_placeholder(word: &str) -> String {
    let Some((host_port, rest)) = word.split_once('/') else {
        return word.to_string();
    };
    let Some((host, port)) = host_port.split_once(':') else {
        return word.to_string();
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    let port_ok = !port.is_empty() && port.chars().all(|c| c.is_ascii_digit());
    match host_ok && port_ok {
        true => format!("{{registry}}/{rest}"),
        false => word.to_string(),
    }
}

/// Whether a real step is a process start rather than a call.
fn is_exec(s: &Side) -> bool {
    s.key.starts_with("exec ")
}

/// For each of `a`'s items, the index of its partner in `b` (a longest common subsequence).
fn align(a: &[&Side], b: &[&Side]) -> Vec<Option<usize>> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: the LCS length of a[i..] and b[j..], flat.
    let mut lcs = vec![0u16; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[at(i, j)] = match a[i].key == b[j].key {
                true => lcs[at(i + 1, j + 1)] + 1,
                false => lcs[at(i + 1, j)].max(lcs[at(i, j + 1)]),
            };
        }
    }
    let (mut out, mut i, mut j) = (vec![None; n], 0, 0);
    while i < n && j < m {
        if a[i].key == b[j].key {
            out[i] = Some(j);
            (i, j) = (i + 1, j + 1);
        } else if lcs[at(i + 1, j)] >= lcs[at(i, j + 1)] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Translates the model trace `model` into a schedule of the real actors whose unforced run (one
/// actor after another) was `real`. Both traces must have the same actors.
pub fn translate(model: &Trace, real: &Trace) -> Result<Translation, String> {
    if model.actors != real.actors {
        return Err(format!(
            "the model's actors {:?} are not the real ones {:?}",
            model.actors, real.actors
        ));
    }
    let n = model.actors.len();
    let (m_sides, r_sides) = (sides(model), sides(real));
    let per_actor = |all: &[Side], a: usize| -> Vec<usize> {
        (0..all.len()).filter(|&i| all[i].actor == a).collect()
    };
    let mut t = Translation {
        schedule: Schedule::new(n, Vec::new()),
        paired: 0,
        model_only: Vec::new(),
        real_only: Vec::new(),
        beyond: 0,
        planned: vec![Vec::new(); n],
    };
    // partner[model step] = index into the actor's real steps.
    let mut partner = vec![None; m_sides.len()];
    let mut real_of: Vec<Vec<usize>> = Vec::new();
    for a in 0..n {
        let (mi, ri) = (per_actor(&m_sides, a), per_actor(&r_sides, a));
        if mi.len().max(ri.len()) > MAX_ACTOR_STEPS {
            let name = &model.actors[a];
            return Err(format!(
                "actor {name} has more than {MAX_ACTOR_STEPS} steps on one side"
            ));
        }
        let calls: Vec<&Side> = ri.iter().map(|&i| &r_sides[i]).collect();
        let steps: Vec<&Side> = mi.iter().map(|&i| &m_sides[i]).collect();
        for (k, p) in align(&steps, &calls).into_iter().enumerate() {
            partner[mi[k]] = p;
        }
        real_of.push(ri);
    }
    let mut next = vec![0usize; n];
    let run_to = |t: &mut Translation, a: usize, upto: usize, next: &mut Vec<usize>| {
        while next[a] <= upto {
            let s = &r_sides[real_of[a][next[a]]];
            if next[a] < upto && !is_exec(s) {
                t.real_only.push(s.clone());
            }
            t.schedule.steps.push(a);
            t.planned[a].push(s.key.clone());
            next[a] += 1;
        }
    };
    for (i, s) in m_sides.iter().enumerate() {
        match partner[i] {
            Some(j) => {
                t.paired += 1;
                run_to(&mut t, s.actor, j, &mut next);
            }
            None => t.model_only.push(s.clone()),
        }
    }
    // The rest of each actor (the lenient replay's canonical continuation runs them).
    for a in 0..n {
        for &i in &real_of[a][next[a]..] {
            let s = &r_sides[i];
            t.beyond += usize::from(!is_exec(s));
            t.planned[a].push(s.key.clone());
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::registry_placeholder;

    #[test]
    fn a_registry_host_and_port_become_the_placeholder() {
        for (word, want) in [
            ("127.0.0.1:43123/app:1", "{registry}/app:1"),
            ("localhost:5000/app:1", "{registry}/app:1"),
            (
                "registry-1.test:5000/team/app@sha256:ab",
                "{registry}/team/app@sha256:ab",
            ),
            // No port, no path, or not a host: unchanged.
            ("example.com/app:1", "example.com/app:1"),
            (
                "example.com/app:1-tmp-reduced-platform",
                "example.com/app:1-tmp-reduced-platform",
            ),
            ("index-sha256:6fcfeb160eec", "index-sha256:6fcfeb160eec"),
            ("lease=L1", "lease=L1"),
            (
                "converter-write-json-sha256:c3b24ce64879/x",
                "converter-write-json-sha256:c3b24ce64879/x",
            ),
            ("{registry}/app:1", "{registry}/app:1"),
        ] {
            assert_eq!(registry_placeholder(word), want, "{word}");
        }
    }
}
