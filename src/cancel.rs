//! Cancellation: the one token of an invocation. [`Cancel::install`] runs first
//! thing in `main`; from then on SIGINT and SIGTERM never kill the process (no exit
//! status 143, no half-written file): they set the token, and every phase checks
//! it. Synchronous phases (loading the project, rendering) call [`Cancel::check`]
//! between steps; asynchronous ones wait on [`Cancel::cancelled`] beside their
//! queries and cancel them on the server. The command then exits 1.

use tokio::sync::watch;

use crate::error::{Error, Result};

/// A cheap handle on the invocation's cancellation state.
#[derive(Clone)]
pub(crate) struct Cancel {
    rx: watch::Receiver<bool>,
}

impl Cancel {
    /// Installs the SIGINT/SIGTERM handlers on `runtime` and returns the token
    /// they set. A second signal while stopping is reported and otherwise ignored:
    /// stopping cancels queries and rolls back, which must not be cut short.
    pub(crate) fn install(runtime: &tokio::runtime::Runtime) -> std::io::Result<Cancel> {
        use tokio::signal::unix::{signal, SignalKind};
        let (tx, rx) = watch::channel(false);
        let _guard = runtime.enter();
        // Registering here, before anything else runs, replaces the default
        // action (terminate) for the rest of the process.
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        runtime.spawn(async move {
            let mut seen = 0u32;
            loop {
                let name = tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                };
                seen += 1;
                if seen == 1 {
                    log::info!("{name} received: stopping");
                    let _ = tx.send(true);
                } else {
                    eprintln!("{name} received again: still stopping (cancelling queries and rolling back)");
                }
            }
        });
        Ok(Cancel { rx })
    }

    /// Whether a signal asked the invocation to stop.
    pub(crate) fn is_cancelled(&self) -> bool {
        *self.rx.borrow()
    }

    /// `Err(interrupted while <phase>)` once cancelled, for synchronous phases.
    pub(crate) fn check(&self, phase: &str) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::interrupted(phase))
        } else {
            Ok(())
        }
    }

    /// Resolves once cancelled (never, if the signal task is gone).
    pub(crate) async fn cancelled(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|set| *set).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
