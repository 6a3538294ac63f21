//! The pictures and the page of a comparison: SVG figures drawn with
//! plotters, and the teaching report (HTML with the derivation as MathML,
//! or Markdown with `$…$` math).
//!
//! The crate knows nothing of models, kernels or Symbolica: it draws
//! numbers it is given ([`Series`], [`Grid`], [`Marker`]) and assembles
//! Markdown it is given into a page. The one thing it computes itself is
//! what should look exactly like the optimizer: a learning-rate schedule is
//! drawn by [`hessforge_optim::Schedule::rate`], the function the optimizers
//! call.
//!
//! Modules: [`style`] (palette, sizes, scales), [`lines`] (value per
//! iteration: loss, gradient norm, learning-rate sweeps, schedules,
//! curvature), [`contour`] (level sets of a 2-parameter loss with the
//! optimizers' paths), [`page`] (Markdown and HTML).
#![warn(missing_docs)]

pub mod contour;
pub mod lines;
pub mod page;
pub mod style;

pub use contour::{ContourChart, Grid, Marker, MarkerKind, contour_chart};
pub use lines::{LineChart, Reference, line_chart, schedule_chart};
pub use page::{Figure, Report};
pub use style::{Scale, Series};

/// Why a figure could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// plotters refused (a range that cannot be drawn, …).
    #[error("drawing `{figure}` failed: {message}")]
    Drawing {
        /// The figure's title.
        figure: String,
        /// plotters' message.
        message: String,
    },
    /// Nothing finite to draw.
    #[error("`{0}` has no finite values to draw")]
    Empty(String),
}
