//! The one thread that talks to Symbolica.
//!
//! Symbolica's restricted mode allows a single thread per user: a second
//! thread that touches it aborts the process. Every call into Symbolica in
//! this crate is therefore a job sent to one long-lived worker thread, and the
//! public API only moves plain Rust data across the channel. Any thread may
//! call [`run`] at any time; jobs are executed one after another.
//!
//! Before it starts Symbolica, the worker takes the per-user lock of
//! [`crate::lock`], so that a second process waits instead of being aborted.
//!
//! Symbolica prints its license banner on stdout when it is first used. The
//! worker starts Symbolica with stdout pointed at stderr, so the banner stays
//! visible to the user but never lands inside `--json` output or a file
//! written to stdout. Symbolica's log lines (warnings such as "Created
//! infinity …") go through `tracing`: the worker turns off Symbolica's own
//! logger, as its documentation describes, and installs one for its thread
//! that writes warnings and errors to stderr.

use crate::engine::Engine;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

/// A job gets the engine, or why there is none (the lock was not had).
type Job = Box<dyn FnOnce(Result<&mut Engine, &str>) + Send>;

/// Why a job did not return a value.
pub(crate) enum WorkerError {
    /// Symbolica could not be started in this process (another process
    /// held the lock past the time limit, or the lock file failed).
    Unavailable(String),
    /// A panic inside the job: a bug.
    Panic(String),
}

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
                let _logging = log_to_stderr();
                let mut state =
                    crate::lock::acquire().map(|held| (held, with_stdout_on_stderr(Engine::new)));
                for job in rx {
                    match &mut state {
                        Ok((_held, engine)) => {
                            engine.begin_job();
                            job(Ok(engine))
                        }
                        Err(why) => job(Err(why)),
                    }
                }
            })
            .expect("cannot start the Symbolica worker thread");
        tx
    })
}

/// Symbolica's warnings on stderr, for this thread, instead of its default
/// logger (which writes to stdout).
fn log_to_stderr() -> tracing::subscriber::DefaultGuard {
    symbolica::GLOBAL_SETTINGS
        .initialize_tracing
        .store(false, std::sync::atomic::Ordering::Relaxed);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .without_time()
        .finish();
    tracing::subscriber::set_default(subscriber)
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

/// Run `f` on the Symbolica worker and wait for its result; `Err` carries
/// the message of a panic inside it (a bug).
pub(crate) fn run<R: Send + 'static>(
    f: impl FnOnce(&mut Engine) -> R + Send + 'static,
) -> Result<R, WorkerError> {
    let stopped = || WorkerError::Panic("the Symbolica worker thread has stopped".into());
    let (tx, rx) = channel();
    let job: Job = Box::new(move |engine| {
        let result = match engine {
            Ok(engine) => Ok(catch_unwind(AssertUnwindSafe(|| f(engine)))),
            Err(why) => Err(why.to_string()),
        };
        let _ = tx.send(result);
    });
    worker().send(job).map_err(|_| stopped())?;
    match rx.recv() {
        Ok(Err(why)) => Err(WorkerError::Unavailable(why)),
        Ok(Ok(Ok(r))) => Ok(r),
        Ok(Ok(Err(panic))) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            Err(WorkerError::Panic(msg))
        }
        Err(_) => Err(stopped()),
    }
}
