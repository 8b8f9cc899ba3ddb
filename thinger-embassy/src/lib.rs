//! Embassy adapter for Thinger.io (work in progress).
#![no_std]
