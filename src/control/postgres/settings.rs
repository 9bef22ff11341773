//! Settings (disabled servers and tools, workspaces), server UUIDs and the catalog cache. Every
//! settings change bumps `meta.settings_version` in the same transaction, which running proxies
//! poll to pick changes up, and sends `NOTIFY pluggedin_settings` with the new version.

use std::collections::BTreeMap;

use tokio_postgres::{Client, Transaction};

use crate::config::ToolExposure;
use crate::control::time::now_ms;
use crate::control::{CachedServer, Result, Settings, Workspace};

/// What [`set_enabled`] turns on or off.
#[derive(Clone, Copy)]
pub(super) enum Switch {
    Server,
    Tool,
}

impl Switch {
    fn table(self) -> &'static str {
        match self {
            Switch::Server => "disabled_servers",
            Switch::Tool => "disabled_tools",
        }
    }
}

async fn bump(transaction: &Transaction<'_>) -> Result<()> {
    transaction
        .execute(
            "WITH bumped AS (
                 UPDATE meta SET value = (value::bigint + 1)::text
                 WHERE key = 'settings_version' RETURNING value
             )
             SELECT pg_notify('pluggedin_settings', value) FROM bumped",
            &[],
        )
        .await?;
    Ok(())
}

pub(super) async fn version(client: &Client) -> Result<i64> {
    Ok(client
        .query_one(
            "SELECT value::bigint FROM meta WHERE key = 'settings_version'",
            &[],
        )
        .await?
        .try_get(0)?)
}

pub(super) async fn read(client: &Client) -> Result<Settings> {
    let names = async |sql: &str| -> Result<_> {
        let rows = client.query(sql, &[]).await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<_, String>(0)?))
            .collect::<Result<_>>()
    };
    let disabled_servers = names("SELECT name FROM disabled_servers").await?;
    let disabled_tools = names("SELECT name FROM disabled_tools").await?;
    let workspace = match active_workspace(client).await? {
        Some(name) => workspaces(client)
            .await?
            .into_iter()
            .find(|workspace| workspace.name == name),
        None => None,
    };
    Ok(Settings {
        disabled_servers,
        disabled_tools,
        workspace,
    })
}

pub(super) async fn set_enabled(
    transaction: &Transaction<'_>,
    switch: Switch,
    name: &str,
    enabled: bool,
) -> Result<()> {
    let table = switch.table();
    let sql = if enabled {
        format!("DELETE FROM {table} WHERE name = $1")
    } else {
        format!("INSERT INTO {table} (name) VALUES ($1) ON CONFLICT DO NOTHING")
    };
    transaction.execute(&sql, &[&name]).await?;
    bump(transaction).await
}

pub(super) async fn workspaces(client: &Client) -> Result<Vec<Workspace>> {
    let rows = client
        .query(
            "SELECT w.name, w.tool_exposure, s.server FROM workspaces w
             LEFT JOIN workspace_servers s ON s.workspace = w.name",
            &[],
        )
        .await?;
    let mut by_name: BTreeMap<String, Workspace> = BTreeMap::new();
    for row in rows {
        let (name, exposure, server): (String, Option<String>, Option<String>) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let workspace = by_name.entry(name.clone()).or_insert_with(|| Workspace {
            tool_exposure: crate::control::stored_exposure(&name, exposure.as_deref()),
            name,
            servers: Default::default(),
        });
        workspace.servers.extend(server);
    }
    Ok(by_name.into_values().collect())
}

pub(super) async fn create_workspace(
    transaction: &Transaction<'_>,
    workspace: &Workspace,
) -> Result<bool> {
    let created = transaction
        .execute(
            "INSERT INTO workspaces (name, created_at, tool_exposure) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[
                &workspace.name,
                &now_ms(),
                &workspace.tool_exposure.map(ToolExposure::as_str),
            ],
        )
        .await?
        == 1;
    if created {
        let servers: Vec<&str> = workspace.servers.iter().map(String::as_str).collect();
        transaction
            .execute(
                "INSERT INTO workspace_servers (workspace, server)
                 SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
                &[&workspace.name, &servers],
            )
            .await?;
        bump(transaction).await?;
    }
    Ok(created)
}

pub(super) async fn delete_workspace(transaction: &Transaction<'_>, name: &str) -> Result<bool> {
    let deleted = transaction
        .execute("DELETE FROM workspaces WHERE name = $1", &[&name])
        .await?
        == 1;
    if deleted {
        transaction
            .execute(
                "DELETE FROM meta WHERE key = 'active_workspace' AND value = $1",
                &[&name],
            )
            .await?;
        bump(transaction).await?;
    }
    Ok(deleted)
}

pub(super) async fn set_workspace_exposure(
    transaction: &Transaction<'_>,
    name: &str,
    exposure: Option<ToolExposure>,
) -> Result<bool> {
    let set = transaction
        .execute(
            "UPDATE workspaces SET tool_exposure = $2 WHERE name = $1",
            &[&name, &exposure.map(ToolExposure::as_str)],
        )
        .await?
        == 1;
    if set {
        bump(transaction).await?;
    }
    Ok(set)
}

pub(super) async fn switch_workspace(
    transaction: &Transaction<'_>,
    name: Option<&str>,
) -> Result<bool> {
    match name {
        Some(name) => {
            let exists = transaction
                .query_opt("SELECT 1 FROM workspaces WHERE name = $1", &[&name])
                .await?
                .is_some();
            if !exists {
                return Ok(false);
            }
            transaction
                .execute(
                    "INSERT INTO meta (key, value) VALUES ('active_workspace', $1)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    &[&name],
                )
                .await?;
        }
        None => {
            transaction
                .execute("DELETE FROM meta WHERE key = 'active_workspace'", &[])
                .await?;
        }
    }
    bump(transaction).await?;
    Ok(true)
}

pub(super) async fn active_workspace(client: &Client) -> Result<Option<String>> {
    Ok(client
        .query_opt("SELECT value FROM meta WHERE key = 'active_workspace'", &[])
        .await?
        .map(|row| row.try_get(0))
        .transpose()?)
}

/// The server's UUID; a new one is made once (writes are serialized, so two proxies asking
/// together both read the first one's).
pub(super) async fn server_uuid(transaction: &Transaction<'_>, server: &str) -> Result<String> {
    transaction
        .execute(
            "INSERT INTO server_ids (name, uuid) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&server, &uuid::Uuid::new_v4().to_string()],
        )
        .await?;
    Ok(transaction
        .query_one("SELECT uuid FROM server_ids WHERE name = $1", &[&server])
        .await?
        .try_get(0)?)
}

pub(super) async fn cache_server(
    transaction: &Transaction<'_>,
    server: &CachedServer,
) -> Result<()> {
    transaction
        .execute(
            "INSERT INTO catalog_cache (uuid, name, lists, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, lists = excluded.lists,
                 updated_at = excluded.updated_at",
            &[
                &server.uuid,
                &server.name,
                &server.lists.to_string(),
                &server.updated_at,
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn cached_servers(client: &Client) -> Result<Vec<CachedServer>> {
    let rows = client
        .query(
            "SELECT uuid, name, lists, updated_at FROM catalog_cache",
            &[],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let lists: String = row.try_get(2)?;
            Ok(CachedServer {
                uuid: row.try_get(0)?,
                name: row.try_get(1)?,
                lists: serde_json::from_str(&lists).unwrap_or_default(),
                updated_at: row.try_get(3)?,
            })
        })
        .collect()
}
