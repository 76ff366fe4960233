//! The recording gate (`pushrace record`): every step-class call of any client is forwarded one
//! at a time, in arrival order, so the order it records is the order containerd ran them in.
//!
//! Rules:
//! - a step-class call (the [`super::hold`] rules: `Content.ListStatuses` and pass-through calls
//!   are forwarded at once and not recorded) waits until the call before it has ended, then is
//!   forwarded; while a process's `Content.Write` stream is open and its outcome not yet passed
//!   on (the hold gate's rule), that process's further calls are forwarded at once inside it (a layer conversion reads while
//!   its writer is open), as the hold gate does;
//! - each call is attributed to its process (`SO_PEERCRED`) and the process to an actor: the value
//!   of the environment variable `tag` in the process's environment (`/proc/PID/environ`), else
//!   its process group (`/proc/PID/stat`); the process's argv (`/proc/PID/cmdline`) is kept so a
//!   replay can run it again. All of it is read when the process's first call arrives, while the
//!   process is alive (it is waiting for the answer).
//!
//! - with an order (`pushrace record --schedule`), the first calls are forwarded in the order it
//!   names their actors (by tag) whatever the order they arrive in, then in arrival order; a run
//!   whose named actor never calls waits until the command's time limit.
//!
//! Exactness: the order of calls is exact; what a process does between its calls (its registry
//! traffic, its own threads) is not recorded. A replay that does not repeat the recorded calls is
//! a divergence, never a verdict.

use super::decode::{is_write, scheduled};
use super::{Admit, CallInfo, Class, Ended, Gate};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::oneshot;

/// A process that made calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    /// The value of the tag variable, if the process had it.
    pub tag: Option<String>,
    pub pgid: Option<u32>,
    pub argv: Vec<String>,
}

/// One recorded call, in the order containerd ran it.
#[derive(Clone, Debug)]
pub struct RecordedCall {
    pub call: CallInfo,
    pub ended: Ended,
}

/// What the gate recorded.
#[derive(Debug, Default)]
pub struct Recording {
    /// The processes, by pid, each as first seen.
    pub processes: BTreeMap<u32, Process>,
    /// Pids in the order of their first call.
    pub first_seen: Vec<u32>,
    /// Step-class calls in the order they ran.
    pub calls: Vec<RecordedCall>,
    /// Calls refused (not modelled) and connection errors, as text.
    pub problems: Vec<String>,
}

#[derive(Default)]
struct State {
    /// The actors whose calls go next, in order (`--schedule`): the first's next call is forwarded
    /// first, whatever arrives before it; once used up, calls go in arrival order.
    order: VecDeque<String>,
    /// The call forwarded and not yet ended, and whether it is a Write whose outcome is not yet
    /// passed on (calls of its process nest).
    current: Option<(u64, Option<u32>, bool)>,
    waiting: VecDeque<(CallInfo, oneshot::Sender<Admit>)>,
    recording: Recording,
}

/// Serialises and records step-class calls (see the module doc).
pub struct RecordGate {
    tag: String,
    state: Mutex<State>,
}

impl RecordGate {
    /// A gate that groups processes by the environment variable `tag`.
    pub fn new(tag: &str) -> RecordGate {
        RecordGate {
            tag: tag.to_string(),
            state: Mutex::default(),
        }
    }

    /// A gate that forwards the first calls in the order of `actors` (one name per call; a
    /// process's actor is its tag), then in arrival order.
    pub fn with_order(tag: &str, actors: Vec<String>) -> RecordGate {
        let gate = RecordGate::new(tag);
        gate.lock().order = actors.into();
        gate
    }

    /// What was recorded so far (the gate keeps recording).
    pub fn take(&self) -> Recording {
        std::mem::take(&mut self.lock().recording)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note_process(&self, st: &mut State, pid: Option<u32>) {
        let Some(pid) = pid else { return };
        if st.recording.processes.contains_key(&pid) {
            return;
        }
        let p = read_process(pid, &self.tag);
        st.recording.processes.insert(pid, p);
        st.recording.first_seen.push(pid);
    }
}

impl RecordGate {
    /// The actor of a call's process.
    fn actor_of(st: &State, call: &CallInfo) -> Option<String> {
        let p = st.recording.processes.get(&call.pid?)?;
        p.tag.clone()
    }

    /// When no call is forwarded: the next one, by the order while it lasts, else the first to
    /// have arrived.
    fn admit_next(&self, st: &mut State) {
        if st.current.is_some() {
            return;
        }
        let at = match st.order.front() {
            None => (!st.waiting.is_empty()).then_some(0),
            Some(next) => {
                let next = next.clone();
                let mine = |(c, _): &(CallInfo, _)| Self::actor_of(st, c).as_ref() == Some(&next);
                st.waiting.iter().position(mine)
            }
        };
        if let Some(i) = at {
            st.order.pop_front();
            let (call, tx) = st.waiting.remove(i).expect("found above");
            admit(st, &call, tx);
        }
    }
}

/// Forwards `call` now: it becomes the current call.
fn admit(st: &mut State, call: &CallInfo, tx: oneshot::Sender<Admit>) {
    let write = is_write(&call.method);
    st.current = Some((call.seq, call.pid, write));
    let _ = tx.send(Admit::Forward);
}

impl Gate for RecordGate {
    fn arrive(&self, call: &CallInfo) -> Option<oneshot::Receiver<Admit>> {
        let mut st = self.lock();
        if call.decoded.class == Class::Unsupported {
            let (tx, rx) = oneshot::channel();
            let why = format!("pushrace: {} is not modelled", call.method);
            st.recording
                .problems
                .push(format!("refused {}", call.method));
            let _ = tx.send(Admit::Refuse(why));
            return Some(rx);
        }
        if !scheduled(call.decoded.class, &call.method) {
            return None;
        }
        self.note_process(&mut st, call.pid);
        if let Some((_, pid, true)) = st.current {
            if pid == call.pid {
                return None;
            }
        }
        let (tx, rx) = oneshot::channel();
        st.waiting.push_back((call.clone(), tx));
        self.admit_next(&mut st);
        Some(rx)
    }

    fn end(&self, call: &CallInfo, ended: &Ended) {
        let mut st = self.lock();
        if st.current.map(|c| c.0) != Some(call.seq) {
            return;
        }
        let recorded = RecordedCall {
            call: call.clone(),
            ended: ended.clone(),
        };
        st.recording.calls.push(recorded);
        st.current = None;
        self.admit_next(&mut st);
    }

    fn settled(&self, call: &CallInfo) {
        let mut st = self.lock();
        if let Some((seq, _, write)) = st.current.as_mut() {
            if *seq == call.seq {
                *write = false;
            }
        }
    }

    fn connection_error(&self, actor: &str, pid: Option<u32>, error: &str) {
        let who = pid.map_or(String::new(), |p| format!(" (pid {p})"));
        self.lock()
            .recording
            .problems
            .push(format!("connection of {actor}{who}: {error}"));
    }
}

/// What `/proc` says of `pid`: its tag, process group and argv (empty where unreadable).
fn read_process(pid: u32, tag: &str) -> Process {
    let read = |f: &str| std::fs::read(format!("/proc/{pid}/{f}")).unwrap_or_default();
    // NUL-terminated strings; an empty argument stays (only the last terminator is dropped).
    let nul_split = |mut b: Vec<u8>| -> Vec<String> {
        if b.last() == Some(&0) {
            b.pop();
        }
        if b.is_empty() {
            return Vec::new();
        }
        let parts = b.split(|&c| c == 0);
        parts
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    };
    let prefix = format!("{tag}=");
    let tag = nul_split(read("environ"))
        .into_iter()
        .find_map(|kv| kv.strip_prefix(&prefix).map(str::to_string));
    let stat = String::from_utf8_lossy(&read("stat")).into_owned();
    // `pid (comm) state ppid pgrp ...`: comm may hold spaces and parentheses, so split after the
    // last `)`.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let pgid = after.split_whitespace().nth(2).and_then(|s| s.parse().ok());
    Process {
        pid,
        tag,
        pgid,
        argv: nul_split(read("cmdline")),
    }
}
