//! What the tests share: running one optimizer on a prepared problem.

use hessforge_driver::{Prepared, fit, optimizer, start_curvature};
use hessforge_optim::{History, Outcome, Settings, Stopping};

/// Run `name` on `prepared` with its history (L = λ_max(∇²L(θ₀)) filled in
/// when the optimizer takes the step 1/L).
pub fn run(
    prepared: &Prepared,
    name: &str,
    settings: &Settings,
    stopping: &Stopping,
) -> (Outcome, History) {
    let mut settings = settings.clone();
    start_curvature(&mut settings, &[name], prepared);
    let mut method = optimizer(name, &settings).unwrap();
    let mut history = History::for_params(prepared.model.n_params());
    let outcome = fit(
        prepared,
        name,
        method.as_mut(),
        stopping,
        &mut [&mut history],
    );
    (outcome, history)
}
