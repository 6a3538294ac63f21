//! A warm kernel call allocates nothing on the heap (serial passes). The
//! kernels in index form build their plan once per process and their
//! scratch workspace once per thread, on first use; every later call reuses
//! them.

use hessforge_kernels::{
    At, Kernel, Rows, logistic_regression::LogisticRegression, mlp_tanh::MlpTanh,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn kernel_calls_do_not_allocate() {
    let data: Vec<f64> = (0..100 * 11)
        .map(|i| ((i % 7) as f64 - 3.0) * 0.3)
        .collect();
    let rows: Vec<usize> = (0..100).step_by(3).collect();
    let theta = vec![0.1; 11];
    let (mut g, mut h) = (vec![0.0; 17], vec![0.0; 17 * 17]);
    let mlp_data: Vec<f64> = (0..50 * 3).map(|i| (i as f64 * 0.1).sin()).collect();
    let mut calls = |sink: &mut f64| {
        *sink += LogisticRegression.loss(At::new(&theta, &[0.01], &data));
        *sink += LogisticRegression.loss_grad(At::new(&theta, &[0.01], &data), &mut g);
        *sink += LogisticRegression.loss_grad_hess(At::new(&theta, &[0.01], &data), &mut g, &mut h);
        *sink += LogisticRegression.loss_grad_hess(
            At::new(&theta, &[0.01], &data).rows(Rows::Selected(&rows)),
            &mut g,
            &mut h,
        );
        *sink += MlpTanh.loss_grad_hess(At::new(&[0.2; 17], &[], &mlp_data), &mut g, &mut h);
        *sink += MlpTanh.loss_grad_hess(At::new(&[0.2; 17], &[], &mlp_data[..3]), &mut g, &mut h);
    };
    let mut sink = 0.0;
    calls(&mut sink); // warm: the plans and this thread's workspace
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    calls(&mut sink);
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert!(sink.is_finite());
    assert_eq!(
        after - before,
        0,
        "kernel calls allocated {} times",
        after - before
    );
}
