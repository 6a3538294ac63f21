//! The report in a real browser: headless Chromium opens `index.html` from
//! disk (offline, no server), and a harness page beside it checks what a
//! reader would see: the math rendered as MathML (no `<merror>`, no raw
//! `\frac` in the visible text), every image loaded, the table present,
//! the page not blank. A screenshot is kept at
//! `target/report-screenshot/saddle.png` for people to look at.
//!
//! Needs Debian's `chromium`: the tests are ignored by a plain `cargo test`,
//! and `.ci/run` installs it and runs them
//! (`cargo test --test it -- --ignored browser::`).

use crate::common;
use common::{hessforge, symbolica_lock};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Checks the page in an iframe and writes one line of findings into the
/// harness's own DOM, which `--dump-dom` prints.
const HARNESS: &str = r#"<!DOCTYPE html>
<html><body><pre id="result">pending</pre>
<iframe id="page" src="index.html" style="width:1280px;height:900px"></iframe>
<script>
const frame = document.getElementById('page');
frame.addEventListener('load', () => {
  const doc = frame.contentDocument;
  const images = [...doc.images];
  const loaded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  const maths = doc.querySelectorAll('math').length;
  const merrors = doc.querySelectorAll('merror').length;
  const text = doc.body.innerText;
  const rawTex = /\\(frac|begin|partial|theta)/.test(text);
  const tables = doc.querySelectorAll('table').length;
  const height = doc.documentElement.scrollHeight;
  document.getElementById('result').textContent =
    `images=${images.length} loaded=${loaded} maths=${maths} merrors=${merrors} rawtex=${rawTex} tables=${tables} height=${height} chars=${text.length}`;
});
</script></body></html>
"#;

fn chromium() -> &'static str {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium is needed: apt-get install chromium")
}

fn headless(browser: &str, profile: &Path) -> Command {
    let mut c = Command::new(browser);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

fn finding(line: &str, key: &str) -> String {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{key} missing in {line}"))
        .to_string()
}

/// The harness's findings for the report of `model`, the report folder
/// and the browser.
fn report_findings(model: &str) -> (String, PathBuf, &'static str) {
    let browser = chromium();
    let out: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("report-{model}"));
    let _ = std::fs::remove_dir_all(&out);
    {
        let _lock = symbolica_lock();
        hessforge()
            .args(["report", model, "-o"])
            .arg(&out)
            .assert()
            .success();
    }
    std::fs::write(out.join("harness.html"), HARNESS).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let dom = headless(browser, profile.path())
        .args([
            "--allow-file-access-from-files",
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", out.join("harness.html").display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    let start = dom
        .find("images=")
        .unwrap_or_else(|| panic!("the harness did not report:\n{dom}"));
    let line = &dom[start..];
    let line = &line[..line.find('<').unwrap_or(line.len())];
    (line.to_string(), out, browser)
}

#[test]
#[ignore = "needs chromium: .ci/run runs it (--ignored browser::)"]
fn the_index_form_document_renders_without_math_errors() {
    // Softmax regression's note: Kronecker blocks (⊗), diag, ‖W‖_F,
    // δ^{(z)}, \succeq — every one typeset, none an <merror>.
    let (line, _, _) = report_findings("softmax_regression");
    let n = |key: &str| finding(&line, key).parse::<usize>().unwrap();
    assert!(n("maths") > 10, "{line}");
    assert_eq!(n("merrors"), 0, "{line}");
    assert_eq!(
        finding(&line, "rawtex"),
        "false",
        "raw LaTeX is visible: {line}"
    );
}

#[test]
#[ignore = "needs chromium: .ci/run runs it (--ignored browser::)"]
fn the_report_renders_in_a_browser() {
    let (line, out, browser) = report_findings("saddle");
    let line = line.as_str();
    let profile = tempfile::tempdir().unwrap();
    let n = |key: &str| finding(line, key).parse::<usize>().unwrap();
    assert!(n("images") >= 6, "{line}");
    assert_eq!(n("loaded"), n("images"), "an image did not load: {line}");
    assert!(n("maths") > 10, "{line}");
    assert_eq!(n("merrors"), 0, "{line}");
    assert_eq!(
        finding(line, "rawtex"),
        "false",
        "raw LaTeX is visible: {line}"
    );
    assert_eq!(n("tables"), 1, "{line}");
    assert!(
        n("height") > 2000 && n("chars") > 2000,
        "a blank page? {line}"
    );

    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/report-screenshot");
    std::fs::create_dir_all(&shots).unwrap();
    let shot = shots.join("saddle.png");
    let _ = std::fs::remove_file(&shot);
    let status = headless(browser, profile.path())
        .args(["--window-size=1280,2400", "--virtual-time-budget=5000"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", out.join("index.html").display()))
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // A blank 1280 × 2400 page compresses to a few kilobytes.
    assert!(
        png.len() > 100_000,
        "the screenshot looks blank: {} bytes",
        png.len()
    );
}
