//! hessforge-symbolic's integration tests, one binary (one link of
//! Symbolica): the calculus against the function table, finite
//! differences, SymPy, the loop IR against the scalar programs, the index
//! form, numbers at the edges, and many threads at once.

mod calculus;
mod common;
mod exponentials;
mod finite_differences;
mod fuzz;
mod index_form;
mod loop_ir_lowering;
mod loop_ir_size;
mod lowering;
mod numbers;
mod range;
mod threads;
