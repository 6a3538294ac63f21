//! Symbolica allows one thread per user; the crate funnels every call
//! through one worker. Calling it from many threads at once must be safe
//! and give the same results as calling it from one.
//!
//! "The same" is the same text and the same bits: the derivation rendered
//! as text, and the loss, gradient and Hessian of the lowered programs at a
//! seeded point. Eight threads interleave their derivations differently on
//! every run, so every model is derived and lowered after a different
//! history each time; Symbolica orders terms, and lays out its programs, by
//! its symbols' identities, which a job takes from the engine's pool in
//! the same order whatever ran before (`engine/pool.rs`).

use crate::common;
use hessforge_derivation::render::{Format, render};
use hessforge_ir::Outputs;
use hessforge_spec::Model;
use hessforge_symbolic::{derive, lower};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The model derived, rendered and lowered: its derivation as text, and
/// its loss, gradient and Hessian at a point drawn from `seed`.
fn values(m: &Model, seed: u64) -> (String, Vec<f64>) {
    let d = derive(m).unwrap();
    let text = render(&d, Format::Text);
    assert!(!text.is_empty());
    let programs = lower(&d).unwrap_or_else(|e| panic!("{}: {e}", m.name));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let p = m.n_params();
    let theta: Vec<f64> = (0..p).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let rows: Vec<f64> = (0..3 * m.data.len())
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let consts: Vec<f64> = m.constants.iter().map(|(_, v)| *v).collect();
    let mut out = vec![0.0; Outputs::LossGradHess.len(p)];
    programs.evaluate(
        Outputs::LossGradHess,
        hessforge_ir::At::new(&theta, &consts, &rows),
        &mut out,
    );
    (text, out)
}

#[test]
fn many_threads_at_once() {
    let models = common::builtins();
    let reference: Vec<(String, Vec<f64>)> = models
        .iter()
        .enumerate()
        .map(|(i, m)| values(m, i as u64))
        .collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let models = &models;
                s.spawn(move || {
                    (0..models.len())
                        .map(|i| {
                            let k = (i + t) % models.len();
                            (k, values(&models[k], k as u64))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (i, (text, got)) in h.join().unwrap() {
                let name = &models[i].name;
                assert_eq!(text, reference[i].0, "{name}: derived concurrently");
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(
                    bits(&got),
                    bits(&reference[i].1),
                    "{name}: values when derived concurrently"
                );
            }
        }
    });
}
