//! Products ∇²L(θ)·v through a linearization (the primal values of one θ
//! recorded once, only the steps that read v run per product) against the
//! whole product: bit for bit, for every kernel in index form, over all
//! rows, a mini-batch and the parallel pass over many chunks; a
//! linearization of another point is not read; the objectives' cache
//! follows θ.

use hessforge_kernels::runtime::PARALLEL_CHUNK_ROWS;
use hessforge_kernels::{At, Kernel, KernelObjective, LOOP_REGISTRY, LinearizationCache, Rows};
use hessforge_optim::Objective;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect()
}

fn whole(k: &dyn Kernel, at: At<'_>, v: &[f64]) -> (f64, Vec<f64>) {
    let mut out = vec![0.0; k.n_params()];
    let loss = k.hess_vec(at, v, &mut out);
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
        for rows in [Rows::All, Rows::Selected(&batch), Rows::Parallel] {
            let at = At::new(&theta, c, &data).rows(rows);
            let linearization = k
                .linearize(at)
                .unwrap_or_else(|| panic!("{name}: the products share nothing"));
            assert!(linearization.matches(name, at));
            assert!(linearization.bytes() > 0, "{name}");
            for _ in 0..3 {
                let v = random(&mut rng, p);
                let mut out = vec![0.0; p];
                let loss = k.hess_vec_linearized(&linearization, at, &v, &mut out);
                assert_eq!((loss, out), whole(*k, at, &v), "{name}: {rows:?}");
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
    let at = At::new(&theta, c, &data);
    let linearization = k.linearize(at).unwrap();
    let mut other_constants = c.to_vec();
    other_constants[0] += 1.0;
    let first_rows = [0, 1, 2];
    for other in [
        at.theta(&moved),
        At::new(&theta, &other_constants, &data),
        At::new(&theta, c, &other_data),
        at.rows(Rows::Parallel),
        at.rows(Rows::Selected(&first_rows)),
    ] {
        assert!(!linearization.matches(k.name(), other));
        let mut out = vec![0.0; p];
        let loss = k.hess_vec_linearized(&linearization, other, &v, &mut out);
        let mut want = vec![0.0; p];
        let want_loss = k.hess_vec(other, &v, &mut want);
        assert_eq!((loss, out), (want_loss, want), "{other:?}");
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
        let at = At::new(theta, c, &data);
        let want = whole(k, at, &v);
        let mut out = vec![0.0; p];
        let loss = cache.hess_vec(k, at, &v, &mut out);
        assert_eq!((loss, out.clone()), want);
        let loss = objective.hess_vec(theta, Rows::All, &v, &mut out);
        assert_eq!((loss, out), want);
    }
}
