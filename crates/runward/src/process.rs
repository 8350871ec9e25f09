//! Child processes shared by the `command` probe and the `command` step: spawned in their own
//! process group with no input, output captured with a cap (the tail is kept), and the whole
//! group killed at the deadline or when a background grandchild keeps the pipes open.

use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::task::JoinHandle;

/// How long captured pipes may stay open after the child exits (a background grandchild
/// holding them) before the process group is killed.
pub(crate) const PIPE_GRACE: Duration = Duration::from_millis(200);

/// A command with no input, piped output, killed on drop, leading its own process group.
pub(crate) fn command(program: &str, args: &[String]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    cmd
}

/// Transforms captured bytes as they arrive (e.g. redaction across chunk boundaries).
pub(crate) trait OutputFilter: Send + 'static {
    /// Takes the next chunk; returns the bytes that can be kept now.
    fn push(&mut self, chunk: &[u8]) -> Vec<u8>;
    /// Returns whatever was held back.
    fn finish(&mut self) -> Vec<u8>;
}

/// Keeps bytes as they are.
pub(crate) struct Unfiltered;

impl OutputFilter for Unfiltered {
    fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        chunk.to_vec()
    }
    fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// Reads a stream to its end, keeping at most `cap` bytes from its tail.
pub(crate) async fn capture(stream: impl AsyncRead + Unpin, cap: usize) -> (Vec<u8>, bool) {
    capture_filtered(stream, cap, Unfiltered).await
}

/// Reads a stream to its end through `filter`, keeping at most `cap` filtered bytes from the
/// tail; the flag tells whether anything was cut.
pub(crate) async fn capture_filtered(
    mut stream: impl AsyncRead + Unpin,
    cap: usize,
    mut filter: impl OutputFilter,
) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&filter.push(&buf[..n]));
                if kept.len() > cap.saturating_mul(2).max(4096) {
                    let excess = kept.len() - cap;
                    kept.drain(..excess);
                    cut = true;
                }
            }
        }
    }
    kept.extend_from_slice(&filter.finish());
    if kept.len() > cap {
        kept.drain(..kept.len() - cap);
        cut = true;
    }
    (kept, cut)
}

/// Sends SIGKILL to the process group led by `pid`.
pub(crate) fn kill_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    #[cfg(not(unix))]
    let _ = pid;
}

/// How a spawned child ended.
pub(crate) enum Ended {
    /// It exited (or was killed by a signal) before the deadline.
    Exited(ExitStatus),
    /// It was still running at the deadline; its group was killed.
    Deadline,
    /// `stop` completed first; its group was killed.
    Stopped,
    /// Waiting for it failed; its group was killed.
    WaitFailed(std::io::Error),
}

/// What a child left: how it ended and the captured streams. A stream is `None` when a
/// background process kept its pipe open past [`PIPE_GRACE`] (the group was then killed).
pub(crate) struct Finished {
    pub(crate) ended: Ended,
    pub(crate) stdout: Option<(Vec<u8>, bool)>,
    pub(crate) stderr: Option<(Vec<u8>, bool)>,
}

/// Starts capturing a spawned child's output, waits for it until `deadline` or until `stop`
/// completes, kills the whole group then, and collects the output that was read.
pub(crate) async fn wait(
    mut child: tokio::process::Child,
    deadline: Instant,
    stop: impl std::future::Future<Output = ()>,
    capture_stdout: impl FnOnce(tokio::process::ChildStdout) -> JoinHandle<(Vec<u8>, bool)>,
    capture_stderr: impl FnOnce(tokio::process::ChildStderr) -> JoinHandle<(Vec<u8>, bool)>,
) -> Finished {
    let pid = child.id();
    let stdout = capture_stdout(child.stdout.take().expect("stdout is piped"));
    let stderr = capture_stderr(child.stderr.take().expect("stderr is piped"));
    let waited = tokio::select! {
        waited = tokio::time::timeout_at(deadline.into(), child.wait()) => Some(waited),
        () = stop => None,
    };
    let ended = match waited {
        Some(Ok(Ok(status))) => Ended::Exited(status),
        Some(Ok(Err(err))) => {
            kill_group(pid);
            Ended::WaitFailed(err)
        }
        Some(Err(_)) | None => {
            kill_group(pid);
            let _ = child.start_kill();
            let _ = tokio::time::timeout(PIPE_GRACE, child.wait()).await;
            if waited.is_some() {
                Ended::Deadline
            } else {
                Ended::Stopped
            }
        }
    };
    let (stdout_abort, stderr_abort) = (stdout.abort_handle(), stderr.abort_handle());
    let collect = async { (stdout.await.ok(), stderr.await.ok()) };
    let (stdout, stderr) = match tokio::time::timeout(PIPE_GRACE, collect).await {
        Ok(both) => both,
        Err(_) => {
            // A background process kept the pipes open: end it, keep nothing partial.
            kill_group(pid);
            stdout_abort.abort();
            stderr_abort.abort();
            (None, None)
        }
    };
    Finished {
        ended,
        stdout,
        stderr,
    }
}

/// The signal that ended a process, if any.
pub(crate) fn signal_of(status: &ExitStatus) -> Option<i32> {
    #[cfg(unix)]
    {
        std::os::unix::process::ExitStatusExt::signal(status)
    }
    #[cfg(not(unix))]
    {
        let _ = status;
        None
    }
}
