//! The control plane of a running stack: a Unix control socket per instance
//! and the commands that talk to it (`pktkit mount`, `umount`, `ifconfig`,
//! `nicinfo`, `sysctl`, `netstat`, `monitor`, `instances`, `fw`), traffic
//! from the stack itself (`pktkit ping`, `tcpcheck`; see [`traffic`]), and
//! captures streamed to the client (`pktkit tcpdump`; see [`capture`]).
//!
//! # The socket
//!
//! `pktkit run --instance NAME` listens on `DIR/NAME.sock` ([`socket_path`]):
//! `DIR` is `$PKTKIT_RUN_DIR` when set, else `/run/pktkit` when it can be
//! made and written, else `$XDG_RUNTIME_DIR/pktkit`, else
//! `/tmp/pktkit-UID`. The socket is mode 0600, and every connection's peer
//! credentials (`SO_PEERCRED`) are checked: only the stack's own uid and
//! root may talk to it; anyone else gets one error reply and is closed.
//! Several instances run side by side, each with its own socket, pool and
//! runtime (io-pkt's `-i` prefix).
//!
//! # The protocol
//!
//! One JSON object per line each way. A request is `{"cmd": "...", ...}`;
//! the reply is `{"ok": true, ...}` or `{"ok": false, "error": "..."}`. A
//! request longer than [`MAX_REQUEST`] bytes is answered with an error and
//! the connection closed (the rest of the line cannot be trusted); a
//! malformed or unknown request is answered with an error and the
//! connection stays usable. After `{"cmd": "monitor"}` the server sends one
//! event object per line (`{"event": "link", ...}`) until the client closes.
//! See [`server`] for every command and its arguments.
//!
//! # Why a thread and not a runtime task
//!
//! The runtime owns the threads that move packets; drivers never create
//! threads. The control path is not a driver: it blocks by design. `umount`
//! calls [`Stack::detach`](crate::stack::Stack::detach), which waits until
//! the workers have handed back the interface's tasks; run on a worker, it
//! would wait for itself. A task's wait fds are also read once, when it is
//! placed, so a task could not watch client sockets that come and go. So the
//! server is one dedicated thread (`pktkit-ctl`), made by `pktkit run` next
//! to the runtime, that sleeps in `poll(2)` on the listening socket and the
//! clients; requests are handled one at a time on it, and packets keep
//! flowing on the workers meanwhile.

pub mod capture;
pub mod client;
mod fw;
pub mod server;
mod sysctl;
pub mod traffic;
mod views;

use std::io;
use std::path::{Path, PathBuf};

pub use server::{Listener, Server};

/// Longest request line accepted, in bytes.
pub const MAX_REQUEST: usize = 64 * 1024;

/// Environment variable that overrides the socket directory.
pub const RUN_DIR_ENV: &str = "PKTKIT_RUN_DIR";

/// Why the control plane failed.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The instance name has characters that do not belong in a file name.
    #[error("bad instance name '{0}' (use 1-64 of A-Z a-z 0-9 _ - ., not starting with '.')")]
    BadInstance(String),
    /// Another stack already serves this instance.
    #[error("instance '{name}' is already running (socket {path})")]
    InUse {
        /// Instance name.
        name: String,
        /// Its socket.
        path: PathBuf,
    },
    /// A socket call failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The socket or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The server refused the request.
    #[error("{0}")]
    Refused(String),
    /// The reply could not be understood.
    #[error("bad reply from the stack: {0}")]
    BadReply(String),
}

/// Checks an instance name: 1-64 characters of `A-Z a-z 0-9 _ - .`, not
/// starting with a dot (it becomes a file name).
pub fn check_instance(name: &str) -> Result<(), CtlError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(CtlError::BadInstance(name.to_owned()))
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// Whether `dir` exists (or can be made, mode 0700 for private fallbacks)
/// and this process may create files in it.
fn usable_dir(dir: &Path, private: bool) -> bool {
    use std::os::unix::fs::DirBuilderExt;
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true).mode(if private { 0o700 } else { 0o755 });
    if b.create(dir).is_err() {
        return false;
    }
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: c is a NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

/// The directories an instance socket may live in, in order of preference,
/// each with whether it is private to this user (made mode 0700).
fn candidate_dirs() -> Vec<(PathBuf, bool)> {
    if let Some(d) = std::env::var_os(RUN_DIR_ENV) {
        return vec![(PathBuf::from(d), false)];
    }
    let mut v = vec![(PathBuf::from("/run/pktkit"), false)];
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        v.push((PathBuf::from(x).join("pktkit"), true));
    }
    v.push((PathBuf::from(format!("/tmp/pktkit-{}", euid())), true));
    v
}

/// The directory a server puts its socket in: the first candidate it can
/// make and write (see the module documentation).
pub fn run_dir() -> PathBuf {
    let all = candidate_dirs();
    for (dir, private) in &all {
        if usable_dir(dir, *private) {
            return dir.clone();
        }
    }
    all.last()
        .map(|(d, _)| d.clone())
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// The control socket a server of instance `name` listens on (its
/// directory is made if needed).
pub fn server_socket_path(name: &str) -> Result<PathBuf, CtlError> {
    check_instance(name)?;
    Ok(run_dir().join(format!("{name}.sock")))
}

/// The control socket of instance `name` as a client finds it: the first
/// candidate directory holding `NAME.sock` (a stack run by root uses
/// /run/pktkit, one run by a user its private directory), else where a
/// server of this user would put it.
pub fn socket_path(name: &str) -> Result<PathBuf, CtlError> {
    check_instance(name)?;
    let file = format!("{name}.sock");
    let all = candidate_dirs();
    for (dir, _) in &all {
        let p = dir.join(&file);
        if p.exists() {
            return Ok(p);
        }
    }
    let dir = all
        .iter()
        .find(|(d, _)| d.is_dir())
        .or(all.first())
        .map(|(d, _)| d.clone())
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    Ok(dir.join(file))
}

/// Every instance socket found in the candidate directories, as
/// `(instance name, socket path)`.
pub fn find_instances() -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for (dir, _) in candidate_dirs() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut here: Vec<(String, PathBuf)> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let inst = name.strip_suffix(".sock")?.to_owned();
                check_instance(&inst).ok()?;
                Some((inst, e.path()))
            })
            .filter(|(n, _)| !out.iter().any(|(m, _)| m == n))
            .collect();
        here.sort();
        out.extend(here);
    }
    out
}

/// Shuts down a stack that was shared with a control [`Server`]: drop the
/// server first, so this holds the last reference.
pub fn shutdown_stack(stack: std::sync::Arc<crate::stack::Stack>) {
    match std::sync::Arc::try_unwrap(stack) {
        Ok(s) => s.shutdown(),
        Err(_) => log::error!("stack still shared at shutdown; its threads stop at exit"),
    }
}
