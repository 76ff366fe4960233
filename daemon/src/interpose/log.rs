//! Pass-through logging: every call forwarded at once and written as one JSON line when it ends.
//! Lines carry `seq`, the arrival order; a client that makes one call at a time ends them in that
//! order too, and a reader comparing call sequences sorts by `seq`.

use super::{Admit, CallInfo, Ended, Gate};
use serde::Serialize;
use std::io::Write;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// One log line.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub seq: u64,
    pub actor: String,
    pub pid: Option<u32>,
    pub method: String,
    /// `step`, `pass-through` or `unsupported`.
    pub class: String,
    /// The model's label (`content.info 6111ab9896b8`), or the interposer's own for calls the
    /// model has no `Op` for.
    pub label: String,
    /// Whether the model has an `Op` for the call.
    pub modelled: bool,
    pub namespace: String,
    pub lease: Option<String>,
    /// grpc-status; `None` when the call was reset.
    pub status: Option<i32>,
    pub message: String,
    pub reset: Option<String>,
    pub cancelled: Option<String>,
    /// Added latency is measured from these (µs from first request message to the answer's end).
    pub micros: u64,
}

impl LogLine {
    pub fn of(call: &CallInfo, ended: &Ended) -> LogLine {
        let modelled = call.decoded.op.is_some() || ended.write.is_some();
        LogLine {
            seq: call.seq,
            actor: call.actor.clone(),
            pid: call.pid,
            method: call.method.clone(),
            class: call.decoded.class.name().to_string(),
            label: ended.label(call),
            modelled,
            namespace: call.ctx.namespace.clone(),
            lease: call.ctx.lease.clone(),
            status: ended.status,
            message: ended.message.clone(),
            reset: ended.reset.clone(),
            cancelled: ended.cancelled.clone(),
            micros: ended.micros,
        }
    }
}

/// Forwards everything at once; writes one line per call to `out`.
pub struct LogGate {
    out: Mutex<Box<dyn Write + Send>>,
}

impl LogGate {
    pub fn new(out: Box<dyn Write + Send>) -> LogGate {
        LogGate {
            out: Mutex::new(out),
        }
    }

    fn write(&self, line: &serde_json::Value) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

impl Gate for LogGate {
    fn arrive(&self, _: &CallInfo) -> Option<oneshot::Receiver<Admit>> {
        None
    }

    fn end(&self, call: &CallInfo, ended: &Ended) {
        let line = LogLine::of(call, ended);
        self.write(&serde_json::to_value(line).unwrap_or_default());
    }

    fn connection_error(&self, actor: &str, pid: Option<u32>, error: &str) {
        let line = serde_json::json!({"actor": actor, "pid": pid, "connection_error": error});
        self.write(&line);
    }
}
