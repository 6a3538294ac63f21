//! Figures that tell the truth, on derivation files a class would write
//! (interpreted): the learning-rate sweep labels each run by how it ended,
//! says when the step chosen at θ₀ is unstable at the optimum, and cuts
//! diverging curves instead of stretching the axis; the contour window
//! shows every stationary point found around the paths, or the window asked
//! for.

use hessforge_driver::figures::{FigureKind, FigureOptions, SvgFigure, draw};
use hessforge_driver::{Problem, optimizer_names, prepare, run_all};
use hessforge_optim::{Settings, Stopping};

const POISSON: &str = r#"
name = "poisson_regression"
title = "Poisson regression"
description = "Counts with a log link; the rate at the truth is e² ≈ 7.4 times the rate at θ₀ = 0."
loss = "exp(z) - y * z"

[parameters]
w = {}
b = {}

[data]
x = {}
y = {}

[[define]]
name = "z"
expr = "w * x + b"

[synthetic]
samples = 500

[synthetic.truth]
w = 0.3
b = 2.0

[synthetic.draw]
x = "normal(0, 1)"
y = "poisson(exp(w * x + b))"
"#;

const HIMMELBLAU: &str = r#"
name = "himmelblau"
title = "Himmelblau's function"
description = "Four minima, four saddles, one maximum."
loss = "(x^2 + y - 11)^2 + (x + y^2 - 7)^2"

[parameters]
x = {}
y = {}

[init]
x = 0.5
y = 0.5
"#;

/// The default comparison on a derivation file, then the figure asked for.
fn figure(text: &str, problem: Problem, kind: FigureKind, options: &FigureOptions) -> SvgFigure {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("model.toml");
    std::fs::write(&file, text).unwrap();
    let prepared = prepare(file.to_str().unwrap(), &problem).unwrap();
    let names = optimizer_names(&prepared, vec![]);
    let (mut settings, stopping) = (Settings::default(), Stopping::default());
    let runs = run_all(
        &prepared,
        &names,
        &mut settings,
        &stopping,
        true,
        &mut |_| None,
    )
    .unwrap();
    let (mut drawn, notes) = draw(&prepared, &runs, &settings, &stopping, &[kind], options);
    assert!(notes.is_empty(), "{notes:?}");
    drawn.remove(0)
}

/// The SVG's text elements.
fn texts(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

#[test]
fn the_learning_rate_sweep_says_how_each_run_ended_and_why_a_step_is_unstable() {
    let poisson = Problem {
        synthetic: Some(500),
        ..Problem::default()
    };
    let sweep = figure(
        POISSON,
        poisson,
        FigureKind::LrSweep,
        &FigureOptions::default(),
    );
    let caption = &sweep.figure.caption;
    // L(θ₀) ≈ 1, λ_max(θ*) ≈ 10: the step 1/L(θ₀) is beyond 2/λ_max(θ*).
    assert!(caption.contains("unstable at the optimum"), "{caption}");
    assert!(caption.contains("α = 1/L"), "{caption}");
    let texts = texts(&sweep.svg);
    let legend: Vec<&String> = texts.iter().filter(|t| t.starts_with("α = ")).collect();
    assert_eq!(legend.len(), 4, "{texts:?}");
    assert!(legend.iter().all(|t| !t.contains("good")), "{legend:?}");
    assert!(legend[0].starts_with("α = 0.1/L — converged"), "{legend:?}");
    assert!(
        legend[1].starts_with("α = 1/L — diverged (cut at k = "),
        "{legend:?}"
    );
    // The diverging curves are cut at 10 × L(θ₀) = 10: the y axis's ticks
    // stay near the curves that did not diverge, not at 10⁸.
    let doc = roxmltree::Document::parse(&sweep.svg).unwrap();
    let ticks: Vec<f64> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text") && n.attribute("text-anchor") == Some("end"))
        .filter_map(|n| n.text()?.trim().parse::<f64>().ok())
        .collect();
    let top = ticks.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert!(top.is_finite() && top <= 20.0, "y ticks {ticks:?}");
}

#[test]
fn the_contour_window_shows_every_stationary_point_found_or_the_window_asked_for() {
    let count = |svg: &str, what: &str| texts(svg).iter().filter(|t| *t == what).count();
    let all = figure(
        HIMMELBLAU,
        Problem::default(),
        FigureKind::Contour,
        &FigureOptions::default(),
    );
    assert_eq!(count(&all.svg, "minimum"), 4, "Himmelblau has four minima");
    assert_eq!(count(&all.svg, "saddle"), 4);
    assert_eq!(count(&all.svg, "maximum"), 1);

    let options = FigureOptions {
        window: Some("2,4,1,3".parse().unwrap()),
    };
    let near = figure(
        HIMMELBLAU,
        Problem::default(),
        FigureKind::Contour,
        &options,
    );
    assert_eq!(
        count(&near.svg, "minimum"),
        1,
        "only (3, 2) is in [2, 4] × [1, 3]"
    );
    assert_eq!(count(&near.svg, "saddle") + count(&near.svg, "maximum"), 0);
}

#[test]
fn a_window_is_four_increasing_numbers() {
    use hessforge_driver::figures::Window;
    let w: Window = "-5, 5, -4.5, 4".parse().unwrap();
    assert_eq!((w.x, w.y), ((-5.0, 5.0), (-4.5, 4.0)));
    for bad in ["1,0,0,1", "0,1,2", "0,1,a,2", "0,inf,0,1"] {
        assert!(bad.parse::<Window>().is_err(), "{bad}");
    }
}
