//! The README's derivation-file example is a valid derivation file.

#[test]
fn readme_example_loads() {
    let readme = include_str!("../README.md");
    let start = readme
        .find("```toml\n")
        .expect("a toml example in the README")
        + "```toml\n".len();
    let end = start + readme[start..].find("```").expect("closed block");
    let model = hessforge_spec::load_str("README.md", &readme[start..end])
        .unwrap_or_else(|e| panic!("{}", e.one_line()));
    assert_eq!(model.name, "logistic_regression");
    assert_eq!(model.n_params(), 11);
    assert_eq!(model.definitions.len(), 2);
    assert!(model.synthetic.is_some());
}
