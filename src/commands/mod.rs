//! One file per command: each turns its flags into library calls, prints,
//! and writes files.

pub mod compare;
pub mod derive;
pub mod generate;
pub mod gradcheck;
pub mod models;
pub mod optimizers;
pub mod report;
pub mod run;
pub mod sample;
