//! Snapshots of what people read: the text and LaTeX derivation of every
//! built-in model. A change in a derived formula shows up as a reviewable
//! diff (`cargo insta review`); CI never writes snapshots.

use hessforge_derivation::render::{Format, render};

#[test]
fn derivations() {
    insta::glob!(
        concat!(env!("CARGO_MANIFEST_DIR"), "/derivations"),
        "*.toml",
        |path| {
            let model =
                hessforge_spec::load_file(path).unwrap_or_else(|e| panic!("{}", e.one_line()));
            // What `derive` prints: index form for tensor models (the
            // scalar derivation of digits' 650² Hessian entries is never
            // made), in full otherwise.
            let derivation = hessforge_symbolic::derive_unexpanded(model).unwrap();
            insta::assert_snapshot!("text", render(&derivation, Format::Text));
            insta::assert_snapshot!("latex", render(&derivation, Format::Latex));
        }
    );
}
