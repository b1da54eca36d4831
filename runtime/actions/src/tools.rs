//! The host side of the long actions: finding the target process and
//! running the external tools (`perf record`, `gcore`) with a deadline,
//! turning every way they can fail into a sentence saying why.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The target process exists and may be acted on, or why not.
pub(crate) fn check_target(pid: i32) -> Result<(), String> {
    if pid <= 0 {
        return Err(format!("{pid} is not a process id"));
    }
    if pid as u32 == std::process::id() {
        return Err(format!(
            "process {pid} is the agent itself; it does not profile or dump itself"
        ));
    }
    if !Path::new(&format!("/proc/{pid}")).exists() {
        return Err(format!(
            "process {pid} does not exist (it may have exited); the trigger's event named it, or the agent's default target pid"
        ));
    }
    Ok(())
}

/// The process's resident memory, bytes, from `/proc/PID/status`: what a
/// core file holds at least.
pub(crate) fn resident_bytes(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Where an executable is: a path with a `/` as given, else the first match
/// on `PATH`.
pub(crate) fn find_tool(tool: &Path) -> Option<PathBuf> {
    if tool.components().count() > 1 {
        return tool.is_file().then(|| tool.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// How a tool run ended.
pub(crate) struct ToolRun {
    pub success: bool,
    pub status: String,
    /// The last lines of its standard error.
    pub stderr_tail: String,
}

/// Runs a command to completion or until the deadline (then kills it).
/// Standard output is discarded, standard error kept (bounded) for the
/// failure message.
pub(crate) fn run_tool(mut command: Command, deadline: Duration) -> Result<ToolRun, String> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    // A thread drains stderr so a chatty tool never blocks on a full pipe.
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut s) = stderr {
            let _ = s.by_ref().take(1 << 20).read_to_end(&mut buf);
            // Drain (and drop) the rest.
            let _ = std::io::copy(&mut s, &mut std::io::sink());
        }
        buf
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if start.elapsed() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "`{program}` did not finish within {} s and was stopped",
                    deadline.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("waiting for `{program}`: {e}")),
        }
    };
    let stderr = reader.join().unwrap_or_default();
    let status = status?;
    Ok(ToolRun {
        success: status.success(),
        status: status.to_string(),
        stderr_tail: tail(&String::from_utf8_lossy(&stderr), 6),
    })
}

/// The last `n` non-empty lines, joined with ` | `.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_that_cannot_be_acted_on_say_why() {
        assert!(check_target(0).unwrap_err().contains("not a process id"));
        assert!(
            check_target(std::process::id() as i32)
                .unwrap_err()
                .contains("agent itself")
        );
        // pid_max is at most 2^22 on Linux: this pid cannot exist.
        assert!(
            check_target(i32::MAX)
                .unwrap_err()
                .contains("does not exist")
        );
        assert!(resident_bytes(std::process::id() as i32).is_some_and(|b| b > 0));
    }

    #[test]
    fn a_tool_past_its_deadline_is_stopped() {
        let mut c = Command::new("sleep");
        c.arg("10");
        let start = Instant::now();
        let e = run_tool(c, Duration::from_millis(200))
            .err()
            .expect("stopped");
        assert!(e.contains("did not finish"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
        let e = run_tool(Command::new("/nonexistent/tool"), Duration::from_secs(1))
            .err()
            .expect("absent");
        assert!(e.contains("cannot start"), "{e}");
        assert!(find_tool(Path::new("no-such-tool-dtc")).is_none());
        assert!(find_tool(Path::new("sh")).is_some());
    }

    #[test]
    fn failures_keep_the_end_of_stderr() {
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "for i in 1 2 3 4 5 6 7 8; do echo line$i >&2; done; exit 3",
        ]);
        let r = run_tool(c, Duration::from_secs(10)).expect("runs");
        assert!(!r.success);
        assert_eq!(
            r.stderr_tail,
            "line3 | line4 | line5 | line6 | line7 | line8"
        );
    }
}
