//! What every figure shares: the colour-blind-safe palette (Okabe–Ito, then
//! Paul Tol's "muted" set: sixteen optimizers, sixteen colours), the
//! slide-sized canvas, fonts, and the data a line is made of.

use plotters::style::RGBColor;

/// A slide: 1280 × 720.
pub const WIDE: (u32, u32) = (1280, 720);
/// A contour plot: a 900 × 900 square and a legend column beside it.
pub const SQUARE: (u32, u32) = (1240, 900);
/// Title font size (px).
pub const TITLE_SIZE: u32 = 28;
/// Axis-label font size (px).
pub const LABEL_SIZE: u32 = 20;
/// Tick-label and legend font size (px).
pub const TICK_SIZE: u32 = 16;
/// The font family; the viewer's sans-serif draws it.
pub const FONT: &str = "sans-serif";
/// Lines with more points than this are thinned (every k-th point and the
/// last), which keeps a 10 000-iteration run's SVG small without changing
/// its shape at slide resolution.
pub const MAX_POINTS: usize = 2_000;

/// Okabe & Ito (2008), with their yellow (invisible on white) replaced by
/// Tol's olive; then Tol's muted scheme.
const PALETTE: [RGBColor; 16] = [
    RGBColor(0x00, 0x72, 0xB2), // blue
    RGBColor(0xD5, 0x5E, 0x00), // vermillion
    RGBColor(0x00, 0x9E, 0x73), // bluish green
    RGBColor(0xCC, 0x79, 0xA7), // reddish purple
    RGBColor(0xE6, 0x9F, 0x00), // orange
    RGBColor(0x56, 0xB4, 0xE9), // sky blue
    RGBColor(0x00, 0x00, 0x00), // black
    RGBColor(0x99, 0x99, 0x33), // olive
    RGBColor(0x33, 0x22, 0x88), // indigo
    RGBColor(0xCC, 0x66, 0x77), // rose
    RGBColor(0x11, 0x77, 0x33), // green
    RGBColor(0x88, 0x22, 0x55), // wine
    RGBColor(0x44, 0xAA, 0x99), // teal
    RGBColor(0xAA, 0x44, 0x99), // purple
    RGBColor(0x88, 0xCC, 0xEE), // cyan
    RGBColor(0xDD, 0xCC, 0x77), // sand
];

/// The colour of the `i`-th series (cycling after sixteen).
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// How an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Equal distances for equal differences.
    Linear,
    /// Equal distances for equal ratios (values ≤ 0 are not drawn).
    Log,
}

impl Scale {
    /// Log when every finite value is positive, linear otherwise.
    pub fn for_values<'a>(values: impl IntoIterator<Item = &'a f64>) -> Scale {
        if values
            .into_iter()
            .filter(|v| v.is_finite())
            .all(|v| *v > 0.0)
        {
            Scale::Log
        } else {
            Scale::Linear
        }
    }

    /// [`Scale::for_values`] of every y value of these lines.
    pub fn for_series(series: &[Series]) -> Scale {
        Scale::for_values(series.iter().flat_map(|s| s.points.iter().map(|p| &p.1)))
    }
}

/// The SVG canvas every figure draws on.
pub(crate) fn canvas(
    svg: &mut String,
    size: (u32, u32),
) -> plotters::drawing::DrawingArea<plotters::prelude::SVGBackend<'_>, plotters::coord::Shift> {
    use plotters::prelude::IntoDrawingArea;
    plotters::prelude::SVGBackend::with_string(svg, size).into_drawing_area()
}

/// One line of a figure.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry (e.g. the optimizer, and "— diverged").
    pub label: String,
    /// (x, y) pairs; non-finite pairs are skipped.
    pub points: Vec<(f64, f64)>,
    /// Index into the palette (the same optimizer keeps its colour in
    /// every figure).
    pub colour: usize,
}

impl Series {
    /// The points a figure draws: finite (and positive on a log axis),
    /// thinned to at most about [`MAX_POINTS`].
    pub fn drawable(&self, y_scale: Scale) -> Vec<(f64, f64)> {
        let keep: Vec<(f64, f64)> = self
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .filter(|(_, y)| y_scale == Scale::Linear || *y > 0.0)
            .collect();
        thin(keep)
    }
}

/// A path through parameter space thinned like [`Series::drawable`], but
/// keeping its first [`MAX_POINTS`]/2 iterates (the zig-zag) untouched.
pub fn thin_path(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let head = points.len().min(MAX_POINTS / 2);
    let mut out = points[..head].to_vec();
    if head < points.len() {
        out.extend(thin_to(points[head..].to_vec(), MAX_POINTS / 2));
    }
    out
}

fn thin(points: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    thin_to(points, MAX_POINTS)
}

fn thin_to(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points;
    }
    let stride = points.len().div_ceil(max);
    let last = *points.last().expect("non-empty");
    let mut out: Vec<_> = points.into_iter().step_by(stride).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

/// The range [lo, hi] of `values` widened for drawing: by 5 % on a linear
/// axis, by a factor on a log axis; never empty.
pub fn padded_range(values: impl IntoIterator<Item = f64>, scale: Scale) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0))
        .fold(None, |acc: Option<(f64, f64)>, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })?;
    Some(match scale {
        Scale::Linear => {
            let pad = if hi > lo {
                0.05 * (hi - lo)
            } else {
                0.5 * lo.abs().max(1.0)
            };
            (lo - pad, hi + pad)
        }
        Scale::Log => {
            if hi > lo {
                (lo / 2.0, hi * 2.0)
            } else {
                (lo / 10.0, hi * 10.0)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_ends_and_the_bound() {
        let points: Vec<_> = (0..10_001)
            .map(|i| (i as f64, 1.0 / (1.0 + i as f64)))
            .collect();
        let thinned = thin(points.clone());
        assert!(thinned.len() <= MAX_POINTS + 1);
        assert_eq!(thinned.first(), points.first());
        assert_eq!(thinned.last(), points.last());
        let path = thin_path(&points);
        assert!(path.len() <= MAX_POINTS + 1);
        assert_eq!(path[..MAX_POINTS / 2], points[..MAX_POINTS / 2]);
        assert_eq!(path.last(), points.last());
    }

    #[test]
    fn log_scale_only_for_positive_values() {
        assert_eq!(Scale::for_values(&[1.0, 2.0, f64::NAN]), Scale::Log);
        assert_eq!(Scale::for_values(&[1.0, -1.0]), Scale::Linear);
        assert_eq!(
            padded_range([0.0, -1.0, 10.0], Scale::Log),
            Some((1.0, 100.0))
        );
        assert_eq!(padded_range([f64::NAN], Scale::Linear), None);
    }

    #[test]
    fn sixteen_distinct_styles() {
        let styles: std::collections::HashSet<_> = (0..16)
            .map(|i| (colour(i).0, colour(i).1, colour(i).2))
            .collect();
        assert_eq!(styles.len(), 16);
    }
}
