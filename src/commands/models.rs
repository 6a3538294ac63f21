//! `hessforge models`: the built-in derivations with their parameter and
//! data counts.

use crate::output::Failure;
use hessforge_driver::models;

/// Print the built-in models.
pub fn run() -> Result<(), Failure> {
    let models = models::builtins().map_err(Failure::failed)?;
    let width = models.iter().map(|m| m.name.len()).max().unwrap_or(4);
    let mut out = String::new();
    out.push_str(&format!(
        "{:<width$}  {:>3}  {:>4}  description\n",
        "name", "P", "data"
    ));
    for m in &models {
        out.push_str(&format!(
            "{:<width$}  {:>3}  {:>4}  {}\n",
            m.name,
            m.n_params(),
            m.data.len(),
            m.description
        ));
    }
    print!("{out}");
    Ok(())
}
