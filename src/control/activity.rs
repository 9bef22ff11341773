//! The activity recorder: every tool call, prompt get and resource read is handed to
//! [`Recorder::record`], which only puts it on a bounded queue — the request path never waits
//! for the store. One writer task takes whatever has queued (up to `BATCH`, waiting `COALESCE` for
//! more after the first) and writes it in one transaction, raising an ALERT notification for each
//! failure, as the App does. When the queue is full, entries are dropped and counted, with a
//! warning.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::control::{Activity, ActivityAction, ControlPlane, NewNotification, Severity};

/// Entries the queue holds. A burst larger than this while the disk is slow is dropped, counted.
const QUEUE: usize = 4096;
/// Entries written per transaction at most.
const BATCH: usize = 512;
/// How long the writer waits for more entries after the first, so a run of calls becomes one
/// transaction instead of one each (a commit costs more CPU than forwarding a call).
const COALESCE: std::time::Duration = std::time::Duration::from_millis(50);
/// How long ALERT notifications of failures live, as in the App.
const ALERT_TTL_MS: i64 = 7 * 86_400_000;
/// Error text is cut to this many characters, as the original does.
const ERROR_LIMIT: usize = 1000;

/// Hands activity to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    queue: mpsc::Sender<Activity>,
    dropped: Arc<AtomicU64>,
}

impl Recorder {
    /// Starts the writer task on `tracker`; it drains the queue and ends when `cancel` fires.
    pub fn start(
        control: Arc<dyn ControlPlane>,
        tracker: &TaskTracker,
        cancel: CancellationToken,
    ) -> Recorder {
        let (queue, receiver) = mpsc::channel(QUEUE);
        tracker.spawn(write(control, receiver, cancel));
        Recorder {
            queue,
            dropped: Arc::default(),
        }
    }

    /// Queues one entry without waiting (its error text redacted first); drops it (counted)
    /// when the queue is full.
    pub fn record(&self, mut activity: Activity) {
        activity.error = activity.error.map(|error| redact(&error));
        if self.queue.try_send(activity).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped == 1 || dropped.is_power_of_two() {
                tracing::warn!(dropped, "activity queue full, entries dropped");
            }
        }
    }

    /// How many entries were dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn write(
    control: Arc<dyn ControlPlane>,
    mut receiver: mpsc::Receiver<Activity>,
    cancel: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let received = tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH) => received,
            () = cancel.cancelled() => {
                // Shutting down: write what is still queued, then stop.
                receiver.close();
                while receiver.recv_many(&mut batch, BATCH).await > 0 {
                    flush(control.as_ref(), &mut batch).await;
                }
                return;
            }
        };
        if received == 0 {
            return;
        }
        let deadline = tokio::time::sleep(COALESCE);
        tokio::pin!(deadline);
        while batch.len() < BATCH {
            let more = BATCH - batch.len();
            tokio::select! {
                received = receiver.recv_many(&mut batch, more) => if received == 0 { break },
                () = &mut deadline => break,
                () = cancel.cancelled() => break,
            }
        }
        flush(control.as_ref(), &mut batch).await;
    }
}

async fn flush(control: &dyn ControlPlane, batch: &mut Vec<Activity>) {
    let entries = std::mem::take(batch);
    let alerts: Vec<NewNotification> = entries
        .iter()
        .filter(|entry| !entry.success && control.raises_alerts())
        .map(alert)
        .collect();
    if let Err(error) = control.record_activity(entries).await {
        tracing::warn!("activity not recorded: {error}");
    }
    for alert in alerts {
        if let Err(error) = control.create_notification(alert).await {
            tracing::warn!("failure alert not recorded: {error}");
        }
    }
}

/// The ALERT notification for a failed request, worded as the App words it.
fn alert(entry: &Activity) -> NewNotification {
    let (title, what) = match entry.action {
        ActivityAction::ToolCall => ("Tool execution failed", "Tool"),
        ActivityAction::PromptGet => ("Prompt retrieval failed", "Prompt"),
        ActivityAction::ResourceRead => ("Resource read failed", "Resource"),
    };
    let mut message = format!(
        "{what} \"{}\" from {} failed",
        entry.item, entry.server_name
    );
    if let Some(error) = &entry.error {
        message.push_str(&format!(": {error}"));
    }
    message.push_str(&format!(" ({}ms)", entry.duration_ms));
    NewNotification {
        kind: "ALERT".into(),
        title: title.into(),
        message,
        severity: Severity::Alert,
        link: None,
        ttl_ms: ALERT_TTL_MS,
        send_email: false,
    }
}

/// Hides secrets in error text (`password=…`, `token: …`, `Bearer …`, `api_key=…`, any case)
/// and cuts it to 1000 characters, as the original's sanitiser does.
pub fn redact(text: &str) -> String {
    crate::security::text::redact_bounded(text, ERROR_LIMIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::tests::{Place, on_both_stores};

    on_both_stores!(the_writer_records_what_was_queued_and_alerts_on_failures_before_it_stops);

    fn entry(item: &str, success: bool) -> Activity {
        Activity {
            at: crate::control::time::now_ms(),
            action: ActivityAction::ToolCall,
            server_name: "demo".into(),
            server_uuid: "u".into(),
            item: item.into(),
            duration_ms: 3,
            success,
            error: (!success).then(|| "boom token=secret".into()),
            tool_error: false,
        }
    }

    async fn the_writer_records_what_was_queued_and_alerts_on_failures_before_it_stops(
        place: &Place,
    ) {
        let store = place.open().await;
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let recorder = Recorder::start(store.clone(), &tracker, cancel.clone());
        recorder.record(entry("echo", true));
        recorder.record(entry("echo", true));
        recorder.record(entry("fail", false));
        cancel.cancel();
        tracker.close();
        tracker.wait().await;
        let stats = store.activity_stats(0).await.unwrap();
        let calls: Vec<(&str, u64, u64)> = stats
            .iter()
            .map(|row| (row.item.as_str(), row.calls, row.errors))
            .collect();
        assert_eq!(calls, [("echo", 2, 0), ("fail", 1, 1)]);
        let alerts = store.list_notifications(false, None).await.unwrap();
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].title, "Tool execution failed");
        assert_eq!(
            alerts[0].message,
            "Tool \"fail\" from demo failed: boom [REDACTED] (3ms)"
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let (queue, _receiver) = mpsc::channel(1);
        let recorder = Recorder {
            queue,
            dropped: Arc::default(),
        };
        recorder.record(entry("a", true));
        recorder.record(entry("b", true));
        recorder.record(entry("c", true));
        assert_eq!(recorder.dropped(), 2);
    }

    #[test]
    fn secrets_in_error_text_are_redacted() {
        assert_eq!(
            redact("boom token=abc123 Bearer xyz password: hunter2 API_KEY=k ok"),
            "boom [REDACTED] [REDACTED] [REDACTED] [REDACTED] ok"
        );
        assert_eq!(redact("no secrets here"), "no secrets here");
        assert_eq!(redact("tokens are fine"), "tokens are fine");
    }

    #[test]
    fn long_error_text_is_cut_to_1000_characters() {
        let long = "é".repeat(1500);
        let cut = redact(&long);
        assert_eq!(cut.chars().count(), 1003);
        assert!(cut.ends_with("..."));
    }
}
