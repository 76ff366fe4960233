//! pushrace-harness: a deterministic executor and explorer for async actors.
//!
//! It knows nothing about what the actors do. A *model* builds, for each execution, some shared
//! state and a set of named actors (async blocks). Every operation an actor performs on the
//! shared state is preceded by a scheduling point, `ctx.step(label, footprint).await`, which
//! names the operation and the keys it reads and writes. The executor runs one actor at a time,
//! from one scheduling point to the next, so an execution is fully determined by its
//! [`Schedule`] (which actor ran at each step). Strategies choose schedules:
//! [`Explorer::dfs`] (exhaustive under a preemption bound, with source-DPOR partial-order
//! reduction, and with visited-state pruning for models that register a
//! [`World::fingerprint`]), [`Explorer::random`], [`Explorer::pct`] and [`Explorer::replay`]. Failures (an
//! actor's `Err`, a panic, a violated invariant or final check, a deadlock, a step budget
//! reached) are replayed to a [`Trace`] (text, JSON, Mermaid), hash-checked for determinism and
//! shrunk.
//!
//! ```
//! use pushrace_harness::{Config, Explorer, Footprint, Key, World};
//! use std::cell::Cell;
//! use std::rc::Rc;
//!
//! const COUNTER: Key = Key(1);
//!
//! // Two actors each read the counter, then write it back incremented: a lost update.
//! let model = |w: &mut World| {
//!     let counter = Rc::new(Cell::new(0u32));
//!     for name in ["a", "b"] {
//!         let c = counter.clone();
//!         w.spawn(name, move |ctx| async move {
//!             ctx.step("read counter", Footprint::read(&[COUNTER])).await;
//!             let v = c.get();
//!             ctx.step(format_args!("write counter {}", v + 1), Footprint::write(&[COUNTER])).await;
//!             c.set(v + 1);
//!             Ok(())
//!         });
//!     }
//!     let c = counter.clone();
//!     w.finally("both increments land", move || {
//!         if c.get() == 2 { Ok(()) } else { Err(format!("counter is {}", c.get())) }
//!     });
//! };
//!
//! let report = Explorer::new(Config::default()).dfs(&model);
//! let failure = &report.failures[0];
//! let shrunk = failure.shrunk.as_ref().unwrap();
//! assert_eq!(shrunk.steps_after, 4);
//! println!("{}", shrunk.trace.to_text());
//!
//! // The schedule string replays to the same trace.
//! let again = Explorer::default().replay(&model, &shrunk.schedule).unwrap();
//! assert_eq!(again.trace.hash, shrunk.trace.hash);
//! ```
//!
//! Rules for models: building must be deterministic (no clocks, no `HashMap` iteration feeding
//! the schedule, no threads); actors must only touch shared state between scheduling points and
//! only await `ctx.step`/`ctx.step_when`; at most 64 actors.

#![warn(missing_docs)]

pub mod executor;
pub mod explorer;
pub mod failure;
pub mod footprint;
pub mod hash;
pub mod parallel;
mod progress;
pub mod rng;
pub mod schedule;
pub mod shrink;
pub mod strategy;
pub mod trace;

pub use executor::{Model, Sched, Status, Step, TraceStep, World, MAX_ACTORS};
pub use explorer::{Config, Explorer, Failure, PctBound, Report, Shard, SignatureFn, Stop};
pub use failure::{ActorError, FailureKind};
pub use footprint::{Footprint, Key};
pub use schedule::{ParseError, Schedule};
pub use shrink::Shrunk;
pub use strategy::replay::{Divergence, Execution};
pub use strategy::Strategy;
pub use trace::Trace;
