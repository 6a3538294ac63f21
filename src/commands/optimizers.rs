//! `hessforge optimizers`: every optimizer's update rule, hyper-parameters
//! and conventions.

/// Print the catalogue (update rules in LaTeX with `latex`).
pub fn run(latex: bool) {
    print!("{}", hessforge_driver::summary::catalogue(latex));
}
