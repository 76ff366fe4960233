//! pushrace-scenarios: nerdctl's push path and its racing neighbours as client programs over a
//! [`backend::Client`], the invariants they must keep, scenario files, and the glue that explores a
//! scenario with the harness.

pub mod backend;
pub mod explore;
pub mod layout;
pub mod library;
pub mod parallel;
pub mod programs;
pub mod report;
pub mod scenario;
pub mod triage;
