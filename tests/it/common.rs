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
