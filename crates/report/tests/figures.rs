//! The figures as a viewer sees them: the SVG parses, every optimizer has
//! one line and one legend entry in its own colour, log axes are log, a
//! diverged run still renders and says so.

use hessforge_report::style::colour;
use hessforge_report::{
    ContourChart, Grid, LineChart, Marker, MarkerKind, Reference, Scale, Series, contour_chart,
    line_chart, schedule_chart,
};

fn parse(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).expect("the SVG is well-formed XML")
}

fn hex(i: usize) -> String {
    let c = colour(i);
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

/// Lines (polylines) drawn in series `i`'s colour with a width over 1:
/// the data line and the legend's sample.
fn lines_in_colour(doc: &roxmltree::Document<'_>, i: usize) -> usize {
    doc.descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .filter(|n| {
            n.attribute("stroke")
                .is_some_and(|s| s.eq_ignore_ascii_case(&hex(i)))
        })
        .count()
}

fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .map(|n| n.text().unwrap_or_default().trim().to_string())
        .collect()
}

/// GD's slow line and Newton's cliff, like `compare` makes them.
fn convergence() -> Vec<Series> {
    vec![
        Series {
            label: "gd".into(),
            points: (0..500).map(|k| (k as f64, 0.98f64.powi(k))).collect(),
            colour: 0,
        },
        Series {
            label: "newton".into(),
            points: vec![
                (0.0, 1.0),
                (1.0, 0.1),
                (2.0, 1e-3),
                (3.0, 1e-7),
                (4.0, 1e-15),
            ],
            colour: 1,
        },
    ]
}

#[test]
fn a_log_line_chart_has_one_line_and_one_legend_entry_per_optimizer() {
    let series = convergence();
    let svg = line_chart(&LineChart {
        title: "Gradient norm per iteration",
        x_label: "iteration",
        y_label: "‖∇L‖∞",
        y_scale: Scale::Log,
        series: &series,
        reference: Some(Reference {
            value: 1e-8,
            label: "tolerance".into(),
        }),
    })
    .unwrap();
    let doc = parse(&svg);
    for i in 0..series.len() {
        // One line in the plot and one sample in the legend.
        assert_eq!(lines_in_colour(&doc, i), 2, "series {i}");
    }
    let texts = texts(&doc);
    for label in [
        "gd",
        "newton",
        "tolerance",
        "Gradient norm per iteration",
        "iteration",
    ] {
        assert_eq!(
            texts.iter().filter(|t| *t == label).count(),
            1,
            "{label}: {texts:?}"
        );
    }
    // A log axis: ticks at every second power of ten.
    for power in ["1e-13", "1e-11", "1e-9", "1e-7"] {
        assert!(texts.iter().any(|t| t == power), "{power}: {texts:?}");
    }
}

#[test]
fn a_diverged_run_still_renders_and_says_so() {
    let series = vec![Series {
        label: "gd (α = 2.2/L) — diverged".into(),
        points: vec![
            (0.0, 1.0),
            (1.0, 10.0),
            (2.0, 1e10),
            (3.0, f64::INFINITY),
            (4.0, f64::NAN),
        ],
        colour: 3,
    }];
    let svg = line_chart(&LineChart {
        title: "Loss per iteration",
        x_label: "iteration",
        y_label: "L",
        y_scale: Scale::Log,
        series: &series,
        reference: None,
    })
    .unwrap();
    let doc = parse(&svg);
    assert_eq!(lines_in_colour(&doc, 3), 2);
    assert!(texts(&doc).iter().any(|t| t.contains("diverged")));
}

#[test]
fn nothing_finite_is_an_error_not_a_blank_figure() {
    let series = vec![Series {
        label: "x".into(),
        points: vec![(0.0, f64::NAN)],
        colour: 0,
    }];
    let e = line_chart(&LineChart {
        title: "Loss per iteration",
        x_label: "iteration",
        y_label: "L",
        y_scale: Scale::Linear,
        series: &series,
        reference: None,
    })
    .unwrap_err();
    assert!(e.to_string().contains("no finite values"), "{e}");
}

#[test]
fn a_contour_chart_draws_level_sets_paths_and_markers() {
    let grid = Grid::sample((-1.5, 1.5), (-1.5, 1.5), 60, |x, y| {
        x * x - y * y + y.powi(4) / 4.0
    });
    let paths = vec![
        Series {
            label: "gd".into(),
            points: vec![(1.0, 0.01), (0.5, 0.03), (0.2, 0.1), (0.0, 1.0)],
            colour: 0,
        },
        Series {
            label: "newton".into(),
            points: vec![(1.0, 0.01), (0.0, 0.0)],
            colour: 1,
        },
    ];
    let markers = [
        Marker {
            at: (1.0, 0.01),
            kind: MarkerKind::Start,
        },
        Marker {
            at: (0.0, 0.0),
            kind: MarkerKind::Saddle,
        },
        Marker {
            at: (0.0, 1.414),
            kind: MarkerKind::Minimum,
        },
    ];
    let svg = contour_chart(&ContourChart {
        title: "saddle: level sets and paths",
        x_label: "x",
        y_label: "y",
        grid: &grid,
        paths: &paths,
        markers: &markers,
    })
    .unwrap();
    let doc = parse(&svg);
    for i in 0..paths.len() {
        assert_eq!(lines_in_colour(&doc, i), 2, "path {i}");
    }
    let texts = texts(&doc);
    for label in ["start", "saddle", "minimum", "gd", "newton"] {
        assert_eq!(
            texts.iter().filter(|t| *t == label).count(),
            1,
            "{label}: {texts:?}"
        );
    }
    let contour_lines = doc
        .descendants()
        .filter(|n| n.has_tag_name("polyline"))
        .count();
    assert!(contour_lines > 20, "{contour_lines} lines");
}

#[test]
fn the_schedule_chart_draws_every_schedule_with_the_optimizers_function() {
    let schedules: Vec<(String, hessforge_optim::schedule::Schedule)> = [
        "constant",
        "cosine",
        "step:30,60:0.5",
        "cyclic:20:4+warmup:10",
    ]
    .iter()
    .map(|s| (s.to_string(), s.parse().unwrap()))
    .collect();
    let svg = schedule_chart("Learning-rate schedules", &schedules, 0.1, 100).unwrap();
    let doc = parse(&svg);
    for i in 0..schedules.len() {
        assert_eq!(lines_in_colour(&doc, i), 2, "schedule {i}");
    }
    // The cyclic schedule peaks at 4α = 0.4: the axis reaches it.
    assert!(texts(&doc).iter().any(|t| t == "0.4"), "{:?}", texts(&doc));
}
