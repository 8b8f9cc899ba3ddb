//! Tokio client for Thinger.io (work in progress).
