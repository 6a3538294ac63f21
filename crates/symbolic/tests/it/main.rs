//! hessforge-symbolic's integration tests, one binary (one link of
//! Symbolica): the calculus against the function table, finite
//! differences, SymPy, the loop IR against the scalar programs, the index
//! form, numbers at the edges, and many threads at once.
//! `loop_ir_size.rs` is a binary of its own (its count depends on what the
//! process lowered before).

mod calculus;
mod common;
mod exponentials;
mod finite_differences;
mod fuzz;
mod index_form;
mod loop_ir_lowering;
mod lowering;
mod numbers;
mod range;
mod threads;
