//! The schema's migrations, one set per database and numbered alike: a
//! change has the same number and name on SQLite and PostgreSQL (a test
//! holds the two lists equal).
//!
//! PostgreSQL databases made before the numbers were aligned recorded one
//! baseline, `0001_schema` (SQLite's 0001-0005), then 0002-0007 (SQLite's
//! 0006-0011). [`postgres`] rewrites those rows of `_sqlx_migrations` to
//! the current numbers before sqlx's migrator checks them.

use sqlx::migrate::{Migrate, Migration, Migrator};
use sqlx::{AnyConnection, AnyPool, Connection, Row};

use super::query;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL migrations as recorded before the renumbering: version
/// and description (what sqlx stores), and the version of the same change
/// now.
const OLD_POSTGRES: &[(i64, &str, i64)] = &[
    (1, "schema", 1),
    (2, "signing keys", 6),
    (3, "kill switch", 7),
    (4, "key rate limits", 8),
    (5, "signing key rate limits", 9),
    (6, "forward claims", 10),
    (7, "issued card authorizations", 11),
];

/// The current migrations that the old baseline (version 1) applied at once
/// besides version 1 itself.
const BASELINE_REST: std::ops::RangeInclusive<i64> = 2..=5;

pub(super) async fn sqlite(pool: &AnyPool) -> anyhow::Result<()> {
    SQLITE.run(pool).await?;
    Ok(())
}

/// Renumbers an old database's records, then applies what is pending, all
/// under sqlx's migration lock (a session advisory lock on the database):
/// replicas starting together take turns, and the later ones find the rows
/// renumbered already. The lock is taken on a connection of its own, so
/// that closing it releases the lock whatever fails; the migrator takes the
/// same lock again on it (advisory locks are re-entrant).
pub(super) async fn postgres(url: &str) -> anyhow::Result<()> {
    let mut conn = AnyConnection::connect(url).await?;
    conn.lock().await?;
    renumber(&mut conn).await?;
    POSTGRES.run_direct(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

/// Rewrites the old numbering's rows to the current versions, descriptions
/// and checksums, in one transaction; does nothing on a database that is
/// new or already renumbered. The checksums are replaced, not checked: the
/// descriptions identify the old migrations, whose text never changed.
async fn renumber(conn: &mut AnyConnection) -> anyhow::Result<()> {
    let table =
        query("SELECT to_regclass('_sqlx_migrations') IS NOT NULL AS present").fetch_one(&mut *conn).await?;
    if !table.get::<bool, _>("present") {
        return Ok(());
    }
    let rows = query("SELECT version, description FROM _sqlx_migrations ORDER BY version DESC")
        .fetch_all(&mut *conn)
        .await?;
    let applied: Vec<(i64, String)> = rows.iter().map(|r| (r.get("version"), r.get("description"))).collect();
    if !applied.iter().any(|(version, description)| *version == 1 && description == "schema") {
        return Ok(());
    }
    let mut tx = conn.begin().await?;
    // Highest first: each row moves up to a version already vacated.
    for (version, description) in &applied {
        let Some(&(_, _, new)) = OLD_POSTGRES.iter().find(|(v, d, _)| v == version && d == description)
        else {
            anyhow::bail!(
                "_sqlx_migrations holds version {version} ({description}), which no purser release \
                 recorded beside the old baseline `schema`: renumber by hand (docs/operations.md)"
            );
        };
        let m = current(new);
        query("UPDATE _sqlx_migrations SET version = ?, description = ?, checksum = ? WHERE version = ?")
            .bind(m.version)
            .bind(m.description.to_string())
            .bind(m.checksum.to_vec())
            .bind(version)
            .execute(&mut *tx)
            .await?;
    }
    for version in BASELINE_REST {
        let m = current(version);
        query(
            "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
             SELECT ?, ?, installed_on, TRUE, ?, 0 FROM _sqlx_migrations WHERE version = 1",
        )
        .bind(m.version)
        .bind(m.description.to_string())
        .bind(m.checksum.to_vec())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    tracing::info!(migrations = applied.len(), "renumbered the PostgreSQL migrations to match SQLite's");
    Ok(())
}

/// The current PostgreSQL migration `version` (a test holds that every
/// renumbering target exists).
fn current(version: i64) -> &'static Migration {
    POSTGRES.iter().find(|m| m.version == version).expect("a renumbering target is a migration")
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::{test_postgres, Store};

    fn listed(migrator: &Migrator) -> Vec<(i64, String)> {
        migrator.iter().map(|m| (m.version, m.description.to_string())).collect()
    }

    #[test]
    fn both_databases_number_and_name_their_migrations_alike() {
        assert_eq!(listed(&SQLITE), listed(&POSTGRES));
        let versions: Vec<i64> = SQLITE.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=versions.len() as i64).collect::<Vec<_>>(), "numbered without gaps");
        // Every renumbering target exists (`current` would panic).
        for version in OLD_POSTGRES.iter().map(|&(_, _, new)| new).chain(BASELINE_REST) {
            assert_eq!(current(version).version, version);
        }
    }

    /// The migrations `_sqlx_migrations` records as applied successfully,
    /// as (version, description, checksum).
    async fn recorded(pool: &AnyPool) -> Vec<(i64, String, Vec<u8>)> {
        let rows = query(
            "SELECT version, description, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        rows.iter().map(|r| (r.get("version"), r.get("description"), r.get("checksum"))).collect()
    }

    fn expected(migrator: &Migrator) -> Vec<(i64, String, Vec<u8>)> {
        migrator.iter().map(|m| (m.version, m.description.to_string(), m.checksum.to_vec())).collect()
    }

    #[tokio::test]
    async fn a_new_database_records_the_same_versions_on_sqlite_and_postgresql() {
        let Some(url) = test_postgres().await else { return };
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Store::connect(&format!("sqlite://{}", dir.path().join("db").display())).await.unwrap();
        let postgres = Store::connect(&url).await.unwrap();
        // The checksums differ: the texts are each database's own.
        let versions =
            |rows: Vec<(i64, String, Vec<u8>)>| rows.into_iter().map(|(v, d, _)| (v, d)).collect::<Vec<_>>();
        let on_sqlite = versions(recorded(&sqlite.read).await);
        assert_eq!(on_sqlite, versions(recorded(&postgres.read).await));
        assert_eq!(on_sqlite.len(), SQLITE.iter().count());
        assert_eq!(recorded(&postgres.read).await, expected(&POSTGRES));
        sqlite.close().await;
        postgres.close().await;
    }

    /// The schema's shape, for comparing two schemas: columns, constraints,
    /// indexes, triggers and functions, one line each.
    async fn shape(pool: &AnyPool) -> Vec<String> {
        let mut lines = Vec::new();
        for sql in [
            "SELECT concat_ws(' | ', table_name, ordinal_position, column_name, data_type, collation_name, \
             is_nullable, column_default) AS line FROM information_schema.columns \
             WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position",
            "SELECT concat_ws(' | ', conrelid::regclass::text, conname, pg_get_constraintdef(oid)) AS line \
             FROM pg_constraint WHERE connamespace = current_schema()::regnamespace ORDER BY 1",
            "SELECT concat_ws(' | ', indexname, replace(indexdef, current_schema() || '.', '')) AS line \
             FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1",
            "SELECT concat_ws(' | ', tgname, replace(pg_get_triggerdef(t.oid), current_schema() || '.', '')) AS line FROM pg_trigger t \
             JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = current_schema()::regnamespace \
             AND NOT t.tgisinternal ORDER BY 1",
            "SELECT concat_ws(' | ', proname, prosrc) AS line FROM pg_proc \
             WHERE pronamespace = current_schema()::regnamespace ORDER BY 1",
        ] {
            for row in query(sql).fetch_all(pool).await.unwrap() {
                lines.push(row.get::<String, _>("line"));
            }
        }
        lines
    }

    #[tokio::test]
    async fn an_old_postgresql_database_is_renumbered_in_place_with_its_data() {
        let Some(url) = test_postgres().await else { return };
        // The database as gateways before the renumbering left it.
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/postgres-migrations-before-renumbering");
        let old = Migrator::new(fixtures).await.unwrap();
        let pool = AnyPool::connect(&url).await.unwrap();
        old.run(&pool).await.unwrap();
        assert_eq!(recorded(&pool).await.len(), 7);
        query(
            "INSERT INTO agents (id, name, policy, trust_level, created_at, updated_at) \
             VALUES ('agt_old', 'from before', 'test', 'custom', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')",
        )
        .execute(&pool)
        .await
        .unwrap();

        // Two replicas start at once; then one restarts.
        let (a, b) = tokio::join!(Store::connect(&url), Store::connect(&url));
        let (a, b) = (a.unwrap(), b.unwrap());
        b.close().await;
        a.close().await;
        let store = Store::connect(&url).await.unwrap();

        let agent = store.agent("agt_old").await.unwrap().expect("the old row is still there");
        assert_eq!(
            (agent.name.as_str(), agent.created_at.as_str()),
            ("from before", "2026-01-01T00:00:00.000Z")
        );
        assert_eq!(recorded(&pool).await, expected(&POSTGRES));
        // The split baseline made exactly what the old one did.
        let fresh = Store::connect(&test_postgres().await.unwrap()).await.unwrap();
        assert_eq!(shape(&store.read).await, shape(&fresh.read).await);
        store.close().await;
        fresh.close().await;
    }
}
