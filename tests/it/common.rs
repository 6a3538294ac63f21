//! Running the `hessforge` binary from tests.
#![allow(dead_code)]

use std::sync::{Mutex, MutexGuard};

/// Symbolica's restricted mode allows one process per user at a time: CLI
/// tests that derive run one after another.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Hold this while a `hessforge` process may use Symbolica.
pub fn symbolica_lock() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `hessforge` command.
pub fn hessforge() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("hessforge").expect("the hessforge binary is built")
}

/// An expected table written in a test's source: its lines without the
/// blank ones and the `#` comments, each ending in a newline (the form the
/// tests build their tables in).
pub fn expected_table(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}
