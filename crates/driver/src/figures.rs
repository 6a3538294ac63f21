//! The figures of a comparison (`compare --plots`, `report`, `generate`):
//! which apply to a problem, and the numbers behind each — the runs'
//! histories, the loss on a grid around the paths, the stationary points
//! found there, a learning-rate sweep of gradient descent, GD/SGD/mini-batch
//! paths, the schedules, and the Hessian's eigenvalues along the Newton
//! paths. hessforge-report draws them.

use crate::problem::Prepared;
use crate::run::{Run, best_converged, fit, hessian_spectrum, optimizer};
use hessforge_optim::{
    Family, History, Modification, Objective, Optimizer, Outcome, Rows, Settings, Status, Stopping,
};
use hessforge_report::{
    ContourChart, Figure, Grid, LineChart, Marker, MarkerKind, Reference, Scale, Series,
    contour_chart, line_chart, schedule_chart,
};
use nalgebra::{DMatrix, SymmetricEigen};

/// The figures hessforge draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FigureKind {
    /// Loss per iteration, every optimizer.
    Loss,
    /// ‖∇L‖∞ per iteration, every optimizer (log scale).
    GradNorm,
    /// Level sets of L with every optimizer's path (2 parameters).
    Contour,
    /// Gradient descent with α = 0.1/L, 1/L, 1.9/L, 2.5/L.
    LrSweep,
    /// GD vs SGD vs mini-batch paths (2-parameter data models).
    SgdPaths,
    /// Every learning-rate schedule over 200 updates.
    Schedules,
    /// λ_min and λ_max of the Hessian along each Newton-type path.
    Curvature,
    /// Conjugate-gradient iterations (Hessian–vector products) per step of
    /// each Hessian-free Newton run.
    CgIterations,
}

impl FigureKind {
    /// All of them, in the report's order.
    pub const ALL: [FigureKind; 8] = [
        FigureKind::Loss,
        FigureKind::GradNorm,
        FigureKind::Contour,
        FigureKind::Curvature,
        FigureKind::CgIterations,
        FigureKind::LrSweep,
        FigureKind::SgdPaths,
        FigureKind::Schedules,
    ];

    /// The file stem (`grad_norm` → `grad_norm.svg`).
    pub fn stem(self) -> &'static str {
        match self {
            FigureKind::Loss => "loss",
            FigureKind::GradNorm => "grad_norm",
            FigureKind::Contour => "contour",
            FigureKind::LrSweep => "lr_sweep",
            FigureKind::SgdPaths => "sgd_paths",
            FigureKind::Schedules => "schedules",
            FigureKind::Curvature => "curvature",
            FigureKind::CgIterations => "cg_iterations",
        }
    }
}

/// The region of the plane a contour figure shows: x ∈ [x0, x1], y ∈ [y0, y1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// [x0, x1].
    pub x: (f64, f64),
    /// [y0, y1].
    pub y: (f64, f64),
}

impl std::str::FromStr for Window {
    type Err = String;
    /// `x0,x1,y0,y1`, finite, x0 < x1 and y0 < y1.
    fn from_str(text: &str) -> Result<Window, String> {
        let values: Vec<f64> = text
            .split(',')
            .map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("`{text}` is not four numbers"))?;
        match values[..] {
            [x0, x1, y0, y1] if x0 < x1 && y0 < y1 => Ok(Window {
                x: (x0, x1),
                y: (y0, y1),
            }),
            [_, _, _, _] => Err(format!("`{text}` is empty: x0 < x1 and y0 < y1 are needed")),
            _ => Err(format!("`{text}` has {} numbers, not four", values.len())),
        }
    }
}

/// How the figures are drawn, beyond the runs.
#[derive(Debug, Clone, Default)]
pub struct FigureOptions {
    /// The contour figures' window (None: every path and every stationary
    /// point found around them).
    pub window: Option<Window>,
}

/// A figure drawn: what the page says about it (file, title, caption) and
/// the SVG.
pub struct SvgFigure {
    /// File, title, caption.
    pub figure: Figure,
    /// The SVG document.
    pub svg: String,
}

/// Draw the figures asked for; a figure that does not apply to this
/// problem becomes a note saying why (the others are still drawn).
pub fn draw(
    prepared: &Prepared,
    runs: &[Run],
    settings: &Settings,
    stopping: &Stopping,
    kinds: &[FigureKind],
    options: &FigureOptions,
) -> (Vec<SvgFigure>, Vec<String>) {
    let mut drawn = Vec::new();
    let mut notes = Vec::new();
    for &kind in kinds {
        match draw_one(kind, prepared, runs, settings, stopping, options) {
            Ok(mut figure) => {
                figure.figure.file = format!("{}.svg", kind.stem());
                drawn.push(figure);
            }
            Err(why) => notes.push(format!("{}: {why}", kind.stem())),
        }
    }
    (drawn, notes)
}

/// A figure with its title, caption and SVG (its file is named by
/// [`draw`], after its kind).
fn drawing(title: String, caption: String, svg: String) -> SvgFigure {
    SvgFigure {
        figure: Figure {
            file: String::new(),
            title,
            caption,
        },
        svg,
    }
}

fn draw_one(
    kind: FigureKind,
    prepared: &Prepared,
    runs: &[Run],
    settings: &Settings,
    stopping: &Stopping,
    options: &FigureOptions,
) -> Result<SvgFigure, String> {
    let model = &prepared.model.name;
    let p = prepared.model.n_params();
    let needs_two = |what: &str| -> Result<(), String> {
        if p == 2 {
            Ok(())
        } else {
            Err(format!(
                "{what} needs a model with 2 parameters; `{model}` has {p} (the other figures are still made)"
            ))
        }
    };
    match kind {
        FigureKind::Loss => per_iteration(prepared, runs, false),
        FigureKind::GradNorm => per_iteration(prepared, runs, true),
        FigureKind::Contour => {
            needs_two("a contour plot")?;
            let paths = paths_of(runs);
            contour(
                prepared,
                &paths,
                options,
                &format!("{model}: level sets of L and each optimizer's path"),
            )
                .map(|svg| {
                    drawing(
                        "Level sets and paths".into(),
                        "Contours of the loss (log-spaced above the minimum when its range is wide), every optimizer's iterates from the same start, and the stationary points: minima circled, saddles crossed.".to_string(),
                        svg,
                    )
                })
        }
        FigureKind::Curvature => curvature(prepared, runs),
        FigureKind::CgIterations => cg_iterations(prepared, runs),
        FigureKind::LrSweep => lr_sweep(prepared, runs, settings, stopping),
        FigureKind::SgdPaths => {
            if prepared.data.rows == 0 {
                return Err(format!("`{model}` has no data, so no mini-batches"));
            }
            needs_two("the path plot")?;
            sgd_paths(prepared, settings, stopping, options)
        }
        FigureKind::Schedules => schedules(),
    }
}

/// The legend entry of a run: its name, and how it ended unless it converged.
fn label(o: &Outcome) -> String {
    if o.status == Status::Converged {
        o.optimizer.clone()
    } else {
        format!("{} — {}", o.optimizer, o.status.as_str())
    }
}

/// The last iteration a per-iteration figure shows: four times the longest
/// converged run (at least 50), so a 7-step Newton run is not a sliver
/// beside a 10 000-step gradient descent; `None` when nothing is cut.
fn iteration_cap(runs: &[Run]) -> Option<u64> {
    let longest = runs.iter().map(|r| r.outcome.iterations).max()?;
    let converged = runs
        .iter()
        .filter(|r| r.outcome.converged)
        .map(|r| r.outcome.iterations)
        .max()?;
    let cap = (4 * converged).max(50);
    (cap < longest).then_some(cap)
}

fn per_iteration(prepared: &Prepared, runs: &[Run], gradient: bool) -> Result<SvgFigure, String> {
    let cap = iteration_cap(runs);
    let curves: Vec<Vec<(f64, f64)>> = runs
        .iter()
        .map(|r| {
            r.history
                .rows
                .iter()
                .take_while(|row| cap.is_none_or(|c| row.iteration <= c))
                .map(|row| {
                    let y = if gradient { row.grad_norm } else { row.loss };
                    (row.iteration as f64, y)
                })
                .collect()
        })
        .collect();
    let y_cap = cap_of(&curves);
    let mut cut_any = false;
    let series: Vec<Series> = runs
        .iter()
        .zip(curves)
        .enumerate()
        .map(|(i, (r, curve))| {
            let (points, cut) = cut_above(curve, y_cap);
            let mut label = label(&r.outcome);
            if let Some(k) = cut {
                label.push_str(&format!(" (cut at k = {k})"));
                cut_any = true;
            }
            Series {
                label,
                points,
                colour: i,
            }
        })
        .collect();
    let y_cut = if cut_any {
        format!(
            " Curves that pass {CUT_ABOVE_START} times the largest starting value are cut there (the legend says where): they are diverging."
        )
    } else {
        String::new()
    };
    let model = &prepared.model.name;
    let cut = cap.map_or(String::new(), |c| {
        format!(" The x axis stops at iteration {c} (four times the longest converged run); the runs still going there continue to the iteration counts of the table.")
    });
    if gradient {
        let title = format!("{model}: gradient norm per iteration");
        let svg = line_chart(&LineChart {
            title: &title,
            x_label: "iteration k",
            y_label: "‖∇L(θ_k)‖∞",
            y_scale: Scale::Log,
            series: &series,
            reference: None,
        })
        .map_err(|e| e.to_string())?;
        Ok(drawing(
            "Gradient norm per iteration".into(),
            format!(
                "Log scale: linear convergence (gradient descent and its relatives) is a straight line whose slope is set by the condition number; Newton's quadratic convergence is a cliff.{cut}{y_cut}"
            ),
            svg,
        ))
    } else {
        let best = best_converged(runs.iter().map(|r| &r.outcome)).map(|o| o.final_loss);
        let scale = Scale::for_series(&series);
        let reference = best
            .filter(|b| scale == Scale::Linear || *b > 0.0)
            .map(|b| Reference {
                value: b,
                label: format!("optimum L* = {b:.6e}"),
            });
        let title = format!("{model}: loss per iteration");
        let svg = line_chart(&LineChart {
            title: &title,
            x_label: "iteration k",
            y_label: "L(θ_k)",
            y_scale: scale,
            series: &series,
            reference,
        })
        .map_err(|e| e.to_string())?;
        Ok(drawing(
            "Loss per iteration".into(),
            format!(
                "Every optimizer from the same start ({} y axis); the grey line is the lowest loss any converged run reached.{cut}{y_cut}",
                if scale == Scale::Log {
                    "log"
                } else {
                    "linear: the loss takes values ≤ 0"
                }
            ),
            svg,
        ))
    }
}

fn paths_of(runs: &[Run]) -> Vec<(Series, bool)> {
    runs.iter()
        .enumerate()
        .map(|(i, r)| {
            let points = r
                .history
                .rows
                .iter()
                .filter(|row| row.theta.len() == 2)
                .map(|row| (row.theta[0], row.theta[1]))
                .collect();
            let series = Series {
                label: label(&r.outcome),
                points,
                colour: i,
            };
            (series, r.outcome.status != Status::Diverged)
        })
        .collect()
}

/// The bounding box of some points, padded by 15 % of its width (at least
/// a little, so a single point gets a window too).
fn padded_box(points: impl Iterator<Item = (f64, f64)>) -> Window {
    let (mut x, mut y) = (
        (f64::INFINITY, f64::NEG_INFINITY),
        (f64::INFINITY, f64::NEG_INFINITY),
    );
    for (a, b) in points.filter(|(a, b)| a.is_finite() && b.is_finite()) {
        x = (x.0.min(a), x.1.max(a));
        y = (y.0.min(b), y.1.max(b));
    }
    let pad = |(lo, hi): (f64, f64)| {
        let width = (hi - lo).max(0.1 * (lo.abs() + hi.abs()) / 2.0).max(1e-3);
        let middle = (lo + hi) / 2.0;
        (middle - 0.65 * width, middle + 0.65 * width)
    };
    Window {
        x: pad(x),
        y: pad(y),
    }
}

/// The points of the runs that did not diverge, and the start.
fn path_points<'a>(
    prepared: &'a Prepared,
    paths: &'a [(Series, bool)],
) -> impl Iterator<Item = (f64, f64)> + 'a {
    paths
        .iter()
        .filter(|(_, bounded)| *bounded)
        .flat_map(|(s, _)| s.points.iter().copied())
        .chain(std::iter::once((prepared.start[0], prepared.start[1])))
}

/// How much wider than the paths' window the search for stationary points
/// looks, each way: far enough for the minima a class compares (all four of
/// Himmelblau's from a path to one of them), near enough to stay the
/// neighbourhood of the paths.
const SEARCH_WIDTHS: f64 = 2.0;

/// The window of a contour figure and the stationary points in it: the
/// given window, or the paths (and the start) and every stationary point
/// found within [`SEARCH_WIDTHS`] of them.
fn view(
    prepared: &Prepared,
    objective: &dyn Objective,
    paths: &[(Series, bool)],
    options: &FigureOptions,
) -> (Window, Vec<Marker>) {
    if let Some(w) = options.window {
        return (w, stationary_points(objective, w));
    }
    let around = padded_box(path_points(prepared, paths));
    let widen = |(lo, hi): (f64, f64)| {
        let w = hi - lo;
        (lo - SEARCH_WIDTHS * w, hi + SEARCH_WIDTHS * w)
    };
    let search = Window {
        x: widen(around.x),
        y: widen(around.y),
    };
    let found = stationary_points(objective, search);
    let window = padded_box(path_points(prepared, paths).chain(found.iter().map(|m| m.at)));
    (window, found)
}

fn contour(
    prepared: &Prepared,
    paths: &[(Series, bool)],
    options: &FigureOptions,
    title: &str,
) -> Result<String, String> {
    let objective = prepared.objective();
    let (window, stationary) = view(prepared, objective.as_ref(), paths, options);
    let (wx, wy) = (window.x, window.y);
    // 120 × 120 evaluations of L, fewer for big data sets (each evaluation
    // is a pass over every row): at most about 5·10⁸ row evaluations.
    let rows = prepared.data.rows.max(1) as f64;
    let n = ((5e8 / rows).sqrt() as usize).clamp(40, 120);
    let grid = Grid::sample(wx, wy, n, |x, y| objective.loss(&[x, y], Rows::All));
    let mut markers = vec![Marker {
        at: (prepared.start[0], prepared.start[1]),
        kind: MarkerKind::Start,
    }];
    markers.extend(stationary);
    let series: Vec<Series> = paths.iter().map(|(s, _)| s.clone()).collect();
    let params = &prepared.model.params;
    contour_chart(&ContourChart {
        title,
        x_label: &params[0].id,
        y_label: &params[1].id,
        grid: &grid,
        paths: &series,
        markers: &markers,
    })
    .map_err(|e| e.to_string())
}

/// Newton starts per side of the window in the search for stationary points.
const STARTS_PER_SIDE: usize = 15;

/// Stationary points in the window: pure Newton on ∇L = 0 from a grid of
/// starts ([`STARTS_PER_SIDE`]²), kept when ‖∇L‖∞ is tiny, told apart by
/// the Hessian's eigenvalues (both positive: minimum; mixed: saddle; both
/// negative: maximum).
fn stationary_points(objective: &dyn Objective, window: Window) -> Vec<Marker> {
    let (wx, wy) = (window.x, window.y);
    let mut found: Vec<Marker> = Vec::new();
    let scale = (wx.1 - wx.0).max(wy.1 - wy.0);
    let (mut g, mut h) = ([0.0; 2], [0.0; 4]);
    let n = STARTS_PER_SIDE;
    for i in 0..n {
        for j in 0..n {
            let mut t = [
                wx.0 + (wx.1 - wx.0) * (i as f64 + 0.5) / n as f64,
                wy.0 + (wy.1 - wy.0) * (j as f64 + 0.5) / n as f64,
            ];
            for _ in 0..60 {
                objective.loss_grad_hess(&t, Rows::All, &mut g, &mut h);
                let det = h[0] * h[3] - h[1] * h[2];
                if !det.is_finite() || det.abs() < 1e-300 {
                    break;
                }
                let step = [
                    (h[3] * g[0] - h[1] * g[1]) / det,
                    (h[0] * g[1] - h[2] * g[0]) / det,
                ];
                t[0] -= step[0];
                t[1] -= step[1];
                let small = step.iter().all(|d| d.abs() <= 1e-14 * scale);
                if small || !t.iter().all(|v| v.is_finite()) {
                    break;
                }
            }
            let l = objective.loss_grad_hess(&t, Rows::All, &mut g, &mut h);
            let inside = (wx.0..=wx.1).contains(&t[0]) && (wy.0..=wy.1).contains(&t[1]);
            let stationary = g.iter().all(|v| v.abs() <= 1e-9 * l.abs().max(1.0));
            if !inside || !stationary {
                continue;
            }
            let eig = SymmetricEigen::new(DMatrix::from_row_slice(2, 2, &h)).eigenvalues;
            let kind = match (eig.min() > 0.0, eig.max() < 0.0) {
                (true, _) => MarkerKind::Minimum,
                (_, true) => MarkerKind::Maximum,
                _ if eig.min() < 0.0 && eig.max() > 0.0 => MarkerKind::Saddle,
                _ => continue,
            };
            let known = found.iter().any(|m| {
                (m.at.0 - t[0]).abs() < 1e-6 * scale && (m.at.1 - t[1]).abs() < 1e-6 * scale
            });
            if !known {
                found.push(Marker {
                    at: (t[0], t[1]),
                    kind,
                });
            }
        }
    }
    found
}

/// λ_min and λ_max of ∇²L(θ_k) along each Newton-type path.
fn curvature(prepared: &Prepared, runs: &[Run]) -> Result<SvgFigure, String> {
    let objective = prepared.objective();
    let p = prepared.model.n_params();
    let newton: Vec<&Run> = runs
        .iter()
        .filter(|r| {
            r.outcome
                .optimizer
                .parse::<Optimizer>()
                .is_ok_and(|o| o.family() == Family::NewtonType)
        })
        .filter(|r| {
            r.history
                .rows
                .first()
                .is_some_and(|row| row.theta.len() == p)
        })
        .collect();
    if newton.is_empty() {
        return Err("no Newton-type optimizer in the comparison (or more than 20 parameters, so no iterates were kept)".into());
    }
    let (mut g, mut h) = (vec![0.0; p], vec![0.0; p * p]);
    let mut series = Vec::new();
    for (k, run) in newton.iter().enumerate() {
        let mut lo = Vec::new();
        let mut hi = Vec::new();
        for row in run.history.rows.iter().take(2_000) {
            objective.loss_grad_hess(&row.theta, Rows::All, &mut g, &mut h);
            if h.iter().all(|v| v.is_finite()) {
                let eig = SymmetricEigen::new(DMatrix::from_row_slice(p, p, &h)).eigenvalues;
                lo.push((row.iteration as f64, eig.min()));
                hi.push((row.iteration as f64, eig.max()));
            }
        }
        let name = &run.outcome.optimizer;
        series.push(Series {
            label: format!("{name}: λ_min"),
            points: lo,
            colour: 2 * k,
        });
        series.push(Series {
            label: format!("{name}: λ_max"),
            points: hi,
            colour: 2 * k + 1,
        });
    }
    let scale = Scale::for_series(&series);
    let title = format!(
        "{}: the Hessian's extreme eigenvalues along each path",
        prepared.model.name
    );
    let svg = line_chart(&LineChart {
        title: &title,
        x_label: "iteration k",
        y_label: "eigenvalue of ∇²L(θ_k)",
        y_scale: scale,
        series: &series,
        reference: (scale == Scale::Linear).then(|| Reference {
            value: 0.0,
            label: "λ = 0".into(),
        }),
    })
    .map_err(|e| e.to_string())?;
    Ok(drawing(
        "Curvature along the path".into(),
        "Where λ_min is negative the Hessian is indefinite: the pure Newton step heads for the saddle as readily as for a minimum, while saddle-free Newton (|H|) and the damped variants keep descending.".into(),
        svg,
    ))
}

/// CG iterations per step of every run whose steps solved the Newton
/// system by truncated CG (`newton-cg`, Hessian-free `gauss-newton`).
fn cg_iterations(prepared: &Prepared, runs: &[Run]) -> Result<SvgFigure, String> {
    let series: Vec<Series> = runs
        .iter()
        .filter_map(|r| {
            let points: Vec<(f64, f64)> = r
                .history
                .rows
                .iter()
                .filter_map(|row| match row.curvature?.modification {
                    Modification::TruncatedCg { iterations, .. } => {
                        Some((row.iteration as f64, iterations as f64))
                    }
                    _ => None,
                })
                .collect();
            (!points.is_empty()).then(|| (label(&r.outcome), points))
        })
        .enumerate()
        .map(|(colour, (label, points))| Series {
            label,
            points,
            colour,
        })
        .collect();
    if series.is_empty() {
        return Err("no Hessian-free Newton run (newton-cg) in the comparison".into());
    }
    let title = format!(
        "{}: conjugate-gradient iterations per Newton step",
        prepared.model.name
    );
    let svg = line_chart(&LineChart {
        title: &title,
        x_label: "iteration k",
        y_label: "CG iterations (Hessian–vector products)",
        y_scale: Scale::Linear,
        series: &series,
        reference: None,
    })
    .map_err(|e| e.to_string())?;
    Ok(drawing(
        "CG iterations per Newton step".into(),
        "Hessian-free Newton solves ∇²L d = −∇L by conjugate gradients on products ∇²L v, stopping once the residual is below min(½, √‖∇L‖)·‖∇L‖: early steps are solved roughly and cheaply, the last ones accurately, which keeps the convergence superlinear. Each CG iteration costs one product, about two gradients.".into(),
        svg,
    ))
}

/// Run gradient descent with a fixed step for at most 200 iterations.
fn descend(
    prepared: &Prepared,
    name: &str,
    settings: &Settings,
    stopping: &Stopping,
) -> Result<Run, String> {
    let mut method = optimizer(name, settings).map_err(|e| e.to_string())?;
    let mut history = History {
        keep_theta: true,
        ..Default::default()
    };
    let stopping = Stopping {
        max_iters: stopping.max_iters.min(200),
        time_limit: None,
        ..*stopping
    };
    let outcome = fit(
        prepared,
        name,
        method.as_mut(),
        &stopping,
        &mut [&mut history],
    );
    Ok(Run { outcome, history })
}

/// L = λ_max(∇²L(θ₀)): the value `run_all` already put in the settings
/// when an optimizer of the comparison uses it, else one Hessian pass.
fn lipschitz(prepared: &Prepared, settings: &Settings) -> Result<f64, String> {
    let l = settings
        .curvature
        .unwrap_or_else(|| hessian_spectrum(prepared.objective().as_ref(), &prepared.start).1);
    if l.is_finite() && l > 0.0 {
        Ok(l)
    } else {
        Err(format!(
            "λ_max of the Hessian at the start is {l:e}: no step 1/L to sweep around"
        ))
    }
}

/// How far above its start a curve may go before it is cut: a run whose
/// loss (or gradient norm) grows past this multiple of the largest start
/// value among the curves is diverging, and drawing it further would
/// stretch the y axis to 10⁹⁰ and flatten every other curve.
const CUT_ABOVE_START: f64 = 10.0;

/// The points of a curve up to where it leaves the figure (the first value
/// above `cap`), and the iteration it was cut at, if it was.
fn cut_above(points: Vec<(f64, f64)>, cap: f64) -> (Vec<(f64, f64)>, Option<f64>) {
    match points.iter().position(|(_, y)| y.is_nan() || *y > cap) {
        Some(k) => {
            let at = points[k].0;
            (points.into_iter().take(k).collect(), Some(at))
        }
        None => (points, None),
    }
}

/// The cap of a set of curves: [`CUT_ABOVE_START`] times the largest
/// absolute first value (none when no curve has a finite one).
fn cap_of(curves: &[Vec<(f64, f64)>]) -> f64 {
    let start = curves
        .iter()
        .filter_map(|c| c.first().map(|p| p.1.abs()))
        .filter(|y| y.is_finite())
        .fold(0.0f64, f64::max);
    if start > 0.0 {
        CUT_ABOVE_START * start
    } else {
        f64::INFINITY
    }
}

fn lr_sweep(
    prepared: &Prepared,
    runs: &[Run],
    settings: &Settings,
    stopping: &Stopping,
) -> Result<SvgFigure, String> {
    let l = lipschitz(prepared, settings)?;
    let factors = [0.1, 1.0, 1.9, 2.5];
    let mut sweep = Vec::new();
    for c in factors {
        let settings = Settings {
            lr: Some(c / l),
            ..settings.clone()
        };
        sweep.push(descend(prepared, "gd", &settings, stopping)?);
    }
    // The optimum: the best converged run of the comparison or the sweep;
    // the curvature there decides which steps can settle.
    let optimum = best_converged(
        runs.iter()
            .map(|r| &r.outcome)
            .chain(sweep.iter().map(|r| &r.outcome)),
    )
    .map(|o| o.theta.clone());
    let l_optimum = optimum
        .map(|t| hessian_spectrum(prepared.objective().as_ref(), &t).1)
        .filter(|v| v.is_finite() && *v > 0.0);
    let curves: Vec<Vec<(f64, f64)>> = sweep
        .iter()
        .map(|run| {
            run.history
                .rows
                .iter()
                .map(|r| (r.iteration as f64, r.loss))
                .collect()
        })
        .collect();
    let cap = cap_of(&curves);
    let mut series = Vec::new();
    let mut cut_any = false;
    for (i, ((c, run), curve)) in factors.iter().zip(&sweep).zip(curves).enumerate() {
        let (points, cut) = cut_above(curve, cap);
        let mut label = format!("α = {c}/L — {}", run.outcome.status.as_str());
        if let Some(k) = cut {
            label.push_str(&format!(" (cut at k = {k}: L above {cap:.3e})"));
            cut_any = true;
        }
        series.push(Series {
            label,
            points,
            colour: i,
        });
    }
    let scale = Scale::for_series(&series);
    let title = format!(
        "{}: gradient descent with four step sizes",
        prepared.model.name
    );
    let svg = line_chart(&LineChart {
        title: &title,
        x_label: "iteration k",
        y_label: "L(θ_k)",
        y_scale: scale,
        series: &series,
        reference: None,
    })
    .map_err(|e| e.to_string())?;
    let mut caption = format!(
        "Gradient descent with α = c/L, L = λ_max(∇²L(θ₀)) = {l:.4e}, for c = 0.1, 1, 1.9, 2.5. On a quadratic, α < 2/L descends (slowly for a small step) and beyond 2/L the iterates overshoot along the steepest direction and the loss grows. The legend gives how each run ended."
    );
    if let Some(l_star) = l_optimum {
        let unstable: Vec<String> = factors
            .iter()
            .filter(|&&c| c < 2.0 && c / l >= 2.0 / l_star)
            .map(|c| format!("{c}/L"))
            .collect();
        if !unstable.is_empty() {
            caption.push_str(&format!(
                " Here the curvature grows away from θ₀: λ_max at the optimum is {l_star:.4e}, so steps above 2/λ_max(θ*) = {:.4e} cannot settle there, and α = {} — stable at θ₀ — {} unstable at the optimum.",
                2.0 / l_star,
                unstable.join(" and "),
                if unstable.len() == 1 { "is" } else { "are" }
            ));
        }
    }
    if cut_any {
        caption.push_str(&format!(
            " Curves are cut where the loss passes {CUT_ABOVE_START} times its start (the legend says where), so a diverging run does not flatten the others."
        ));
    }
    Ok(drawing("Learning-rate sweep".into(), caption, svg))
}

fn sgd_paths(
    prepared: &Prepared,
    settings: &Settings,
    stopping: &Stopping,
    options: &FigureOptions,
) -> Result<SvgFigure, String> {
    let l = lipschitz(prepared, settings)?;
    let mut runs = Vec::new();
    for (name, batch) in [("gd", None), ("minibatch", Some(32)), ("sgd", Some(1))] {
        let settings = Settings {
            lr: Some(match batch {
                // One sample's curvature can exceed the mean's: a smaller step.
                Some(1) => 0.1 / l,
                _ => 1.0 / l,
            }),
            batch_size: batch,
            ..settings.clone()
        };
        let mut run = descend(prepared, name, &settings, stopping)?;
        run.outcome.optimizer = match batch {
            None => "gd (full batch)".into(),
            Some(b) => format!("{name} (batch {b}, α = {:.2e})", settings.lr.unwrap_or(0.0)),
        };
        runs.push(run);
    }
    let paths = paths_of(&runs);
    let title = format!(
        "{}: full batch, mini-batch and SGD paths",
        prepared.model.name
    );
    let svg = contour(prepared, &paths, options, &title)?;
    Ok(drawing(
        "GD vs SGD vs mini-batch".into(),
        "One point per epoch: the full gradient moves straight down the valley, mini-batch and single-sample gradients are noisy estimates of it, so their paths wander and settle into a cloud around the minimum whose size shrinks with the step.".into(),
        svg,
    ))
}

fn schedules() -> Result<SvgFigure, String> {
    let steps = 200;
    let spellings = [
        "constant",
        "step:70,140:0.5",
        "exp:0.985",
        "cosine",
        "linear:0:0.05",
        "invsqrt",
        "cyclic:50:4",
        "cosine+warmup:20",
    ];
    let schedules: Vec<(String, hessforge_optim::schedule::Schedule)> = spellings
        .iter()
        .map(|s| {
            (
                format!("--schedule {s}"),
                s.parse().expect("valid spellings"),
            )
        })
        .collect();
    let svg = schedule_chart(
        "Learning-rate schedules over 200 updates (base rate α = 1)",
        &schedules,
        1.0,
        steps,
    )
    .map_err(|e| e.to_string())?;
    Ok(drawing(
        "Learning-rate schedules".into(),
        "α_t for every schedule hessforge knows, computed by the same function the optimizers call; the legend gives the flag that selects it.".into(),
        svg,
    ))
}

/// The figures committed under `generated/figures/` (refreshed by
/// `hessforge generate`, checked by `generate --check`), as (path under
/// `generated/`, SVG): the contour plot with paths of every built-in
/// 2-parameter model (and the SGD paths of those with data), and the
/// convergence figure of logistic regression on its embedded data — all
/// from the default comparison, default options.
pub fn committed_figures() -> Result<Vec<(String, String)>, miette::Report> {
    let models = crate::models::builtins()?;
    let mut files = Vec::new();
    for model in &models {
        let kinds: Vec<FigureKind> = match (model.n_params(), model.data.is_empty()) {
            (2, true) => vec![FigureKind::Contour],
            (2, false) => vec![FigureKind::Contour, FigureKind::SgdPaths],
            _ if model.name == "logistic_regression" => vec![FigureKind::GradNorm],
            _ => continue,
        };
        let prepared = crate::problem::prepare(&model.name, &crate::problem::Problem::default())?;
        let names = crate::run::optimizer_names(&prepared, vec![]);
        let mut settings = Settings::default();
        let stopping = Stopping::default();
        let runs = crate::run::run_all(
            &prepared,
            &names,
            &mut settings,
            &stopping,
            true,
            &mut |_| None,
        )?;
        let options = FigureOptions::default();
        let (drawn, notes) = draw(&prepared, &runs, &settings, &stopping, &kinds, &options);
        if let Some(n) = notes.first() {
            return Err(miette::miette!("{}: {n}", model.name));
        }
        files.extend(
            drawn
                .into_iter()
                .map(|d| (format!("figures/{}_{}", model.name, d.figure.file), d.svg)),
        );
    }
    Ok(files)
}
