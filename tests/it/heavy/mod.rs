//! Long or load-heavy runs: many concurrent clients and cancellations (`stress`), the
//! soak test (`soak`: a bounded run in the green suite, the full run ignored; docs/soak.md).

mod soak;
mod stress;
