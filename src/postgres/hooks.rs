//! Running a model's or seed's hooks as dbt-core's materializations run them:
//! `before_begin` pre-hooks on the connection before the build's transaction,
//! the other pre-hooks inside it before the build, the other post-hooks inside
//! it once the new relation is swapped in (so `{{ this }}` is the new relation
//! and a failing hook rolls everything back), and `after_commit` post-hooks
//! after the commit. Each hook is sent as it was rendered, with the simple
//! protocol (a hook may hold several statements, as dbt allows). A hook whose
//! Jinja reaches the database (`Hook::at_run`) is rendered right before it runs,
//! on a blocking thread whose statements this connection runs in turn (inside
//! the transaction when the hook is), as dbt renders every hook.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio_postgres::{Client, GenericClient};

use crate::manifest::Node;
use crate::project::Hook;

use super::swap::Failure;

/// Work a render sends to the connection it was lent (see [`HookRender`]).
pub(crate) type DbJob =
    Box<dyn for<'c> FnOnce(&'c Client) -> Pin<Box<dyn Future<Output = ()> + Send + 'c>> + Send>;

/// Where a render lent a connection sends its statements.
pub(crate) type Lend = tokio::sync::mpsc::UnboundedSender<DbJob>;

/// What renders a hook kept for when it runs: blocking, with the node's
/// connection reached through the [`Lend`]; gives its SQL or the compile error.
pub(crate) type RenderFn = dyn Fn(&Hook, Lend) -> Result<String, String> + Send + Sync;

/// Renders one of a node's `at_run` hooks (see [`RenderFn`]).
#[derive(Clone)]
pub(crate) struct HookRender(pub(crate) Arc<RenderFn>);

impl std::fmt::Debug for HookRender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HookRender")
    }
}

/// Runs the hooks of `hooks` (of `node`) whose `transaction` is `inside`, in
/// order; the first that fails (to render or to run) stops the rest and fails
/// the node.
pub(super) async fn run<C: GenericClient>(
    client: &C,
    node: &Node,
    hooks: &[Hook],
    inside: bool,
) -> Result<(), Failure> {
    for h in hooks.iter().filter(|h| h.transaction == inside) {
        let sql = if h.at_run {
            render_now(client.client(), node, h).await?
        } else {
            h.sql.clone()
        };
        if sql.trim().is_empty() {
            continue;
        }
        client
            .batch_execute(sql.trim())
            .await
            .map_err(|error| Failure::Db {
                error,
                statement: sql.clone(),
            })?;
    }
    Ok(())
}

/// Renders hook `h` of `node` on a blocking thread, running the statements its
/// render sends on `client` meanwhile.
async fn render_now(client: &Client, node: &Node, h: &Hook) -> Result<String, Failure> {
    let Some(render) = node.hook_render.clone() else {
        return Err(Failure::Compile(format!(
            "a hook of {} could not be rendered when it ran",
            node.name
        )));
    };
    let (lend, mut jobs) = tokio::sync::mpsc::unbounded_channel::<DbJob>();
    let hook = h.clone();
    let mut task = tokio::task::spawn_blocking(move || (render.0)(&hook, lend));
    loop {
        tokio::select! {
            Some(job) = jobs.recv() => job(client).await,
            done = &mut task => {
                return match done {
                    Ok(Ok(sql)) => Ok(sql),
                    Ok(Err(message)) => Err(Failure::Compile(message)),
                    Err(e) => Err(Failure::Compile(format!("{}: {e}", node.name))),
                };
            }
        }
    }
}
