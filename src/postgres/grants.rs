//! Applying a model's or seed's `grants` inside the swap's transaction, after the
//! new relation is in place and the old one's grants were carried over: the
//! relation then has exactly the configured privileges, as dbt-postgres leaves a
//! rebuilt table or view. Every table-level privilege of a role other than the
//! owner and the building user, and every column-level one, is revoked unless
//! configured; the configured ones are granted. Role names are folded to lower
//! case when they are plain names (as PostgreSQL reads dbt's unquoted ones) and
//! quoted; the statements are built by the server with `format(%I)`.

use tokio_postgres::Transaction;

use crate::manifest::relation_name;
use crate::project::Grants;

use super::swap::Failure;

/// Makes the grants on `schema.name` exactly `grants`; without `revoke`, only
/// grants the missing ones (dbt's `should_revoke` false on a kept relation).
pub(super) async fn apply(
    tx: &Transaction<'_>,
    schema: &str,
    name: &str,
    grants: &Grants,
    revoke: bool,
) -> Result<(), Failure> {
    let relation = relation_name(schema, name);
    let (mut privileges, mut roles) = (Vec::new(), Vec::new());
    for (privilege, grantees) in grants {
        for role in grantees {
            privileges.push(privilege.to_ascii_uppercase());
            roles.push(fold(role));
        }
    }
    let rows = tx
        .query(
            "with rel as (select $1::text::regclass as oid),
             wanted as (select * from unnest($2::text[], $3::text[]) as w(privilege, role)),
             current as (
               select a.privilege_type as privilege, g.rolname::text as role
               from rel, pg_class c cross join lateral aclexplode(c.relacl) a
               join pg_roles g on g.oid = a.grantee
               where c.oid = rel.oid and a.grantee <> c.relowner and g.rolname <> current_user
             )
             select format('revoke %s on %s from %I', privilege, $1::text, role)
             from current where $4 and (privilege, role) not in (select privilege, role from wanted)
             union all
             select distinct format('revoke all (%I) on %s from %s', at.attname, $1::text,
                      case when a.grantee = 0 then 'public' else quote_ident(g.rolname) end)
             from rel, pg_attribute at cross join lateral aclexplode(at.attacl) a
             left join pg_roles g on g.oid = a.grantee
             where $4 and at.attrelid = rel.oid and at.attnum > 0 and at.attacl is not null
             union all
             select format('grant %s on %s to %I', privilege, $1::text, role)
             from wanted where (privilege, role) not in (select privilege, role from current)",
            &[&relation, &privileges, &roles, &revoke],
        )
        .await?;
    for r in rows {
        let statement: String = r.get(0);
        tx.execute(statement.as_str(), &[])
            .await
            .map_err(|error| Failure::Db { error, statement })?;
    }
    Ok(())
}

/// A role as PostgreSQL reads it unquoted: a plain name folded to lower case.
fn fold(role: &str) -> String {
    let role = role.trim();
    let plain = role
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    match role.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None if plain => role.to_ascii_lowercase(),
        None => role.to_string(),
    }
}
