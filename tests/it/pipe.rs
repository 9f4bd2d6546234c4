//! `streamtool pipe` with the real binary.
