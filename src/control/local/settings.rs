//! Settings (disabled servers and tools, workspaces), server UUIDs and the catalog cache.
//! Every settings change bumps `meta.settings_version` in the same transaction, which running
//! proxies poll to pick changes up.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::config::ToolExposure;
use crate::control::time::now_ms;
use crate::control::{CachedServer, Result, Settings, Workspace};

fn bump(connection: &Connection) -> Result<()> {
    connection.execute(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'settings_version'",
        [],
    )?;
    Ok(())
}

pub(super) fn version(connection: &Connection) -> Result<i64> {
    Ok(connection.query_row(
        "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'settings_version'",
        [],
        |row| row.get(0),
    )?)
}

pub(super) fn read(connection: &Connection) -> Result<Settings> {
    let names = |sql: &str| -> Result<_> {
        let mut statement = connection.prepare(sql)?;
        let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    let disabled_servers = names("SELECT name FROM disabled_servers")?;
    let disabled_tools = names("SELECT name FROM disabled_tools")?;
    let workspace = match active_workspace(connection)? {
        Some(name) => workspaces(connection)?
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

/// `table` is one of our two fixed table names, never user input.
pub(super) fn set_enabled(
    transaction: &Transaction<'_>,
    table: &'static str,
    name: &str,
    enabled: bool,
) -> Result<()> {
    let sql = if enabled {
        format!("DELETE FROM {table} WHERE name = ?1")
    } else {
        format!("INSERT OR IGNORE INTO {table} (name) VALUES (?1)")
    };
    transaction.execute(&sql, [name])?;
    bump(transaction)?;
    Ok(())
}

pub(super) fn workspaces(connection: &Connection) -> Result<Vec<Workspace>> {
    let mut statement = connection.prepare(
        "SELECT w.name, w.tool_exposure, s.server FROM workspaces w
         LEFT JOIN workspace_servers s ON s.workspace = w.name ORDER BY w.name, s.server",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, Option<String>>(1)?,
            row.get::<_, Option<String>>(2)?,
        ))
    })?;
    let mut by_name: BTreeMap<String, Workspace> = BTreeMap::new();
    for row in rows {
        let (name, exposure, server) = row?;
        let workspace = by_name.entry(name.clone()).or_insert_with(|| Workspace {
            tool_exposure: crate::control::stored_exposure(&name, exposure.as_deref()),
            name,
            servers: Default::default(),
        });
        workspace.servers.extend(server);
    }
    Ok(by_name.into_values().collect())
}

pub(super) fn create_workspace(
    transaction: &Transaction<'_>,
    workspace: &Workspace,
) -> Result<bool> {
    let created = transaction.execute(
        "INSERT OR IGNORE INTO workspaces (name, created_at, tool_exposure) VALUES (?1, ?2, ?3)",
        params![
            workspace.name,
            now_ms(),
            workspace.tool_exposure.map(ToolExposure::as_str)
        ],
    )? == 1;
    if created {
        for server in &workspace.servers {
            transaction.execute(
                "INSERT OR IGNORE INTO workspace_servers (workspace, server) VALUES (?1, ?2)",
                params![workspace.name, server],
            )?;
        }
        bump(transaction)?;
    }
    Ok(created)
}

pub(super) fn delete_workspace(transaction: &Transaction<'_>, name: &str) -> Result<bool> {
    let deleted = transaction.execute("DELETE FROM workspaces WHERE name = ?1", [name])? == 1;
    if deleted {
        transaction.execute(
            "DELETE FROM meta WHERE key = 'active_workspace' AND value = ?1",
            [name],
        )?;
        bump(transaction)?;
    }
    Ok(deleted)
}

pub(super) fn set_workspace_exposure(
    transaction: &Transaction<'_>,
    name: &str,
    exposure: Option<ToolExposure>,
) -> Result<bool> {
    let set = transaction.execute(
        "UPDATE workspaces SET tool_exposure = ?2 WHERE name = ?1",
        params![name, exposure.map(ToolExposure::as_str)],
    )? == 1;
    if set {
        bump(transaction)?;
    }
    Ok(set)
}

pub(super) fn switch_workspace(transaction: &Transaction<'_>, name: Option<&str>) -> Result<bool> {
    match name {
        Some(name) => {
            let exists = transaction
                .query_row("SELECT 1 FROM workspaces WHERE name = ?1", [name], |_| {
                    Ok(())
                })
                .optional()?
                .is_some();
            if !exists {
                return Ok(false);
            }
            transaction.execute(
                "INSERT INTO meta (key, value) VALUES ('active_workspace', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [name],
            )?;
        }
        None => {
            transaction.execute("DELETE FROM meta WHERE key = 'active_workspace'", [])?;
        }
    }
    bump(transaction)?;
    Ok(true)
}

pub(super) fn active_workspace(connection: &Connection) -> Result<Option<String>> {
    Ok(connection
        .query_row(
            "SELECT value FROM meta WHERE key = 'active_workspace'",
            [],
            |row| row.get(0),
        )
        .optional()?)
}

/// The server's UUID; a new one is made once, and if two processes race, both read the winner.
pub(super) fn server_uuid(transaction: &Transaction<'_>, server: &str) -> Result<String> {
    transaction.execute(
        "INSERT OR IGNORE INTO server_ids (name, uuid) VALUES (?1, ?2)",
        params![server, uuid::Uuid::new_v4().to_string()],
    )?;
    Ok(transaction.query_row(
        "SELECT uuid FROM server_ids WHERE name = ?1",
        [server],
        |row| row.get(0),
    )?)
}

/// Takes over the ids of the JSON file earlier versions kept, then renames it out of the way.
pub(super) fn import_legacy_ids(connection: &mut Connection, file: &Path) {
    let Ok(text) = std::fs::read_to_string(file) else {
        return;
    };
    let ids: BTreeMap<String, String> = match serde_json::from_str(&text) {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(file = %file.display(), "not importing unreadable server ids: {error}");
            return;
        }
    };
    let imported = super::immediate(connection, |transaction| {
        for (name, uuid) in &ids {
            transaction.execute(
                "INSERT OR IGNORE INTO server_ids (name, uuid) VALUES (?1, ?2)",
                params![name, uuid],
            )?;
        }
        Ok(())
    });
    if let Err(error) = imported {
        tracing::warn!(file = %file.display(), "cannot import the server ids: {error}");
        return;
    }
    let _ = std::fs::rename(file, file.with_extension("json.imported"));
    tracing::info!(
        servers = ids.len(),
        "server ids imported into the local store"
    );
}

pub(super) fn cache_server(transaction: &Transaction<'_>, server: &CachedServer) -> Result<()> {
    transaction.execute(
        "INSERT INTO catalog_cache (uuid, name, lists, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (uuid) DO UPDATE SET name = excluded.name, lists = excluded.lists,
             updated_at = excluded.updated_at",
        params![
            server.uuid,
            server.name,
            server.lists.to_string(),
            server.updated_at
        ],
    )?;
    Ok(())
}

pub(super) fn cached_servers(connection: &Connection) -> Result<Vec<CachedServer>> {
    let mut statement =
        connection.prepare("SELECT uuid, name, lists, updated_at FROM catalog_cache")?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
        ))
    })?;
    let mut servers = Vec::new();
    for row in rows {
        let (uuid, name, lists, updated_at) = row?;
        servers.push(CachedServer {
            uuid,
            name,
            lists: serde_json::from_str(&lists).unwrap_or_default(),
            updated_at,
        });
    }
    Ok(servers)
}
