//! hessforge-spec's integration tests, one binary: the built-in derivation
//! files load as written, every kind of bad file gets its error at its line
//! and column, and the index form of every repository file.

mod builtins;
mod errors;
mod index_form;
