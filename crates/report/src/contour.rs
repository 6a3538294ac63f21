//! The classic picture: level sets of a 2-parameter loss with every
//! optimizer's iterates drawn on top (gradient descent zig-zagging across
//! the valley, Newton walking straight down), the start, and the stationary
//! points (minima, saddles, maxima) marked.
//!
//! The level sets come from marching squares over a [`Grid`] of loss
//! values; levels are log-spaced above the grid's minimum when most of the
//! grid lies near the bottom of a wide range (Rosenbrock), equally spaced
//! otherwise.

use crate::FigureError;
use crate::lines::{drawing_error, linear_tick};
use crate::style::{self, FONT, LABEL_SIZE, SQUARE, Series, TICK_SIZE, TITLE_SIZE};
use plotters::prelude::*;

/// L on a rectangular grid: `values[j * xs.len() + i] = L(xs[i], ys[j])`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// First-parameter values, increasing.
    pub xs: Vec<f64>,
    /// Second-parameter values, increasing.
    pub ys: Vec<f64>,
    /// The loss, row by row (y outer).
    pub values: Vec<f64>,
}

impl Grid {
    /// Evaluate `loss` on an `n × n` grid over the window.
    pub fn sample(
        (x_lo, x_hi): (f64, f64),
        (y_lo, y_hi): (f64, f64),
        n: usize,
        mut loss: impl FnMut(f64, f64) -> f64,
    ) -> Grid {
        let n = n.max(2);
        let axis = |lo: f64, hi: f64| -> Vec<f64> {
            (0..n)
                .map(|k| lo + (hi - lo) * k as f64 / (n - 1) as f64)
                .collect()
        };
        let (xs, ys) = (axis(x_lo, x_hi), axis(y_lo, y_hi));
        let values = ys
            .iter()
            .flat_map(|&y| xs.iter().map(move |&x| (x, y)))
            .map(|(x, y)| loss(x, y))
            .collect();
        Grid { xs, ys, values }
    }

    fn at(&self, i: usize, j: usize) -> f64 {
        self.values[j * self.xs.len() + i]
    }
}

/// What a marked point is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// θ₀.
    Start,
    /// A stationary point with a positive definite Hessian.
    Minimum,
    /// A stationary point with an indefinite Hessian.
    Saddle,
    /// A stationary point with a negative definite Hessian.
    Maximum,
}

impl MarkerKind {
    /// The word written beside the marker.
    pub fn label(self) -> &'static str {
        match self {
            MarkerKind::Start => "start",
            MarkerKind::Minimum => "minimum",
            MarkerKind::Saddle => "saddle",
            MarkerKind::Maximum => "maximum",
        }
    }
}

/// A marked point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Marker {
    /// Where.
    pub at: (f64, f64),
    /// What.
    pub kind: MarkerKind,
}

/// What a contour chart shows.
#[derive(Debug, Clone)]
pub struct ContourChart<'a> {
    /// The title.
    pub title: &'a str,
    /// The first parameter's name.
    pub x_label: &'a str,
    /// The second parameter's name.
    pub y_label: &'a str,
    /// The loss on the window.
    pub grid: &'a Grid,
    /// One path per optimizer: its iterates (θ₁, θ₂).
    pub paths: &'a [Series],
    /// Start and stationary points.
    pub markers: &'a [Marker],
}

/// The contour levels of `grid`: `count` of them, log-spaced above the
/// minimum when a quarter of the values lie in the bottom tenth of the range.
pub fn levels(grid: &Grid, count: usize) -> Vec<f64> {
    let mut finite: Vec<f64> = grid
        .values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if finite.len() < 2 || count == 0 {
        return vec![];
    }
    finite.sort_by(f64::total_cmp);
    let (lo, hi) = (finite[0], finite[finite.len() - 1]);
    let span = hi - lo;
    if span <= 0.0 {
        return vec![];
    }
    let lower_quartile = finite[finite.len() / 4] - lo;
    let t = |k: usize| (k as f64 + 1.0) / (count as f64 + 1.0);
    if lower_quartile < span / 10.0 {
        // Wide range: equal ratios of L − L_min, from a little above the
        // bottom (the 0.5 % quantile) to the top.
        let floor = (finite[finite.len() / 200] - lo).max(span * 1e-6);
        let (a, b) = (floor.ln(), span.ln());
        (0..count)
            .map(|k| lo + (a + (b - a) * t(k)).exp())
            .collect()
    } else {
        (0..count).map(|k| lo + span * t(k)).collect()
    }
}

type Point = (f64, f64);

/// A grid edge: horizontal from node (i, j) to (i+1, j), or vertical from
/// (i, j) to (i, j+1). Neighbouring cells name a shared edge alike, so their
/// segments join exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Edge {
    horizontal: bool,
    i: usize,
    j: usize,
}

impl Edge {
    fn ends(self) -> ((usize, usize), (usize, usize)) {
        let end = if self.horizontal {
            (self.i + 1, self.j)
        } else {
            (self.i, self.j + 1)
        };
        ((self.i, self.j), end)
    }
}

/// Marching squares: the segments (as pairs of crossed edges) where the
/// piecewise-linear interpolant of `grid` crosses `level`.
fn crossed_edges(grid: &Grid, level: f64) -> Vec<(Edge, Edge)> {
    let (nx, ny) = (grid.xs.len(), grid.ys.len());
    let mut segments = Vec::new();
    for j in 0..ny.saturating_sub(1) {
        for i in 0..nx.saturating_sub(1) {
            // Corners counter-clockwise from bottom-left; edge k joins
            // corner k and corner k+1 (bottom, right, top, left).
            let corners = [
                grid.at(i, j),
                grid.at(i + 1, j),
                grid.at(i + 1, j + 1),
                grid.at(i, j + 1),
            ];
            if corners.iter().any(|c| !c.is_finite()) {
                continue;
            }
            let edges = [
                Edge {
                    horizontal: true,
                    i,
                    j,
                },
                Edge {
                    horizontal: false,
                    i: i + 1,
                    j,
                },
                Edge {
                    horizontal: true,
                    i,
                    j: j + 1,
                },
                Edge {
                    horizontal: false,
                    i,
                    j,
                },
            ];
            let above = |k: usize| corners[k % 4] >= level;
            let hits: Vec<Edge> = (0..4)
                .filter(|&k| above(k) != above(k + 1))
                .map(|k| edges[k])
                .collect();
            match hits.len() {
                2 => segments.push((hits[0], hits[1])),
                4 => {
                    // A saddle cell: the centre's side decides which
                    // corners are cut off.
                    let centre = corners.iter().sum::<f64>() / 4.0;
                    if (centre >= level) == above(0) {
                        // Corners 1 and 3 are cut off.
                        segments.push((hits[0], hits[1]));
                        segments.push((hits[2], hits[3]));
                    } else {
                        // Corners 0 and 2 are cut off.
                        segments.push((hits[3], hits[0]));
                        segments.push((hits[1], hits[2]));
                    }
                }
                _ => {}
            }
        }
    }
    segments
}

/// Where `level` crosses an edge (linear interpolation).
fn crossing(grid: &Grid, edge: Edge, level: f64) -> Point {
    let ((i0, j0), (i1, j1)) = edge.ends();
    let (a, b) = (grid.at(i0, j0), grid.at(i1, j1));
    let s = (level - a) / (b - a);
    (
        grid.xs[i0] + s * (grid.xs[i1] - grid.xs[i0]),
        grid.ys[j0] + s * (grid.ys[j1] - grid.ys[j0]),
    )
}

/// Marching squares: the segments where the piecewise-linear interpolant
/// of `grid` crosses `level`.
pub fn level_segments(grid: &Grid, level: f64) -> Vec<(Point, Point)> {
    crossed_edges(grid, level)
        .into_iter()
        .map(|(a, b)| (crossing(grid, a, level), crossing(grid, b, level)))
        .collect()
}

/// The level set of `level` as polylines: the segments joined end to end
/// (an SVG path per curve rather than per grid cell).
pub fn level_lines(grid: &Grid, level: f64) -> Vec<Vec<Point>> {
    let segments = crossed_edges(grid, level);
    let mut at_edge: std::collections::HashMap<Edge, Vec<usize>> = Default::default();
    for (k, (a, b)) in segments.iter().enumerate() {
        at_edge.entry(*a).or_default().push(k);
        at_edge.entry(*b).or_default().push(k);
    }
    let mut used = vec![false; segments.len()];
    let mut lines = Vec::new();
    let other = |k: usize, e: Edge| {
        let (a, b) = segments[k];
        if a == e { b } else { a }
    };
    // Walk from `edge` through unused segments until the curve ends.
    let walk = |mut edge: Edge, used: &mut Vec<bool>| -> Vec<Edge> {
        let mut chain = vec![];
        while let Some(&k) = at_edge[&edge].iter().find(|&&k| !used[k]) {
            used[k] = true;
            edge = other(k, edge);
            chain.push(edge);
        }
        chain
    };
    for k in 0..segments.len() {
        if used[k] {
            continue;
        }
        used[k] = true;
        let (a, b) = segments[k];
        let forward = walk(b, &mut used);
        let backward = walk(a, &mut used);
        let edges = backward.into_iter().rev().chain([a, b]).chain(forward);
        lines.push(edges.map(|e| crossing(grid, e, level)).collect());
    }
    lines
}

/// The pieces of a path inside the window (a path leaving it is cut, not
/// drawn across the margin).
fn inside_runs(points: &[Point], x: (f64, f64), y: (f64, f64)) -> Vec<Vec<Point>> {
    let inside = |p: &Point| {
        p.0.is_finite()
            && p.1.is_finite()
            && (x.0..=x.1).contains(&p.0)
            && (y.0..=y.1).contains(&p.1)
    };
    let mut runs: Vec<Vec<Point>> = vec![];
    let mut current: Vec<Point> = vec![];
    for p in points {
        if inside(p) {
            current.push(*p);
        } else if !current.is_empty() {
            runs.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    runs
}

/// Iterates marked with a dot when a path has at most this many.
const MARKED_ITERATES: usize = 200;

/// Draw a contour chart as an SVG document (a 900 × 900 plot, legend beside).
pub fn contour_chart(spec: &ContourChart<'_>) -> Result<String, FigureError> {
    let g = spec.grid;
    let (Some(&x0), Some(&x1), Some(&y0), Some(&y1)) =
        (g.xs.first(), g.xs.last(), g.ys.first(), g.ys.last())
    else {
        return Err(FigureError::Empty(spec.title.to_string()));
    };
    if g.values.len() != g.xs.len() * g.ys.len() || x0 >= x1 || y0 >= y1 {
        return Err(FigureError::Empty(spec.title.to_string()));
    }
    let err = drawing_error(spec.title);
    let levels = levels(g, 18);
    let mut svg = String::new();
    {
        let root = style::canvas(&mut svg, SQUARE);
        root.fill(&WHITE).map_err(|e| err(&e))?;
        // The plot is square; the legend has a column of its own, so it
        // never hides a path or a marker.
        let (plot, legend) = root.split_horizontally(SQUARE.1);
        let mut chart = ChartBuilder::on(&plot)
            .caption(spec.title, (FONT, TITLE_SIZE))
            .margin(24)
            .x_label_area_size(64)
            .y_label_area_size(80)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(spec.x_label)
            .y_desc(spec.y_label)
            .x_label_formatter(&|v| linear_tick(*v, x1 - x0))
            .y_label_formatter(&|v| linear_tick(*v, y1 - y0))
            .label_style((FONT, TICK_SIZE))
            .axis_desc_style((FONT, LABEL_SIZE))
            .draw()
            .map_err(|e| err(&e))?;
        for (k, level) in levels.iter().enumerate() {
            // Dark blue-grey at the bottom of the bowl, pale grey at the rim.
            let t = k as f64 / levels.len().max(2).saturating_sub(1) as f64;
            let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
            let shade = RGBColor(mix(60.0, 205.0), mix(80.0, 205.0), mix(130.0, 205.0));
            chart
                .draw_series(
                    level_lines(g, *level)
                        .into_iter()
                        .map(move |line| PathElement::new(line, shade.stroke_width(1))),
                )
                .map_err(|e| err(&e))?;
        }
        for path in spec.paths {
            let colour = style::colour(path.colour);
            let line = colour.stroke_width(2);
            let runs = inside_runs(&style::thin_path(&path.points), (x0, x1), (y0, y1));
            let mark = path.points.len() <= MARKED_ITERATES;
            chart
                .draw_series(runs.iter().map(|run| PathElement::new(run.clone(), line)))
                .map_err(|e| err(&e))?
                .label(path.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(3))
                });
            if mark {
                chart
                    .draw_series(
                        runs.iter()
                            .flatten()
                            .map(|p| Circle::new(*p, 3, colour.filled())),
                    )
                    .map_err(|e| err(&e))?;
            }
        }
        for m in spec.markers {
            if !(x0..=x1).contains(&m.at.0) || !(y0..=y1).contains(&m.at.1) {
                continue;
            }
            let text = (FONT, LABEL_SIZE).into_font().color(&BLACK);
            let label = Text::new(m.kind.label(), (10, -24), text);
            let at = EmptyElement::at(m.at);
            let drawn = match m.kind {
                MarkerKind::Start => chart.draw_series(std::iter::once(
                    at + TriangleMarker::new((0, 0), 10, BLACK.filled()) + label,
                )),
                MarkerKind::Minimum => chart.draw_series(std::iter::once(
                    at + Circle::new((0, 0), 8, BLACK.stroke_width(3)) + label,
                )),
                MarkerKind::Saddle | MarkerKind::Maximum => chart.draw_series(std::iter::once(
                    at + Cross::new((0, 0), 9, RGBColor(0xD5, 0x5E, 0x00).stroke_width(4)) + label,
                )),
            };
            drawn.map_err(|e| err(&e))?;
        }
        for (k, path) in spec.paths.iter().enumerate() {
            let y = 90 + 28 * k as i32;
            let colour = style::colour(path.colour);
            legend
                .draw(&PathElement::new([(8, y), (40, y)], colour.stroke_width(3)))
                .map_err(|e| err(&e))?;
            legend
                .draw_text(
                    &path.label,
                    &(FONT, TICK_SIZE).into_font().color(&BLACK).pos(
                        plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Left,
                            plotters::style::text_anchor::VPos::Center,
                        ),
                    ),
                    (48, y),
                )
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bowl() -> Grid {
        Grid::sample((-1.0, 1.0), (-1.0, 1.0), 41, |x, y| x * x + y * y)
    }

    #[test]
    fn a_circle_s_level_set_lies_on_the_circle() {
        let segments = level_segments(&bowl(), 0.25);
        assert!(segments.len() > 20);
        for (a, b) in segments {
            for p in [a, b] {
                let r = (p.0 * p.0 + p.1 * p.1).sqrt();
                // Linear interpolation between grid points 0.05 apart.
                assert!((r - 0.5).abs() < 0.01, "{p:?} is not on r = 0.5");
            }
        }
    }

    #[test]
    fn level_lines_join_every_segment_once() {
        let grid = Grid::sample((-1.5, 1.5), (-1.5, 1.5), 50, |x, y| {
            x * x - y * y + y.powi(4) / 4.0
        });
        for level in [-0.5, 0.0, 0.3, 2.0] {
            let segments = level_segments(&grid, level).len();
            let lines = level_lines(&grid, level);
            let joined: usize = lines.iter().map(|l| l.len() - 1).sum();
            assert_eq!(joined, segments, "level {level}");
            assert!(
                lines.len() < segments / 4,
                "level {level}: {} lines",
                lines.len()
            );
        }
        // The circle r = 0.5 of the bowl is one closed curve.
        let circle = level_lines(&bowl(), 0.25);
        assert_eq!(circle.len(), 1);
        assert_eq!(circle[0].first(), circle[0].last());
    }

    #[test]
    fn levels_are_log_spaced_for_a_wide_range() {
        let rosenbrock = Grid::sample((-2.0, 2.0), (-1.0, 3.0), 101, |x, y| {
            (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2)
        });
        let l = levels(&rosenbrock, 10);
        let ratios: Vec<f64> = l.windows(2).map(|w| w[1] / w[0]).collect();
        assert!(ratios.iter().all(|r| *r > 1.5), "{l:?}");
        let linear = levels(&bowl(), 4);
        let gaps: Vec<f64> = linear.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter().all(|g| (g - gaps[0]).abs() < 1e-12),
            "{linear:?}"
        );
    }

    #[test]
    fn paths_leaving_the_window_are_cut() {
        let runs = inside_runs(
            &[
                (0.0, 0.0),
                (0.5, 0.5),
                (5.0, 0.0),
                (0.2, 0.1),
                (f64::NAN, 0.0),
            ],
            (-1.0, 1.0),
            (-1.0, 1.0),
        );
        assert_eq!(runs, vec![vec![(0.0, 0.0), (0.5, 0.5)], vec![(0.2, 0.1)]]);
    }
}
