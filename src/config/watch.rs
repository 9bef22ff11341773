//! Watching the config file: edits take effect without a restart. The parent directory is watched
//! (editors replace files by renaming), events are debounced, and a file that does not parse is
//! refused with a logged reason while the running configuration stays.

use std::path::PathBuf;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Config;

/// Editors write a file in several steps; wait this long after the last event before reading.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Starts watching `path`. Each time the file changes and parses to something other than the
/// last good configuration, the new one is sent on the returned channel. The watcher stops when
/// `cancel` fires or the receiver is dropped.
pub fn watch(
    path: PathBuf,
    current: Config,
    cancel: CancellationToken,
) -> Result<mpsc::Receiver<Config>, notify::Error> {
    let (event_tx, mut event_rx) = mpsc::channel::<()>(1);
    let file_name = path.file_name().map(ToOwned::to_owned);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        let concerns_file = event
            .paths
            .iter()
            .any(|changed| changed.file_name() == file_name.as_deref());
        if concerns_file && !event.kind.is_access() {
            // A full channel already holds a wake-up; dropping this one loses nothing.
            let _ = event_tx.try_send(());
        }
    })?;
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    watcher.watch(&directory, RecursiveMode::NonRecursive)?;

    let (config_tx, config_rx) = mpsc::channel(4);
    tokio::spawn(async move {
        // The watcher lives as long as this task.
        let _watcher = watcher;
        let mut last_good = current;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                event = event_rx.recv() => if event.is_none() { return },
            }
            // Let a burst of events settle.
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(DEBOUNCE) => break,
                    event = event_rx.recv() => if event.is_none() { return },
                }
            }
            match Config::load(&path) {
                Ok(config) if config == last_good => {
                    tracing::debug!(file = %path.display(), "config file touched, nothing changed");
                }
                Ok(config) => {
                    tracing::info!(file = %path.display(), "config file changed, applying it");
                    last_good = config.clone();
                    if config_tx.send(config).await.is_err() {
                        return;
                    }
                }
                Err(error) => {
                    tracing::error!(
                        "config edit refused, the running configuration stays: {error}"
                    );
                }
            }
        }
    });
    Ok(config_rx)
}
