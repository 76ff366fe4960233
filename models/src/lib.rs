//! pushrace-models: containerd metadata semantics as plain data and functions.
