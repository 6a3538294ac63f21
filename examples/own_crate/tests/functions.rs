//! The kernels this crate compiled for models that use erf and asinh
//! (functions added to hessforge as one table entry and one derivative rule
//! each): their gradients and Hessians agree with central differences of
//! their own losses, over all rows and on the lanes' tail.

hessforge_kernels::include_kernels!();

use asinh_regression::AsinhRegression;
use hessforge_kernels::{At, Kernel};
use probit_regression::ProbitRegression;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// 37 rows (not a multiple of the lane width) of x ~ U(−1, 1)³ and a
/// response from `response`.
fn data(seed: u64, response: impl Fn(&mut ChaCha8Rng) -> f64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rows = Vec::new();
    for _ in 0..37 {
        for _ in 0..3 {
            rows.push(rng.gen_range(-1.0..1.0));
        }
        rows.push(response(&mut rng));
    }
    rows
}

/// ∇L and ∇²L of `kernel` (at its default constants) against central
/// differences of L and ∇L at five seeded points.
fn check(kernel: &dyn Kernel, data: &[f64]) {
    let (p, constants) = (kernel.n_params(), kernel.default_constants());
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let at = At::new(&[], constants, data);
    for _ in 0..5 {
        let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.5..1.5)).collect();
        let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
        kernel.loss_grad_hess(at.theta(&theta), &mut g, &mut h);
        let step = 1e-6;
        for j in 0..p {
            let (mut up, mut down) = (theta.clone(), theta.clone());
            up[j] += step;
            down[j] -= step;
            let numeric =
                (kernel.loss(at.theta(&up)) - kernel.loss(at.theta(&down))) / (2.0 * step);
            assert!(
                (g[j] - numeric).abs() <= 1e-6 * (1.0 + numeric.abs()),
                "∂L/∂θ{j} = {} against {numeric} at {theta:?}",
                g[j]
            );
            let (mut g_up, mut g_down) = (vec![0.0; p], vec![0.0; p]);
            kernel.loss_grad(at.theta(&up), &mut g_up);
            kernel.loss_grad(at.theta(&down), &mut g_down);
            for k in 0..p {
                let numeric = (g_up[k] - g_down[k]) / (2.0 * step);
                assert!(
                    (h[j * p + k] - numeric).abs() <= 1e-5 * (1.0 + numeric.abs()),
                    "∂²L/∂θ{j}∂θ{k} = {} against {numeric} at {theta:?}",
                    h[j * p + k]
                );
            }
        }
    }
}

#[test]
fn the_probit_kernel_with_erf_has_the_derivatives_of_its_loss() {
    let data = data(11, |rng| f64::from(u8::from(rng.gen_bool(0.4))));
    check(&ProbitRegression, &data);
}

#[test]
fn the_asinh_kernel_has_the_derivatives_of_its_loss() {
    let data = data(12, |rng| rng.gen_range(-3.0..3.0));
    check(&AsinhRegression, &data);
}
