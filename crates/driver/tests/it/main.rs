//! hessforge-driver's integration tests, one binary: the library as a Rust
//! user calls it — fits on the real kernels, Newton–CG, every optimizer on
//! the classic problems and the 2-D catalogue, the tables' words and the
//! figures' analysis.

mod catalogue;
mod classic_problems;
mod columnar;
mod common;
mod figures;
mod fit;
mod hessian_free;
mod newton_cg;
mod summary;
