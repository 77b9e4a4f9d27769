//! glibc malloc settings that keep the process's memory close to what it really holds while a large message
//! (a 20 MB XML document with attachments) passes through.
//!
//! Why: glibc serves blocks of 128 KiB and more with their own `mmap`, but each time such a block is freed it
//! raises that threshold to the freed size (up to 32 MiB). After the first large package, the next package's
//! buffers — the body frames lapin copies the payload into, and the body it assembles on the consumer side by
//! doubling a `Vec` — come from the heap instead: freed frames stay resident until the whole heap top is free,
//! and each doubling copies the old block into a new one while both are resident. Measured on a 26.7 MB package
//! (HTTP → RabbitMQ → `file-out`), the consumer side then held about 42 MiB instead of one 26 MiB body.
//! Fixing the threshold at glibc's own default (which also switches the dynamic adjustment off) keeps every
//! large block in its own mapping: freeing it returns the memory at once, and growing it is a `mremap`, not a
//! copy. Blocks below 128 KiB — every small message — are served exactly as before.

/// glibc's default mmap threshold, made fixed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;

/// Applies the settings; call first thing in `main`, before any thread starts. No-op off glibc.
// The one unsafe call in the core: a libc allocator setting, no memory is touched.
#[allow(unsafe_code)]
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
