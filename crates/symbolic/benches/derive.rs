//! Derivation time of every built-in model: derive loss, gradient and
//! Hessian (chain rule, back-substitution, simplification) on the worker.
//! `cargo bench -p hessforge-symbolic --bench derive`

use std::path::Path;

const MODELS: [&str; 8] = [
    "quadratic_bowl",
    "rosenbrock",
    "saddle",
    "simple_linear_regression",
    "linear_regression",
    "logistic_regression",
    "softmax_regression",
    "mlp_tanh",
];

fn main() {
    // Start Symbolica (and show its banner) before timing anything.
    let _ = hessforge_symbolic::derive(&load("saddle"));
    divan::main();
}

fn load(name: &str) -> hessforge_spec::Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../derivations")
        .join(format!("{name}.toml"));
    hessforge_spec::load_file(&path).expect("built-in derivation loads")
}

#[divan::bench(args = MODELS, sample_count = 20)]
fn derive_only(bencher: divan::Bencher, name: &str) {
    let model = load(name);
    bencher.bench(|| hessforge_symbolic::derive(divan::black_box(&model)).expect("derives"));
}

#[divan::bench(args = MODELS, sample_count = 20)]
fn derive_and_render_latex(bencher: divan::Bencher, name: &str) {
    let model = load(name);
    bencher.bench(|| {
        let d = hessforge_symbolic::derive(&model).expect("derives");
        hessforge_derivation::render::render(&d, hessforge_derivation::render::Format::Latex)
    });
}

/// The data-table least-squares problems of `tests/problems/` (Moré, Garbow
/// & Hillstrom 1981, data inline as exact decimals): 11 to 99 residuals,
/// polynomials of degree 8 in Watson's n = 9.
const PROBLEMS: [&str; 8] = [
    "meyer",
    "kowalik_osborne",
    "brown_dennis",
    "gulf",
    "watson",
    "watson9",
    "osborne1",
    "osborne2",
];

fn load_problem(name: &str) -> hessforge_spec::Model {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/problems")
        .join(format!("{name}.toml"));
    hessforge_spec::load_file(&path).expect("test problem loads")
}

/// What `hessforge run FILE.toml` does before the first iteration: derive
/// and lower to the interpreter's programs.
#[divan::bench(args = PROBLEMS, sample_count = 3, sample_size = 1)]
fn least_squares_derive_and_lower(bencher: divan::Bencher, name: &str) {
    let model = load_problem(name);
    bencher.bench(|| {
        let d = hessforge_symbolic::derive(&model).expect("derives");
        hessforge_symbolic::lower(&d).expect("lowers")
    });
}

/// Logistic regression with F features, as `derivations/logistic_regression.toml`.
fn logistic(features: usize) -> hessforge_spec::Model {
    let text = format!(
        "name = \"logistic\"\ntitle = \"l\"\ndescription = \"l\"\n\
         loss = \"-(y * log(p) + (1 - y) * log(1 - p))\"\n\
         regularizer = \"lambda / 2 * dot(w, w)\"\n\
         [parameters]\nw = {{ shape = [{features}] }}\nb = {{}}\n\
         [data]\nx = {{ shape = [{features}] }}\ny = {{}}\n[constants]\nlambda = 0.01\n\
         [[define]]\nname = \"z\"\nexpr = \"dot(w, x) + b\"\n\
         [[define]]\nname = \"p\"\nexpr = \"sigmoid(z)\"\n"
    );
    hessforge_spec::load_str("logistic.toml", &text).expect("loads")
}

/// The tanh network of `mlp_tanh` with H hidden units (2 inputs).
fn mlp(hidden: usize) -> hessforge_spec::Model {
    let text = format!(
        "name = \"mlp\"\ntitle = \"m\"\ndescription = \"m\"\nloss = \"(yhat - y)^2 / 2\"\n\
         [parameters]\nW = {{ shape = [{hidden}, 2] }}\nc = {{ shape = [{hidden}] }}\n\
         v = {{ shape = [{hidden}] }}\nd = {{}}\n\
         [data]\nx = {{ shape = [2] }}\ny = {{}}\n\
         [[define]]\nname = \"h\"\nexpr = \"tanh(W @ x + c)\"\n\
         [[define]]\nname = \"yhat\"\nexpr = \"dot(v, h) + d\"\n"
    );
    hessforge_spec::load_str("mlp.toml", &text).expect("loads")
}

/// The index-form derivation (gradient per tensor, Hessian blocks,
/// coefficients simplified): its time must not grow with F.
#[divan::bench(args = [10, 100, 1_000, 10_000], sample_count = 10)]
fn index_form_logistic(bencher: divan::Bencher, features: usize) {
    let model = logistic(features);
    bencher.bench(|| hessforge_symbolic::derive_index(divan::black_box(&model)).expect("derives"));
}

/// The same for the network: must not grow with H.
#[divan::bench(args = [4, 16, 64, 256], sample_count = 10)]
fn index_form_mlp(bencher: divan::Bencher, hidden: usize) {
    let model = mlp(hidden);
    bencher.bench(|| hessforge_symbolic::derive_index(divan::black_box(&model)).expect("derives"));
}

/// What `hessforge derive` does for a lecture note: the index form with
/// back-propagation (signals, the Hessian's split), then the LaTeX
/// document. Must not grow with F either.
#[divan::bench(args = [10, 100, 1_000, 10_000], sample_count = 10)]
fn document_logistic(bencher: divan::Bencher, features: usize) {
    let model = logistic(features);
    bencher.bench(|| {
        let d = hessforge_symbolic::derive_unexpanded(divan::black_box(model.clone()))
            .expect("derives");
        hessforge_derivation::render::render(&d, hessforge_derivation::render::Format::Latex)
    });
}

/// The same for the network: must not grow with H.
#[divan::bench(args = [4, 16, 64, 256], sample_count = 10)]
fn document_mlp(bencher: divan::Bencher, hidden: usize) {
    let model = mlp(hidden);
    bencher.bench(|| {
        let d = hessforge_symbolic::derive_unexpanded(divan::black_box(model.clone()))
            .expect("derives");
        hessforge_derivation::render::render(&d, hessforge_derivation::render::Format::Latex)
    });
}

/// Preparation for the interpreter and (later) the kernels: the index-form
/// derivation lowered into the loop IR. Must not grow with F.
#[divan::bench(args = [10, 100, 1_000, 10_000], sample_count = 10)]
fn loop_ir_logistic(bencher: divan::Bencher, features: usize) {
    let model = logistic(features);
    bencher.bench(|| hessforge_symbolic::lower_loop_ir(divan::black_box(&model)).expect("lowers"));
}

/// The same for the network: must not grow with H.
#[divan::bench(args = [4, 16, 64, 256], sample_count = 10)]
fn loop_ir_mlp(bencher: divan::Bencher, hidden: usize) {
    let model = mlp(hidden);
    bencher.bench(|| hessforge_symbolic::lower_loop_ir(divan::black_box(&model)).expect("lowers"));
}

/// One pass of the loop-IR interpreter, L + ∇L + ∇²L of logistic regression
/// over N = 10 000 rows (the rank-1 Hessian terms as one matrix product per
/// 128 rows).
#[divan::bench(args = [10, 100, 1_000], sample_count = 5, sample_size = 1)]
fn loop_ir_pass_logistic(bencher: divan::Bencher, features: usize) {
    use hessforge_ir::At;
    use hessforge_ir::Outputs;
    let model = logistic(features);
    let lowered = hessforge_symbolic::lower_loop_ir(&model).expect("lowers");
    let (p, cols, rows) = (features + 1, features + 1, 10_000);
    let data: Vec<f64> = (0..rows * cols)
        .map(|k| {
            if k % cols == features {
                (k / cols % 2) as f64
            } else {
                ((k * 7919 % 1000) as f64 - 500.0) / 500.0
            }
        })
        .collect();
    let theta: Vec<f64> = (0..p).map(|k| ((k % 5) as f64 - 2.0) / 10.0).collect();
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    bencher.bench_local(|| {
        let at = At {
            theta: &theta,
            constants: &[0.01],
            data: &data,
            rows: hessforge_ir::Rows::All,
        };
        lowered.evaluate(Outputs::LossGradHess, divan::black_box(at), &mut g, &mut h)
    });
}
