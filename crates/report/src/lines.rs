//! Line charts of a value per iteration: the loss and the gradient norm of
//! every optimizer of a comparison, a learning-rate sweep, the schedules,
//! the Hessian's eigenvalues along a path. One function draws them all
//! ([`line_chart`]); they differ in their series, axis scale and labels.

use crate::FigureError;
use crate::style::{self, FONT, LABEL_SIZE, Scale, Series, TICK_SIZE, TITLE_SIZE, WIDE};
use hessforge_optim::schedule::Schedule;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// A horizontal line drawn for comparison (the optimum's loss, λ = 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    /// Where.
    pub value: f64,
    /// Its legend entry.
    pub label: String,
}

/// What a line chart shows.
#[derive(Debug, Clone)]
pub struct LineChart<'a> {
    /// The title: what is shown, on what.
    pub title: &'a str,
    /// The x axis.
    pub x_label: &'a str,
    /// The y axis.
    pub y_label: &'a str,
    /// Linear or log y.
    pub y_scale: Scale,
    /// The lines, one legend entry each.
    pub series: &'a [Series],
    /// An optional horizontal reference line.
    pub reference: Option<Reference>,
}

pub(crate) fn drawing_error(figure: &str) -> impl Fn(&dyn std::fmt::Display) -> FigureError + '_ {
    move |e| FigureError::Drawing {
        figure: figure.to_string(),
        message: e.to_string(),
    }
}

/// Tick labels short enough for a slide: 0.5, 120, 1e-7.
pub(crate) fn tick(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if (1e-3..1e5).contains(&a) {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// A tick label on a linear axis spanning `span`: rounding noise such as
/// −2e−16 for a tick at zero is printed as 0.
pub(crate) fn linear_tick(v: f64, span: f64) -> String {
    tick(if v.abs() < 1e-9 * span { 0.0 } else { v })
}

/// Draw a line chart as an SVG document (1280 × 720).
pub fn line_chart(spec: &LineChart<'_>) -> Result<String, FigureError> {
    let drawn: Vec<Vec<(f64, f64)>> = spec
        .series
        .iter()
        .map(|s| s.drawable(spec.y_scale))
        .collect();
    let xs = || drawn.iter().flatten().map(|p| p.0);
    let (x_lo, x_hi) = (
        xs().fold(f64::INFINITY, f64::min),
        xs().fold(f64::NEG_INFINITY, f64::max),
    );
    if !x_lo.is_finite() {
        return Err(FigureError::Empty(spec.title.to_string()));
    }
    let x_hi = if x_hi > x_lo { x_hi } else { x_lo + 1.0 };
    let y_values = drawn
        .iter()
        .flatten()
        .map(|p| p.1)
        .chain(spec.reference.as_ref().map(|r| r.value));
    let (y_lo, y_hi) = style::padded_range(y_values, spec.y_scale)
        .ok_or_else(|| FigureError::Empty(spec.title.to_string()))?;
    let err = drawing_error(spec.title);
    let mut svg = String::new();
    {
        let root = style::canvas(&mut svg, WIDE);
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(spec.title, (FONT, TITLE_SIZE))
            .margin(24)
            .x_label_area_size(64)
            .y_label_area_size(96);
        match spec.y_scale {
            Scale::Linear => {
                let mut chart = builder
                    .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
                    .map_err(|e| err(&e))?;
                draw_lines(&mut chart, spec, &drawn, (x_lo, x_hi), y_hi - y_lo)?;
            }
            Scale::Log => {
                let mut chart = builder
                    .build_cartesian_2d(x_lo..x_hi, (y_lo..y_hi).log_scale())
                    .map_err(|e| err(&e))?;
                draw_lines(&mut chart, spec, &drawn, (x_lo, x_hi), y_hi - y_lo)?;
            }
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

type Chart<'a, 'b, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, Y>>;

fn draw_lines<'a, Y>(
    chart: &mut Chart<'a, 'a, Y>,
    spec: &LineChart<'_>,
    drawn: &[Vec<(f64, f64)>],
    (x_lo, x_hi): (f64, f64),
    y_span: f64,
) -> Result<(), FigureError>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let err = drawing_error(spec.title);
    chart
        .configure_mesh()
        .x_desc(spec.x_label)
        .y_desc(spec.y_label)
        .x_label_formatter(&|v| linear_tick(*v, x_hi - x_lo))
        .y_label_formatter(&|v| match spec.y_scale {
            Scale::Linear => linear_tick(*v, y_span),
            Scale::Log => tick(*v),
        })
        .label_style((FONT, TICK_SIZE))
        .axis_desc_style((FONT, LABEL_SIZE))
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .draw()
        .map_err(|e| err(&e))?;
    if let Some(r) = &spec.reference {
        let grey = BLACK.mix(0.45).stroke_width(2);
        chart
            .draw_series(LineSeries::new([(x_lo, r.value), (x_hi, r.value)], grey))
            .map_err(|e| err(&e))?
            .label(r.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], grey));
    }
    for (series, points) in spec.series.iter().zip(drawn) {
        let colour = style::colour(series.colour);
        let line = colour.stroke_width(3);
        chart
            .draw_series(LineSeries::new(points.iter().copied(), line))
            .map_err(|e| err(&e))?
            .label(series.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], line));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, TICK_SIZE))
        .draw()
        .map_err(|e| err(&e))?;
    Ok(())
}

/// Every schedule over `steps` updates from the base rate `base`, drawn by
/// [`Schedule::rate`] — the function the optimizers call.
pub fn schedule_chart(
    title: &str,
    schedules: &[(String, Schedule)],
    base: f64,
    steps: u64,
) -> Result<String, FigureError> {
    let series: Vec<Series> = schedules
        .iter()
        .enumerate()
        .map(|(i, (label, schedule))| Series {
            label: label.clone(),
            points: (0..steps)
                .map(|t| (t as f64, schedule.rate(base, t, steps)))
                .collect(),
            colour: i,
        })
        .collect();
    line_chart(&LineChart {
        title,
        x_label: "update t",
        y_label: "learning rate α_t",
        y_scale: Scale::Linear,
        series: &series,
        reference: None,
    })
}

#[cfg(test)]
mod tests {
    use super::tick;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(120.0), "120");
        assert_eq!(tick(1e-7), "1e-7");
        assert_eq!(tick(-2.0), "-2");
        assert_eq!(super::linear_tick(-2e-16, 1.8), "0");
    }
}
