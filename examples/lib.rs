//! Shared helpers for the examples (work in progress).
