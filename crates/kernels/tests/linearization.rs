//! Products ∇²L(θ)·v through a linearization (the primal values of one θ
//! recorded once, only the steps that read v run per product) against the
//! whole product: bit for bit, for every kernel in index form, over all
//! rows, a mini-batch and the parallel pass over many chunks; a
//! linearization of another point is not read; the objectives' cache
//! follows θ.

use hessforge_kernels::runtime::PARALLEL_CHUNK_ROWS;
use hessforge_kernels::{DynKernel, KernelObjective, LOOP_REGISTRY, LinearizationCache, Rows};
use hessforge_optim::{Batch, Objective};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn whole(k: &dyn DynKernel, theta: &[f64], rows: Rows<'_>, v: &[f64]) -> (f64, Vec<f64>) {
    let mut out = vec![0.0; k.n_params()];
    let loss = k.hess_vec(theta, k.default_constants(), rows, v, &mut out);
    (loss, out)
}

#[test]
fn linearized_products_are_the_products_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(29);
    for k in LOOP_REGISTRY {
        let (name, p, cols) = (k.name(), k.n_params(), k.n_data());
        let c = k.default_constants();
        // Two parallel chunks and a tail that is not a whole lane block.
        let n = 2 * PARALLEL_CHUNK_ROWS + 13;
        let data = random(&mut rng, n * cols);
        let batch: Vec<usize> = (0..77).map(|_| rng.gen_range(0..n)).collect();
        let theta = random(&mut rng, p);
        for rows in [
            Rows::All(&data),
            Rows::Selected(&data, &batch),
            Rows::Parallel(&data),
        ] {
            let linearization = k
                .linearize(&theta, c, rows)
                .unwrap_or_else(|| panic!("{name}: the products share nothing"));
            assert!(linearization.matches(name, &theta, c, rows));
            assert!(linearization.bytes() > 0, "{name}");
            for _ in 0..3 {
                let v = random(&mut rng, p);
                let mut out = vec![0.0; p];
                let loss = k.hess_vec_linearized(&linearization, &theta, c, rows, &v, &mut out);
                assert_eq!((loss, out), whole(*k, &theta, rows, &v), "{name}: {rows:?}");
            }
        }
    }
}

#[test]
fn a_linearization_of_another_point_is_not_read() {
    let k = hessforge_kernels::loop_kernel("softmax_regression").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(30);
    let (p, c) = (k.n_params(), k.default_constants());
    let data = random(&mut rng, 100 * k.n_data());
    let other_data = data.clone();
    let (theta, moved, v) = (
        random(&mut rng, p),
        random(&mut rng, p),
        random(&mut rng, p),
    );
    let rows = Rows::All(&data);
    let linearization = k.linearize(&theta, c, rows).unwrap();
    let mut other_constants = c.to_vec();
    other_constants[0] += 1.0;
    let first_rows = [0, 1, 2];
    for (theta, constants, rows) in [
        (&moved, c, rows),
        (&theta, other_constants.as_slice(), rows),
        (&theta, c, Rows::All(&other_data)),
        (&theta, c, Rows::Parallel(&data)),
        (&theta, c, Rows::Selected(&data, &first_rows)),
    ] {
        assert!(!linearization.matches(k.name(), theta, constants, rows));
        let mut out = vec![0.0; p];
        let loss = k.hess_vec_linearized(&linearization, theta, constants, rows, &v, &mut out);
        let mut want = vec![0.0; p];
        let want_loss = k.hess_vec(theta, constants, rows, &v, &mut want);
        assert_eq!((loss, out), (want_loss, want), "{rows:?}");
    }
}

#[test]
fn the_cache_follows_theta() {
    let k = hessforge_kernels::loop_kernel("mlp_tanh").unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let (p, c) = (k.n_params(), k.default_constants());
    let data = random(&mut rng, 300 * k.n_data());
    let cache = LinearizationCache::default();
    let objective = KernelObjective::new(k, c, &data);
    let (a, b, v) = (
        random(&mut rng, p),
        random(&mut rng, p),
        random(&mut rng, p),
    );
    for theta in [&a, &a, &b, &a, &b, &b] {
        let want = whole(k, theta, Rows::All(&data), &v);
        let mut out = vec![0.0; p];
        let loss = cache.hess_vec(k, theta, c, &data, false, &v, &mut out);
        assert_eq!((loss, out.clone()), want);
        let loss = objective.hess_vec(theta, Batch::Full, &v, &mut out);
        assert_eq!((loss, out), want);
    }
}
