//! The one thread that talks to Symbolica.
//!
//! Symbolica's restricted mode allows a single thread per user: a second
//! thread that touches it aborts the process. Every call into Symbolica in
//! this crate is therefore a job sent to one long-lived worker thread, and the
//! public API only moves plain Rust data across the channel. Any thread may
//! call [`run`] at any time; jobs are executed one after another.
//!
//! Symbolica prints its license banner on stdout when it is first used. The
//! worker starts Symbolica with stdout pointed at stderr, so the banner stays
//! visible to the user but never lands inside `--json` output or a file
//! written to stdout.

use crate::engine::Engine;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

type Job = Box<dyn FnOnce(&mut Engine) + Send>;

static WORKER: OnceLock<Sender<Job>> = OnceLock::new();

/// Deep expressions recurse deeply inside the CAS; give the worker room.
const WORKER_STACK_BYTES: usize = 256 * 1024 * 1024;

fn worker() -> &'static Sender<Job> {
    WORKER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("symbolica".into())
            .stack_size(WORKER_STACK_BYTES)
            .spawn(move || {
                let mut engine = with_stdout_on_stderr(Engine::new);
                for job in rx {
                    job(&mut engine);
                }
            })
            .expect("cannot start the Symbolica worker thread");
        tx
    })
}

/// Run `f` with file descriptor 1 temporarily pointing at file descriptor 2.
fn with_stdout_on_stderr<R>(f: impl FnOnce() -> R) -> R {
    let _ = std::io::stdout().flush();
    // SAFETY: plain POSIX calls on the process's own standard descriptors;
    // the saved descriptor is restored and closed before returning.
    let saved = unsafe { libc::dup(1) };
    if saved >= 0 {
        unsafe { libc::dup2(2, 1) };
    }
    let out = f();
    let _ = std::io::stdout().flush();
    if saved >= 0 {
        unsafe {
            libc::dup2(saved, 1);
            libc::close(saved);
        }
    }
    out
}

/// A failure inside the Symbolica worker.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("the symbolic engine failed: {0}")]
#[diagnostic(help("this is a bug in hessforge; please report it with the derivation file"))]
pub struct EngineError(pub String);

/// Run `f` on the Symbolica worker and wait for its result.
pub(crate) fn run<R: Send + 'static>(
    f: impl FnOnce(&mut Engine) -> R + Send + 'static,
) -> Result<R, EngineError> {
    let (tx, rx) = channel();
    let job: Job = Box::new(move |engine| {
        let result = catch_unwind(AssertUnwindSafe(|| f(engine)));
        let _ = tx.send(result);
    });
    worker()
        .send(job)
        .map_err(|_| EngineError("the Symbolica worker thread has stopped".into()))?;
    match rx.recv() {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(panic)) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(EngineError(msg))
        }
        Err(_) => Err(EngineError(
            "the Symbolica worker thread has stopped".into(),
        )),
    }
}
