//! hessforge-kernels' integration tests, one binary: the compiled kernels
//! against the interpreter, the derivation, finite differences and closed
//! forms; the loop kernels against the scalar programs; the products
//! through a linearization; the run-time compiled kernels (loop IR and
//! straight-line programs) against their interpreters. `no_allocation.rs` is a binary of its own (it
//! installs a counting global allocator).

/// Whether `a` and `b` agree to `rel`, relative to the larger magnitude
/// (absolutely below 1). The one tolerance test of these tests.
pub fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

mod agreement;
mod closed_forms;
mod linearization;
mod loops;
mod run_time;
mod straight_line;
