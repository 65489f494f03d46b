//! The library's one diagnostic channel: a line on stderr with one prefix,
//! `libminiasync: `, whichever part of the library speaks.

/// Writes `libminiasync: {msg}` and a newline to stderr (best effort:
/// never panics, even when stderr is closed).
pub(crate) fn warn(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "libminiasync: {msg}");
}
