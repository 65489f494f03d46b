//! The concurrency primitives, each written once.
//!
//! - [`event`]: [`EventCount`], the announce-then-sleep protocol with a
//!   bounded sleep. The runtime's wait, the threads mover's idle workers
//!   and the emulated DSA engines all sleep on one.
//! - [`backoff`]: [`Backoff`], spin then yield with explicit budgets, for
//!   every short wait that is not worth a sleep (an idle worker before it
//!   sleeps, `op_delete` waiting for a worker to let go of a record, an
//!   emulated engine looking for work).
//!
//! The free list of operation records is [`crate::mover::Pool`], the only
//! one the movers have (the DSA engine's own is on its way out). The
//! runtime keeps deleted runtimes on a plain `Mutex<Vec<_>>` for reuse
//! (`runtime_new`/`runtime_delete` are not a hot path, and its point is
//! that the memory is never returned, not speed).

pub mod backoff;
pub mod event;

pub use backoff::Backoff;
pub use event::EventCount;
