//! Stdio servers that end with the proxy however the proxy ends. Each server runs in a process
//! group of its own, so that ending the group ends what it started too (`npx` → `node`, `uvx` →
//! `python`, a server's own helpers). A proxy that stops in order ends each group itself
//! (`child.rs`); a proxy killed with SIGKILL, or by a signal it does not handle, cannot. So on its
//! first spawn the proxy starts a **reaper**: this same binary, run with [`REAPER_ARG`], in a
//! process group of its own, with a pipe from the proxy on its stdin. The proxy writes `+<pgid>`
//! when a group starts and `-<pgid>` once it is gone; when the pipe closes — the proxy exited, in
//! whatever way — the reaper ends every group still listed (SIGTERM, a grace, SIGKILL) and exits.
//! It ignores SIGINT, SIGTERM and SIGHUP, which a terminal or a supervisor may send to the proxy's
//! whole group; only the pipe tells it to act.
//!
//! Why not `PR_SET_PDEATHSIG`: it reaches only the direct child (`npx`, not its `node`), and setting
//! it needs code between `fork` and `exec`, which this crate's `forbid(unsafe_code)` rules out.
//!
//! A group the proxy saw end is taken off the list, so the reaper never signals a group id that a
//! later, unrelated process could have taken (ids are reused only after the pid counter wraps).

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::{BufRead, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The argument that makes this binary a reaper (see [`run_if_reaper`]).
pub const REAPER_ARG: &str = "__pluggedin-reaper";

/// How long the reaper gives the groups between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// Every binary that spawns servers calls this first thing in `main`: when the process was
/// started as a reaper, it reaps and exits.
pub fn run_if_reaper() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(OsStr::new(REAPER_ARG)) && args.next().is_none() {
        reap();
        std::process::exit(0);
    }
}

/// Tells the reaper that a server's process group started.
pub(super) fn watch(pgid: u32) {
    send('+', pgid);
}

/// Tells the reaper that a server's process group is gone.
pub(super) fn forget(pgid: u32) {
    send('-', pgid);
}

fn send(sign: char, pgid: u32) {
    static REAPER: OnceLock<Option<Mutex<std::process::ChildStdin>>> = OnceLock::new();
    static FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let Some(reaper) = REAPER.get_or_init(start) else {
        return;
    };
    let mut stdin = reaper
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Err(error) = writeln!(stdin, "{sign}{pgid}")
        && !FAILED.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        tracing::warn!(
            "the reaper is gone ({error}): servers may outlive the proxy if it is killed"
        );
    }
}

/// Starts the reaper; `None` (said once) when it cannot run.
fn start() -> Option<Mutex<std::process::ChildStdin>> {
    use std::os::unix::process::CommandExt;
    let started = std::env::current_exe().and_then(|exe| {
        std::process::Command::new(exe)
            .arg(REAPER_ARG)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            // Its own group: a signal to the proxy's group does not reach it.
            .process_group(0)
            .spawn()
    });
    match started {
        // Never waited for: it outlives this process by design, and init reaps it then.
        Ok(mut child) => child.stdin.take().map(Mutex::new),
        Err(error) => {
            tracing::warn!(
                "cannot start the reaper ({error}): servers may outlive the proxy if it is killed"
            );
            None
        }
    }
}

/// The reaper itself: follows the list until the pipe closes, then ends what is left.
fn reap() {
    // Handlers that do nothing, so that SIGINT, SIGTERM and SIGHUP meant for the proxy's group or
    // session do not end the reaper before the proxy is gone.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let _ignored: Vec<_> = match &runtime {
        Ok(runtime) => {
            let _entered = runtime.enter();
            use tokio::signal::unix::{SignalKind, signal};
            [
                SignalKind::interrupt(),
                SignalKind::terminate(),
                SignalKind::hangup(),
            ]
            .into_iter()
            .filter_map(|kind| signal(kind).ok())
            .collect()
        }
        Err(_) => Vec::new(),
    };
    let mut groups = BTreeSet::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let (sign, number) = line.split_at(line.len().min(1));
        let Ok(pgid) = number.trim().parse::<i32>() else {
            continue;
        };
        match sign {
            "+" => {
                groups.insert(pgid);
            }
            "-" => {
                groups.remove(&pgid);
            }
            _ => {}
        }
    }
    end_groups(groups);
}

/// SIGTERM to every group, a grace for them to go, SIGKILL to what is left.
fn end_groups(groups: BTreeSet<i32>) {
    use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
    let own = rustix::process::getpgrp();
    // Never 0 or 1 (every process), never our own group.
    let mut live: Vec<Pid> = groups
        .into_iter()
        .filter(|pgid| *pgid > 1)
        .filter_map(Pid::from_raw)
        .filter(|pgid| *pgid != own)
        .filter(|pgid| kill_process_group(*pgid, Signal::TERM).is_ok())
        .collect();
    let deadline = Instant::now() + GRACE;
    while !live.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        live.retain(|pgid| test_kill_process_group(*pgid).is_ok());
    }
    for pgid in live {
        let _ = kill_process_group(pgid, Signal::KILL);
    }
}

/// Ends what is left of a server's process group once its leader has exited: SIGTERM, a grace,
/// SIGKILL. (A server's own children stay in its group; they do not end with their parent.)
pub(super) async fn end_group(pgid: u32, grace: Duration) {
    use rustix::process::{Pid, Signal, kill_process_group, test_kill_process_group};
    let Some(group) = i32::try_from(pgid)
        .ok()
        .filter(|pgid| *pgid > 1)
        .and_then(Pid::from_raw)
    else {
        return;
    };
    if kill_process_group(group, Signal::TERM).is_ok() {
        let deadline = tokio::time::Instant::now() + grace;
        while test_kill_process_group(group).is_ok() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = kill_process_group(group, Signal::KILL);
    }
    forget(pgid);
}
