//! The pool of an execution: at most `threads` connections, opened on demand and
//! reused across models, and cancelling every running statement on an interrupt.

use std::sync::{Arc, Mutex};

use tokio_postgres::{CancelToken, Client};

use crate::error::{Error, Result};
use crate::settings::Settings;

/// Up to `max` connections, opened on demand and reused across models.
pub(crate) struct Pool {
    settings: Arc<Settings>,
    max: usize,
    inner: Mutex<PoolInner>,
    available: tokio::sync::Semaphore,
}

#[derive(Default)]
struct PoolInner {
    idle: Vec<Client>,
    opened: usize,
    /// Cancel tokens of every connection ever opened, for interrupts.
    tokens: Vec<CancelToken>,
}

impl Pool {
    pub(crate) fn new(settings: Arc<Settings>, max: usize) -> Pool {
        Pool {
            settings,
            max,
            inner: Mutex::default(),
            available: tokio::sync::Semaphore::new(max),
        }
    }

    /// Adds an already open connection (the one used to check the server).
    pub(crate) fn adopt(&self, client: Client) {
        let mut inner = self.inner.lock().unwrap();
        inner.tokens.push(client.cancel_token());
        inner.opened += 1;
        inner.idle.push(client);
    }

    /// A connection: an idle one, or a new one while fewer than `max` are open.
    pub(crate) async fn get(&self) -> Result<Client> {
        let permit = self
            .available
            .acquire()
            .await
            .map_err(|_| Error::runtime("connection pool closed"))?;
        permit.forget();
        let idle = {
            let mut inner = self.inner.lock().unwrap();
            loop {
                match inner.idle.pop() {
                    Some(c) if c.is_closed() => inner.opened -= 1,
                    other => break other,
                }
            }
        };
        if let Some(c) = idle {
            return Ok(c);
        }
        match super::connect(&self.settings).await {
            Ok(c) => {
                let mut inner = self.inner.lock().unwrap();
                inner.opened += 1;
                inner.tokens.push(c.cancel_token());
                debug_assert!(inner.opened <= self.max);
                Ok(c)
            }
            Err(e) => {
                self.available.add_permits(1);
                Err(e)
            }
        }
    }

    /// Returns a connection for reuse.
    pub(crate) fn put(&self, client: Client) {
        let mut inner = self.inner.lock().unwrap();
        if client.is_closed() {
            inner.opened -= 1;
        } else {
            inner.idle.push(client);
        }
        drop(inner);
        self.available.add_permits(1);
    }

    /// Gives up a connection that was taken and is gone (its place is free).
    pub(crate) fn forget(&self) {
        self.inner.lock().unwrap().opened -= 1;
        self.available.add_permits(1);
    }

    /// How many connections were opened in all.
    pub(crate) fn opened(&self) -> usize {
        self.inner.lock().unwrap().tokens.len()
    }

    /// Cancels the statement running on every connection (Ctrl-C, SIGTERM).
    pub(crate) async fn cancel_all(&self) {
        let tokens: Vec<CancelToken> = self.inner.lock().unwrap().tokens.clone();
        for t in &tokens {
            super::cancel_query(t, &self.settings).await;
        }
    }
}
