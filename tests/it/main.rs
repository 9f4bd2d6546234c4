//! The integration test binary: one binary (one link, one compile), four areas and the
//! shared helpers. docs/testing.md describes the layout.
//!
//! - `lib`: the library, in-process (`streamtool::streams`, `certs`, `server`, ...).
//! - `cli`: the real binary, as a user runs it.
//! - `interop`: the binary against real peers nobody here wrote (the end-of-stream matrix
//!   of issue 17).
//! - `heavy`: long or load-heavy runs (stress, the bounded soak; the full soak is ignored).
//! - `support`: one copy of each helper the areas share.
//!
//! A filter on an area's path runs that area alone: `cargo test --test it interop::` runs
//! the interop matrix (about two minutes on two cores), `cargo test --test it cli::` the
//! command-line tests.
//!
//! Tests that reproduce an AnyIO behaviour say so in a comment with its number in the
//! AnyIO behaviour specification the library was built against ("scenario 12", "D3"; see
//! docs/design.md §3). Every test that could hang runs under a timeout.

// The `lib` area is a module of this test crate, not the library's root (the lint's worry).
#![allow(special_module_name)]

mod support;

mod cli;
mod heavy;
mod interop;
mod lib;
