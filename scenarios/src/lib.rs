//! pushrace-scenarios: client programs, invariants and scenario files.
