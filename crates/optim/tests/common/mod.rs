//! A least-squares test objective over data rows, for the mini-batch and
//! allocation tests.

use hessforge_optim::{Objective, Rows};

/// A least-squares objective over rows: ℓᵢ = ½(θ₀ + θ₁ xᵢ − yᵢ)².
pub struct Line {
    pub rows: Vec<(f64, f64)>,
}

impl Line {
    fn each(&self, batch: Rows<'_>, mut f: impl FnMut(f64, f64)) -> f64 {
        match batch {
            Rows::All | Rows::Parallel => {
                self.rows.iter().for_each(|&(x, y)| f(x, y));
                self.rows.len() as f64
            }
            Rows::Selected(idx) => {
                idx.iter().for_each(|&i| f(self.rows[i].0, self.rows[i].1));
                idx.len() as f64
            }
        }
    }
}

impl Objective for Line {
    fn n_params(&self) -> usize {
        2
    }
    fn n_rows(&self) -> usize {
        self.rows.len()
    }
    fn loss(&self, t: &[f64], batch: Rows<'_>) -> f64 {
        let mut s = 0.0;
        let n = self.each(batch, |x, y| s += 0.5 * (t[0] + t[1] * x - y).powi(2));
        s / n
    }
    fn loss_grad(&self, t: &[f64], batch: Rows<'_>, g: &mut [f64]) -> f64 {
        let (mut s, mut g0, mut g1) = (0.0, 0.0, 0.0);
        let n = self.each(batch, |x, y| {
            let r = t[0] + t[1] * x - y;
            s += 0.5 * r * r;
            g0 += r;
            g1 += r * x;
        });
        g.copy_from_slice(&[g0 / n, g1 / n]);
        s / n
    }
    fn loss_grad_hess(&self, t: &[f64], batch: Rows<'_>, g: &mut [f64], h: &mut [f64]) -> f64 {
        let (mut sx, mut sxx) = (0.0, 0.0);
        let n = self.each(batch, |x, _| {
            sx += x;
            sxx += x * x;
        });
        h.copy_from_slice(&[1.0, sx / n, sx / n, sxx / n]);
        self.loss_grad(t, batch, g)
    }
    /// ℓ = ½r², r = θ₀ + θ₁x − y: G = mean of (1, x)(1, x)ᵀ, which is H.
    fn loss_grad_gauss_newton(&self, t: &[f64], g: &mut [f64], gn: &mut [f64]) -> Option<f64> {
        Some(self.loss_grad_hess(t, Rows::All, g, gn))
    }
}

pub fn line() -> Line {
    Line {
        rows: (0..100)
            .map(|i| {
                let x = i as f64 / 50.0 - 1.0;
                (x, 0.5 + 2.0 * x + 0.1 * ((i * 37 % 11) as f64 - 5.0))
            })
            .collect(),
    }
}
