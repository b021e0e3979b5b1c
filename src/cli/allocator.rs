//! Allocator tuning for training. Every step burn allocates and frees tensors of a few
//! megabytes; glibc serves each with a fresh mmap and returns it on free, and the page faults
//! that follow cost about a tenth of a step (system time of `rt4ksr bench --training --runs 6`:
//! 0.8 s without this tuning, 0.1 s with it). Training keeps freed memory in the heap for the next step;
//! the other commands keep glibc's defaults, which return memory early (lower peak RSS).

/// Keeps freed memory for reuse: no mmap below 32 MiB (glibc's largest threshold), no trimming,
/// and the heap grown in steps of 256 MiB.
pub fn keep_freed_memory_for_reuse() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc's allocation thresholds; it has no memory-safety
    // preconditions.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
