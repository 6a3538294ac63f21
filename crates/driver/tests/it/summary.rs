//! The tables and the words under them tell the truth: a Hessian that is
//! singular at the optimum is called so (not explained by a condition
//! number), and for two parameters the table says where each run ended.

use crate::common::run;
use hessforge_driver::summary::{comparison_markdown, markdown_table, spectrum_text, table};
use hessforge_driver::{Prepared, Problem, optimum_spectrum, prepare};
use hessforge_optim::{Outcome, Settings, Stopping};

fn runs(prepared: &Prepared, names: &[&str]) -> Vec<Outcome> {
    let (settings, stopping) = (Settings::default(), Stopping::default());
    names
        .iter()
        .map(|n| run(prepared, n, &settings, &stopping).0)
        .collect()
}

#[test]
fn a_hessian_singular_at_the_optimum_is_called_singular_not_ill_conditioned() {
    // Softmax regression: adding one number to every class's scores changes
    // nothing, so the Hessian has an exact null direction.
    let prepared = prepare("softmax_regression", &Problem::default()).unwrap();
    let outcomes = runs(&prepared, &["newton", "gd"]);
    let spectrum = optimum_spectrum(&prepared, &outcomes).expect("a run converged");
    assert!(spectrum.is_singular(), "{spectrum:?}");
    let text = spectrum_text(&spectrum);
    assert!(
        text.contains("singular") && text.contains("flat valley"),
        "{text}"
    );
    assert!(!text.contains("(κ−1)/(κ+1)"), "{text}");
    let page = comparison_markdown(&prepared, &outcomes, &Stopping::default());
    assert!(
        page.contains("singular") && !page.contains("kappa"),
        "{page}"
    );

    // Logistic regression (L2 penalty): positive definite, so κ is the story.
    let prepared = prepare("logistic_regression", &Problem::default()).unwrap();
    let outcomes = runs(&prepared, &["newton"]);
    let spectrum = optimum_spectrum(&prepared, &outcomes).unwrap();
    assert!(!spectrum.is_singular(), "{spectrum:?}");
    let text = spectrum_text(&spectrum);
    assert!(
        text.contains("condition number κ") && text.contains("(κ−1)/(κ+1)"),
        "{text}"
    );
}

#[test]
fn for_two_parameters_the_tables_say_where_each_run_ended() {
    let prepared = prepare("rosenbrock", &Problem::default()).unwrap();
    let outcomes = runs(&prepared, &["newton", "gd"]);
    let text = table(&outcomes);
    assert!(text.lines().next().unwrap().ends_with("final θ"), "{text}");
    let newton = text.lines().find(|l| l.starts_with("newton ")).unwrap();
    assert!(newton.ends_with("(1.000000, 1.000000)"), "{text}");
    let gd = text.lines().find(|l| l.starts_with("gd ")).unwrap();
    assert!(
        !gd.ends_with("(1.000000, 1.000000)"),
        "GD stops short in the valley: {text}"
    );
    let page = markdown_table(&outcomes);
    assert!(
        page.contains("| final θ |") && page.contains("(1.000000, 1.000000) |"),
        "{page}"
    );

    let prepared = prepare("logistic_regression", &Problem::default()).unwrap();
    let text = table(&runs(&prepared, &["newton"]));
    assert!(!text.contains("final θ"), "{text}");
}
