//! Where a model is evaluated: θ, the constants, the data set and which of
//! its rows ([`At`]). Every evaluation back end takes it — the compiled
//! kernels, the straight-line interpreter ([`crate::ModelPrograms`]) and
//! the loop-IR interpreter ([`crate::loop_ir::LoopProgram`]) — and [`Rows`]
//! is the one "which rows" type, the optimizers' too.

/// Which rows of a data set a pass reads. A pass over the rows is the mean
/// of the per-row terms over them (plus the θ-only part once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rows<'a> {
    /// Every row, on the calling thread.
    #[default]
    All,
    /// The rows at these indices (a mini-batch).
    Selected(&'a [usize]),
    /// Every row, summed over fixed chunks of rows in order: the compiled
    /// kernels run the chunks in parallel (rayon), with the same bits on
    /// every run whatever the number of threads; the interpreters run
    /// them on the calling thread, like [`Rows::All`].
    Parallel,
}

impl<'a> Rows<'a> {
    /// The selected indices, or `None` for every row.
    pub fn selected(self) -> Option<&'a [usize]> {
        match self {
            Rows::Selected(indices) => Some(indices),
            Rows::All | Rows::Parallel => None,
        }
    }

    /// How many rows a pass reads from a data set of `n_rows` rows.
    pub fn count(self, n_rows: usize) -> usize {
        self.selected().map_or(n_rows, <[usize]>::len)
    }
}

/// Where a model is evaluated: θ, the constants, the data set (row-major)
/// and which of its rows.
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// θ.
    pub theta: &'a [f64],
    /// The constants.
    pub constants: &'a [f64],
    /// The data set, row-major (empty for a model without data).
    pub data: &'a [f64],
    /// Which rows.
    pub rows: Rows<'a>,
}

impl<'a> At<'a> {
    /// Every row of `data`, on the calling thread.
    pub fn new(theta: &'a [f64], constants: &'a [f64], data: &'a [f64]) -> At<'a> {
        At {
            theta,
            constants,
            data,
            rows: Rows::All,
        }
    }

    /// The same point over other rows.
    pub fn rows(self, rows: Rows<'a>) -> At<'a> {
        At { rows, ..self }
    }

    /// The same rows at another θ.
    pub fn theta(self, theta: &'a [f64]) -> At<'a> {
        At { theta, ..self }
    }
}
