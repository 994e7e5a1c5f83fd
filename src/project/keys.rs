//! Which keys dbt 1.10 knows, and what reluvia-transform does with each: the
//! catalogue behind "nothing ignored silently". A key is
//!
//! - implemented: it does what dbt does;
//! - unsupported: dbt gives it a meaning on PostgreSQL that is not built yet, so a
//!   project using it is refused (exit 2) rather than built differently;
//! - inert: dbt-postgres accepts it without changing what is built (another
//!   warehouse's setting, documentation, a semantic-layer setting);
//! - custom: dbt does not know it; dbt 1.10 keeps it readable through
//!   `config.get` with a warning, and so do we.

/// The kinds of resource a config key applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Model,
    DataTest,
    Source,
    Seed,
    /// Analyses take the configs of models (only `enabled`, `tags`, `meta`,
    /// `docs` and `group` change anything for a node that is never run).
    Analysis,
    Snapshot,
}

impl Resource {
    /// The `dbt_project.yml` key of its config tree.
    pub(crate) fn tree_key(self) -> &'static str {
        match self {
            Resource::Model => "models",
            Resource::DataTest => "data_tests",
            Resource::Source => "sources",
            Resource::Seed => "seeds",
            Resource::Analysis => "analyses",
            Resource::Snapshot => "snapshots",
        }
    }
}

/// What reluvia-transform does with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyClass {
    Implemented,
    /// Refused, with the reason shown to the user.
    Unsupported(&'static str),
    Inert,
    Custom,
}

const MODEL: &[&str] = &[
    "enabled",
    "materialized",
    "schema",
    "alias",
    "database",
    "tags",
    "meta",
    "docs",
    "group",
    "access",
    "description",
    "full_refresh",
    "contract",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "indexes",
    "grants",
    "persist_docs",
    "unlogged",
    "on_configuration_change",
    // Ours: PostgreSQL settings for the statements that build the model.
    "session_settings",
    // Statements run before the model's create statement, in its transaction.
    "sql_header",
];

/// The configs of incremental models: implemented for models, and changing
/// nothing dbt-postgres builds for the other resources.
const INCREMENTAL: &[&str] = &[
    "unique_key",
    "incremental_strategy",
    "incremental_predicates",
    "predicates",
    "merge_update_columns",
    "merge_exclude_columns",
    "on_schema_change",
    // Microbatch models (`incremental_strategy='microbatch'`).
    "event_time",
    "batch_size",
    "begin",
    "lookback",
    "concurrent_batches",
];

const DATA_TEST: &[&str] = &[
    "enabled",
    "severity",
    "where",
    "error_if",
    "warn_if",
    "store_failures",
    "limit",
    "tags",
    "meta",
    "group",
    "description",
    "fail_calc",
];

const SOURCE: &[&str] = &[
    "enabled",
    "tags",
    "meta",
    "freshness",
    "loaded_at_field",
    "description",
];

const SEED: &[&str] = &[
    "enabled",
    "schema",
    "alias",
    "database",
    "tags",
    "meta",
    "docs",
    "group",
    "description",
    "full_refresh",
    "column_types",
    "quote_columns",
    "delimiter",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "indexes",
    "grants",
    "persist_docs",
];

const SNAPSHOT: &[&str] = &[
    "enabled",
    "materialized",
    "schema",
    "alias",
    "database",
    "tags",
    "meta",
    "docs",
    "group",
    "description",
    "strategy",
    "unique_key",
    "updated_at",
    "check_cols",
    "hard_deletes",
    "invalidate_hard_deletes",
    "target_schema",
    "target_database",
    "snapshot_meta_column_names",
    "pre-hook",
    "post-hook",
    "pre_hook",
    "post_hook",
    "dbt_valid_to_current",
    "sql_header",
];

/// Keys dbt gives a meaning on PostgreSQL that is not built yet, with why.
fn unsupported(resource: Resource, key: &str) -> Option<&'static str> {
    Some(match (resource, key) {
        (Resource::Snapshot, "grants" | "indexes" | "contract") => {
            "grants, indexes and contracts of snapshots are not supported yet"
        }
        (_, "pre-hook" | "post-hook" | "pre_hook" | "post_hook") => {
            "hooks of data tests and sources are not supported yet"
        }
        (_, "grants") => "grants of stored test failures and sources are not supported yet",
        (_, "indexes") => "indexes of stored test failures and sources are not supported yet",
        (_, "persist_docs") => {
            "persist_docs of stored test failures and sources is not supported yet"
        }
        (Resource::DataTest, "unlogged") => {
            "unlogged tables of stored test failures are not supported yet"
        }
        (_, "session_settings") => {
            "session_settings of seeds, snapshots, sources and data tests are not supported yet"
        }
        (Resource::Source, "loaded_at_query") => "loaded_at_query is not supported yet",
        (Resource::DataTest, "store_failures_as") => "store_failures_as is not supported yet",
        (Resource::DataTest, "schema" | "alias" | "database") => {
            "a custom schema, alias or database for stored test failures is not supported yet"
        }
        _ => return None,
    })
}

/// Keys dbt-core 1.10 knows for the resource (its project JSON schema, every
/// adapter's included) that change nothing dbt-postgres builds.
const INERT: &[&str] = &[
    "as_columnstore",
    "auto_liquid_cluster",
    "auto_refresh",
    "automatic_clustering",
    "backup",
    "base_location_root",
    "base_location_subpath",
    "bind",
    "buckets",
    "catalog",
    "catalog_name",
    "cluster_by",
    "clustered_by",
    // Seed configs, which change nothing on other resources.
    "column_types",
    "compression",
    "copy_grants",
    "databricks_compute",
    "databricks_tags",
    "delimiter",
    "dist",
    "enable_refresh",
    "external_volume",
    "file_format",
    "freshness",
    "grant_access_to",
    "hours_to_expiration",
    "include_full_name_in_path",
    "initialize",
    "kms_key_name",
    "labels",
    "labels_from_meta",
    "liquid_clustered_by",
    "location",
    "location_root",
    "matched_condition",
    "max_staleness",
    "merge_with_schema_evolution",
    "not_matched_by_source_action",
    "not_matched_by_source_condition",
    "not_matched_condition",
    "packages",
    "partition_by",
    "partition_expiration_days",
    "partitions",
    "query_tag",
    // A node's own `quoting` config is recorded by dbt but not read when it names
    // relations (the project's `quoting:` and a source's are).
    "quoting",
    "quote_columns",
    "refresh_interval_minutes",
    "refresh_mode",
    "require_partition_filter",
    "row_access_policy",
    "schedule",
    "secure",
    "skip_matched_step",
    "skip_not_matched_step",
    "snowflake_warehouse",
    "sort",
    "sort_type",
    "source_alias",
    // Models and snapshots run it; dbt-postgres builds seeds without it and reads
    // no source's.
    "sql_header",
    "static_analysis",
    "table_format",
    "table_tag",
    "table_type",
    "target_alias",
    "target_lag",
    "tblproperties",
    "tmp_relation_type",
    "transient",
    // Only materialized views read it.
    "on_configuration_change",
    // dbt-postgres creates seeds' tables without it.
    "unlogged",
];

/// What reluvia-transform does with config `key` of `resource`.
pub(crate) fn classify(resource: Resource, key: &str) -> KeyClass {
    let implemented = match resource {
        Resource::Model | Resource::Analysis => MODEL,
        Resource::DataTest => DATA_TEST,
        Resource::Source => SOURCE,
        Resource::Seed => SEED,
        Resource::Snapshot => SNAPSHOT,
    };
    // `event_time` of a source, seed or snapshot filters it inside a microbatch
    // model's batches.
    let event_time = key == "event_time"
        && matches!(
            resource,
            Resource::Source | Resource::Seed | Resource::Snapshot
        );
    if implemented.contains(&key)
        || (resource == Resource::Model && INCREMENTAL.contains(&key))
        || event_time
    {
        KeyClass::Implemented
    } else if let Some(why) = unsupported(resource, key) {
        KeyClass::Unsupported(why)
    } else if resource == Resource::Source && key == "quoting" {
        // A source's quoting is a property beside `config:`, not a config.
        KeyClass::Custom
    } else if INERT.contains(&key) || INCREMENTAL.contains(&key) {
        KeyClass::Inert
    } else {
        KeyClass::Custom
    }
}

/// Whether a key of a `dbt_project.yml` tree without `+` is a config rather than
/// a folder: dbt 1.10 reads a known config name as a config when its value is not
/// a mapping (and warns that it should have a `+`).
pub(crate) fn is_config_name(resource: Resource, key: &str) -> bool {
    !matches!(classify(resource, key), KeyClass::Custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(
            classify(Resource::Model, "materialized"),
            KeyClass::Implemented
        );
        assert_eq!(classify(Resource::Model, "grants"), KeyClass::Implemented);
        assert!(matches!(
            classify(Resource::Source, "grants"),
            KeyClass::Unsupported(_)
        ));
        assert_eq!(classify(Resource::Model, "cluster_by"), KeyClass::Inert);
        assert_eq!(classify(Resource::Model, "contract"), KeyClass::Implemented);
        assert_eq!(classify(Resource::Model, "owner_team"), KeyClass::Custom);
        assert_eq!(classify(Resource::DataTest, "limit"), KeyClass::Implemented);
        assert_eq!(
            classify(Resource::Seed, "column_types"),
            KeyClass::Implemented
        );
        assert_eq!(classify(Resource::Seed, "post-hook"), KeyClass::Implemented);
        assert!(matches!(
            classify(Resource::DataTest, "pre-hook"),
            KeyClass::Unsupported(_)
        ));
        assert_eq!(classify(Resource::Model, "delimiter"), KeyClass::Inert);
        assert!(matches!(
            classify(Resource::Source, "loaded_at_query"),
            KeyClass::Unsupported(_)
        ));
    }
}
