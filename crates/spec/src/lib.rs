//! Derivation files for hessforge: the TOML format, its expression language,
//! validation with file/line/column errors, and the scalarized [`Model`] the
//! symbolic engine works on.
//!
//! ```
//! let model = hessforge_spec::load_str("bowl.toml", r#"
//!     name = "bowl"
//!     title = "A bowl"
//!     description = "x² + 10 y²"
//!     loss = "x^2 + 10*y^2"
//!     [parameters]
//!     x = {}
//!     y = {}
//! "#).unwrap();
//! assert_eq!(model.n_params(), 2);
//! ```
#![warn(missing_docs)]

mod error;
pub mod expr;
pub mod index;
mod load;
mod model;
pub mod prose;

pub use error::{ErrorKind, SpecError};
pub use load::{default_latex, load_file, load_str, parse_expression};
pub use model::{
    Definition, Distribution, Draw, Expr, Func, Model, Rational, Role, Scalar, ScalarForm,
    Synthetic, TensorInfo,
};
