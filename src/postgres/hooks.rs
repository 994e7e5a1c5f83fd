//! Running a model's or seed's hooks, rendered by the compile phase, as dbt-core's
//! materializations run them: `before_begin` pre-hooks on the connection before
//! the build's transaction, the other pre-hooks inside it before the build, the
//! other post-hooks inside it once the new relation is swapped in (so `{{ this }}`
//! is the new relation and a failing hook rolls everything back), and
//! `after_commit` post-hooks after the commit. Each hook is sent as it was
//! rendered, with the simple protocol (a hook may hold several statements, as
//! dbt allows).

use tokio_postgres::GenericClient;

use crate::project::Hook;

use super::swap::Failure;

/// Runs the hooks of `hooks` whose `transaction` is `inside`, in order; the first
/// that fails stops the rest and fails the node.
pub(super) async fn run<C: GenericClient>(
    client: &C,
    hooks: &[Hook],
    inside: bool,
) -> Result<(), Failure> {
    for h in hooks.iter().filter(|h| h.transaction == inside) {
        client
            .batch_execute(h.sql.as_str())
            .await
            .map_err(|error| Failure::Db {
                error,
                statement: h.sql.clone(),
            })?;
    }
    Ok(())
}
