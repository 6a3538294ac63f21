//! A counting global allocator: the driver and the full-batch methods
//! allocate nothing per iteration (only at the start and the end). One test
//! in its own binary, so no other test allocates meanwhile. The exception
//! is the exact trust region (`newton-exact-tr`, and `newton-tr` up to 200
//! parameters), whose O(P³) eigendecomposition per step comes in new
//! matrices from nalgebra; `newton-tr` is measured here with Steihaug's CG.

mod common;

use common::line;
use hessforge_optim::{Settings, Stopping, Subproblem, build, minimize};

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static COUNT: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        COUNT.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(name: &str, iterations: u64) -> usize {
    let objective = line();
    let settings = Settings {
        lr: Some(0.01),
        subproblem: Subproblem::Steihaug,
        ..Settings::default()
    };
    let mut method = build(name, &settings).unwrap();
    let stop = Stopping {
        max_iters: iterations,
        grad_tol: 0.0,
        ..Stopping::default()
    };
    let before = COUNT.load(Ordering::SeqCst);
    minimize(&objective, method.as_mut(), &[0.0, 0.0], &stop, &mut []);
    COUNT.load(Ordering::SeqCst) - before
}

#[test]
fn full_batch_iterations_allocate_nothing() {
    for name in [
        "gd",
        "momentum",
        "nesterov",
        "adagrad",
        "rmsprop",
        "adam",
        "newton",
        "newton-damped",
        "newton-tr",
        "lbfgs",
        "bfgs",
    ] {
        let (short, long) = (allocations(name, 3), allocations(name, 30));
        assert_eq!(
            short, long,
            "{name}: {short} allocations for 3 iterations, {long} for 30"
        );
    }
}
