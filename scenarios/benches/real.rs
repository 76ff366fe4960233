//! Real executions (feature `containerd`): the interposer's added latency per call against a
//! direct connection, and real executions per second with their split (daemon and registry
//! start, fixture setup, processes and calls), for the ctr actors of same-ref-ctr in the serial
//! and the bad order; what `pushrace record` adds to a passing run. Figures only; nothing here is a pass/fail test. Run:
//! `cargo bench -p pushrace-scenarios --features containerd --bench real`.

use pushrace_daemon::interpose::{Interposer, LogGate};
use pushrace_daemon::{Daemon, DaemonClient};
use pushrace_harness::Schedule;
use pushrace_models::Ctx;
use pushrace_scenarios::backend::real::{replay_real, RealActor, RealOptions};
use pushrace_scenarios::library;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Calls timed per connection (after 100 warm-up calls).
const CALLS: usize = 2000;
/// Real executions per order.
const RUNS: u32 = 20;

fn percentiles(mut v: Vec<u128>) -> (u128, u128) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

/// Median and p99 µs of a unary call (content Info of a missing digest, answered NotFound by the
/// metadata store) over `path`.
fn time_calls(rt: &tokio::runtime::Runtime, path: &Path) -> (u128, u128) {
    rt.block_on(async {
        let c = DaemonClient::connect(path, None).await.expect("connects");
        let d = format!("sha256:{}", "0".repeat(64));
        let mut t = Vec::with_capacity(CALLS);
        for i in 0..CALLS + 100 {
            let t0 = Instant::now();
            let _ = c.info(&Ctx::new("default"), &d).await;
            if i >= 100 {
                t.push(t0.elapsed().as_micros());
            }
        }
        percentiles(t)
    })
}

fn latency() {
    let daemon = Daemon::start().unwrap_or_else(|e| panic!("cannot start containerd: {e}"));
    let sock = daemon.dir().join("bench.sock");
    let gate = Arc::new(LogGate::new(Box::new(std::io::sink())));
    let ip = Interposer::start(&[("a".into(), sock.clone())], &daemon.socket(), gate)
        .expect("the interposer starts");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let direct = time_calls(&rt, &daemon.socket());
    let through = time_calls(&rt, &sock);
    ip.stop();
    let _ = daemon.stop();
    println!("content.info over {CALLS} calls, µs: direct median {} p99 {}; through the interposer (pass-through) median {} p99 {}; added median {} µs",
        direct.0, direct.1, through.0, through.1, through.0.saturating_sub(direct.0));
}

fn executions(order: &str, schedule: &str) {
    let s = library::load("same-ref-ctr").expect("built-in");
    let actors = RealActor::of_scenario(&s).expect("commands");
    let o = RealOptions {
        lenient: true,
        ..RealOptions::default()
    };
    let schedule = Schedule::parse(schedule).expect("a schedule");
    let (mut split, mut steps, mut failed) = ([Duration::ZERO; 3], 0, 0);
    let t0 = Instant::now();
    for _ in 0..RUNS {
        let r = replay_real(&s, &actors, &schedule, &o).expect("runs");
        for (d, x) in split.iter_mut().zip([r.started, r.setup, r.run]) {
            *d += x / RUNS;
        }
        steps = r.execution.as_ref().map_or(0, |e| e.trace.steps.len());
        failed += u32::from(r.violation.is_some());
    }
    let each = t0.elapsed() / RUNS;
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    println!("same-ref-ctr {order} ({steps} steps, {failed}/{RUNS} violations): {:.2} real executions/s, {} each = daemon and registry start {} + setup {} + processes and calls {} (+ teardown {})",
        1.0 / each.as_secs_f64(), ms(each), ms(split[0]), ms(split[1]), ms(split[2]),
        ms(each.saturating_sub(split[0] + split[1] + split[2])));
}

/// Two Go-client pushes of same-ref's image one after the other (a run that passes), as a script.
const SERIAL_PUSHES: &str = r#"for a in a b; do PUSHRACE_ACTOR=$a "$PUSHRACE_GO_CLIENT" --address "$PUSHRACE_ADDRESS" --namespace default push --variant v0.18 --platform linux/amd64 --plain-http example.com/app:1 "$PUSHRACE_REGISTRY/app:1" || exit 1; done"#;

/// What `pushrace record` adds to a passing run: the script's own run time against a private
/// daemon directly, and under recording (every call through the recording gate).
fn record_overhead() {
    use pushrace_scenarios::backend::commands::{go_client_path, Place};
    use pushrace_scenarios::backend::record::{record, run_command, RecordOptions, DEFAULT_TAG};
    let s = library::load("same-ref-go").expect("built-in");
    let argv: Vec<String> = ["sh", "-c", SERIAL_PUSHES]
        .iter()
        .map(|x| x.to_string())
        .collect();
    let (mut direct, mut recorded) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..RUNS {
        let daemon = Daemon::start().expect("containerd starts");
        let registry = pushrace_daemon::Registry::start().expect("the registry starts");
        pushrace_scenarios::backend::session::set_up_fixture(&s, &daemon).expect("set up");
        let place = Place {
            address: daemon.socket().display().to_string(),
            registry: registry.addr().to_string(),
            reference: String::new(),
            go_client: go_client_path().expect("the Go client is built"),
        };
        let t0 = Instant::now();
        let (_, failed) = run_command(&argv, &place, Duration::from_secs(60)).expect("runs");
        assert!(!failed, "the serial pushes pass");
        direct += t0.elapsed() / RUNS;
        let _ = registry.stop();
        let _ = daemon.stop();
        let o = RecordOptions {
            tag: DEFAULT_TAG.into(),
            fixture: Some(s.clone()),
            timeout: Duration::from_secs(60),
            order: Vec::new(),
        };
        let r = record(&argv, &o).expect("records");
        assert!(!r.log.failed, "the serial pushes pass under record");
        recorded += r.ran / RUNS;
    }
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    println!("record overhead, two serial Go-client pushes (a passing run, mean of {RUNS}): direct {}, under record {} (+{})",
        ms(direct), ms(recorded), ms(recorded.saturating_sub(direct)));
}

fn main() {
    latency();
    executions("serial", "s1:2:a");
    executions("bad order", "s1:2:a22b");
    record_overhead();
}
