//! The progress bar of a long run: an optimizer [`Observer`] drawing on
//! stderr with indicatif, shown only once a run has lasted a second (and
//! hidden by indicatif when stderr is not a terminal).

use hessforge_optim::{Observer, Record};
use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar on stderr, shown only once a run has lasted a second
/// (and hidden by indicatif when stderr is not a terminal).
pub struct Progress {
    bar: Option<ProgressBar>,
    max_iters: u64,
    label: String,
}

impl Observer for Progress {
    fn observe(&mut self, r: &Record<'_>) {
        if self.bar.is_none() && r.seconds > 1.0 {
            let bar = ProgressBar::new(self.max_iters);
            bar.set_style(
                ProgressStyle::with_template("{prefix} {bar:30} {pos}/{len} iterations {msg}")
                    .expect("a valid template"),
            );
            bar.set_prefix(self.label.clone());
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(r.iteration);
            bar.set_message(format!("loss {:.6e}  ‖g‖∞ {:.2e}", r.loss, r.grad_norm));
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Progress {
    /// A bar for the run of `label` under at most `max_iters` iterations.
    pub fn new(label: &str, max_iters: u64) -> Progress {
        Progress {
            bar: None,
            max_iters,
            label: label.to_string(),
        }
    }
}
