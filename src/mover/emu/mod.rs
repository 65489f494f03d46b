//! Emulated DSA work queue (see DSA.md section 8).
