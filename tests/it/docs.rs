//! The README, ARCHITECTURE.md, CHANGELOG.md and the book under `docs/`:
//! every relative link leads to a file of the source tree, every page is in
//! the book's table of contents, and the derivation files they show are
//! valid (the README's is the one in `examples/`).

use std::path::{Path, PathBuf};

/// The source tree.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every Markdown page of the book, recursively.
fn book_pages(dir: &Path, pages: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            book_pages(&path, pages);
        } else if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
}

/// The targets of a page's Markdown links `[text](target)` outside code.
fn link_targets(page: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_code = false;
    for line in page.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                targets.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
    }
    targets
}

#[test]
fn every_relative_link_leads_to_a_file_and_every_page_is_in_the_summary() {
    let mut pages = vec![
        root().join("README.md"),
        root().join("ARCHITECTURE.md"),
        root().join("CHANGELOG.md"),
    ];
    book_pages(&root().join("docs/src"), &mut pages);
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap();
            if !page.parent().unwrap().join(file).exists() {
                broken.push(format!("{}: {target}", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    let summary = std::fs::read_to_string(root().join("docs/src/SUMMARY.md")).unwrap();
    let listed = link_targets(&summary);
    for page in pages
        .iter()
        .filter(|p| p.starts_with(root().join("docs/src")))
    {
        let relative = page.strip_prefix(root().join("docs/src")).unwrap();
        let relative = relative.to_str().unwrap();
        assert!(
            relative == "SUMMARY.md" || listed.iter().any(|l| l == relative),
            "{relative} is not in docs/src/SUMMARY.md"
        );
    }
}

/// The first ```toml block of a Markdown page.
fn first_toml_block(page: &str) -> &str {
    let start = page.find("```toml\n").expect("a toml example") + "```toml\n".len();
    let end = start + page[start..].find("```").expect("closed block");
    &page[start..end]
}

#[test]
fn the_readme_example_is_examples_logistic_toml_and_loads() {
    let readme = include_str!("../../README.md");
    let example = first_toml_block(readme);
    assert_eq!(example, include_str!("../../examples/logistic.toml"));
    let model = hessforge_spec::load_str("README.md", example)
        .unwrap_or_else(|e| panic!("{}", e.one_line()));
    assert_eq!(model.name, "logistic");
    assert_eq!(model.n_params(), 11);
    assert_eq!(model.definitions().len(), 2);
}

#[test]
fn the_guides_example_loads() {
    let page = include_str!("../../docs/src/guide/derivation-files.md");
    let model = hessforge_spec::load_str("derivation-files.md", first_toml_block(page))
        .unwrap_or_else(|e| panic!("{}", e.one_line()));
    assert_eq!(model.name, "logistic_regression");
    assert_eq!(model.n_params(), 11);
    assert_eq!(model.definitions().len(), 2);
    assert!(model.synthetic.is_some());
}
