//! pushrace-harness: deterministic executor and explorer for async actors.
