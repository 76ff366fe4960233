//! Explores one scenario file, for profiling the explorer without the CLI:
//! `cargo run --release -p pushrace-scenarios --example profile -- FILE [--no-reduction]`.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let s = pushrace_scenarios::library::load(&args[1]).unwrap_or_else(|e| panic!("{e}"));
    let mut o = pushrace_scenarios::explore::Options::for_scenario(&s);
    o.reduction = !args.iter().any(|a| a == "--no-reduction");
    let v = pushrace_scenarios::explore::explore(&s, &o);
    println!(
        "{} executions, holds={}, {:.0} executions/s",
        v.report.executions,
        v.holds(),
        v.report.rate()
    );
}
