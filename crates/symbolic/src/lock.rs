//! The per-user lock taken before Symbolica starts in a process.
//!
//! Symbolica's restricted mode allows one process per user at a time; a
//! second one that starts it is aborted. So every process that is about to
//! start Symbolica (the command line, the kernels' build script, a test)
//! first takes an exclusive advisory lock on one file per user, and keeps it
//! until it exits. A second process waits for the first, says once on
//! stderr which process it waits for, and gives up with a clear error after
//! `timeout`. This keeps the one-process rule; it does not get around it.
//!
//! The lock is the operating system's advisory file lock
//! ([`std::fs::File::try_lock`], `flock` on Unix), which the system releases
//! when the holder exits, however it exits: no stale lock survives a crash.
//! The standard library has it since Rust 1.89, so no crate is needed.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a second process waits by default.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// How often the lock is tried again while waiting.
const POLL: Duration = Duration::from_millis(50);

/// The environment variable that sets the wait limit, in seconds.
pub(crate) const TIMEOUT_VARIABLE: &str = "HESSFORGE_LOCK_TIMEOUT";

/// The lock file of this user: in the system's temporary folder, named by
/// the user id, so that two users never wait for each other.
pub fn path() -> PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("hessforge-symbolica-{uid}.lock"))
}

/// The wait limit: `HESSFORGE_LOCK_TIMEOUT` seconds, or ten minutes.
fn timeout() -> Duration {
    std::env::var(TIMEOUT_VARIABLE)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64)
}

/// Take the lock, waiting for another process if needed. The returned file
/// holds the lock for as long as it is open; it records this process's id
/// so that a waiting process can name it.
pub(crate) fn acquire() -> Result<File, String> {
    let path = path();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    let limit = timeout();
    let start = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        let holder = holder(&mut file);
        if !told {
            eprintln!(
                "hessforge: waiting for {holder}, which is using Symbolica \
                 (one process per user at a time; lock file {})",
                path.display()
            );
            told = true;
        }
        if start.elapsed() >= limit {
            return Err(format!(
                "waited {:.0} s for {holder} to finish using Symbolica, which allows one \
                 process per user at a time; let it finish or stop it, or wait longer with \
                 {TIMEOUT_VARIABLE}=SECONDS",
                limit.as_secs_f64()
            ));
        }
        std::thread::sleep(POLL);
    }
    // Best effort: the pid is only for the message of a waiting process.
    let _ = file.set_len(0).and_then(|()| {
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        file.flush()
    });
    Ok(file)
}

/// "process N" from the lock file, or "another process" while it is empty.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let pid = file
        .rewind()
        .and_then(|()| file.read_to_string(&mut text))
        .ok()
        .and_then(|_| text.trim().parse::<u32>().ok());
    match pid {
        Some(pid) => format!("process {pid}"),
        None => "another process".to_string(),
    }
}
