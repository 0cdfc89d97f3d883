//! Giving memory back to the system. mimalloc returns freed pages to the OS only when the
//! thread that owns them allocates again; a burst of large messages (a 15 MB reply, bodies of
//! stalled uploads) left the gateway's resident memory at its peak for as long as it was idle
//! afterwards (docs/benchmarks.md, probe). Every serving thread runs [`collect`] every few
//! seconds (`downstream::serve::set_housekeeping`).
#![allow(unsafe_code)]

extern "C" {
    /// mimalloc's `void mi_collect(bool force)`, linked in by the `mimalloc` crate.
    fn mi_collect(force: bool);
}

/// Frees what the calling thread's heap no longer uses and returns it to the system.
pub fn collect() {
    // SAFETY: mi_collect has no preconditions; it runs on the calling thread's own heap and
    // mimalloc's global arenas, under mimalloc's own synchronization.
    unsafe { mi_collect(false) }
}
