//! The control socket server of one running stack.
//!
//! [`Listener::bind`] claims the instance's socket (before the stack
//! starts, so a second `pktkit run` of the same instance fails early);
//! [`Listener::serve`] starts the `pktkit-ctl` thread with the running
//! stack. Dropping the [`Server`] stops the thread and removes the socket.
//!
//! # Commands
//!
//! | request | reply (besides `"ok": true`) |
//! |---|---|
//! | `{"cmd":"info"}` | `instance`, `pid`, `uptime_s`, `interfaces` |
//! | `{"cmd":"mount","spec":"DRIVER[,k=v...]"}` | `interfaces`: names attached, up and in the protocol layer |
//! | `{"cmd":"umount","if":"IF"}` | `pool_available` after the detach |
//! | `{"cmd":"ifconfig"[,"if":"IF"][,"args":[WORDS]]}` | `interfaces`: listing after any change |
//! | `{"cmd":"nicinfo","if":"IF"}` | `nic`: driver, PCI facts, queues, offloads, link, counters |
//! | `{"cmd":"sysctl"[,"name":"N"][,"value":"V"]}` | `values`: `[{name, value, writable[, description]}]` (a description for drivers' `net.if.IF.drv.*` nodes) |
//! | `{"cmd":"netstat"}` | `sockets`, `routes`, `interfaces` |
//! | `{"cmd":"fw","args":[WORDS]}` | `rules`, `policy`, `active`, `hooks` (see [`super::fw`]) |
//! | `{"cmd":"tcpdump","if":"IF"[,"filter":"EXPR"][,"count":N][,"snaplen":N][,"queue":N]}` | line `start`, lines `pkt` (one per frame), then `captured`, `received`, `dropped` (see [`super::capture`]) |
//! | `{"cmd":"monitor"}` | `monitoring`, then one event per line |
//! | `{"cmd":"ping","dst":"ADDR"[,"if":"IF"][,"count":N][,"interval_ms":N][,"wait_ms":N][,"size":N]}` | lines `start`, `reply` (one per echo reply), then `target`, `if`, `transmitted`, `received`, `rtt_ms` (`min`, `avg`, `max`, or null) |
//! | `{"cmd":"tcpcheck","dst":"ADDR:PORT","bytes":N[,"if":"IF"][,"timeout_ms":N][,"seed":N]}` | lines `start`, `progress` (every second), then `target`, `if`, `bytes`, `seconds`, `mbit_s`, `connect_ms`; an error on a mismatch, reset or timeout |
//!
//! `ping`, `tcpcheck` and `tcpdump` run as jobs stepped by the control thread (see
//! [`super::traffic`]); the lines before the reply have no `ok` field.
//!
//! `ifconfig` words are those of the command line: `up`, `down`, `mtu N`,
//! `ADDR/PLEN [alias]`, `-alias ADDR`, `promisc`, `-promisc`.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::traffic::{Job, STEP};
use super::{CtlError, MAX_REQUEST};
use crate::iface::IfEvent;
use crate::stack::Stack;

/// Longest a poll sleeps, so a stop request is seen soon.
const TICK: Duration = Duration::from_millis(100);
/// Most bytes queued for one client; a monitor that does not read loses
/// events beyond this (counted in `ctl.events_dropped`).
const MAX_QUEUED: usize = 1 << 20;
/// Most clients at once; more are refused with an error reply.
const MAX_CLIENTS: usize = 64;

/// A claimed, not yet served, control socket.
pub struct Listener {
    sock: UnixListener,
    path: PathBuf,
    instance: String,
}

impl Listener {
    /// Claims instance `name`'s socket: fails if a live stack serves it,
    /// replaces a stale socket file left by a stack that died.
    pub fn bind(name: &str) -> Result<Listener, CtlError> {
        let path = super::server_socket_path(name)?;
        Self::bind_at(name, &path)
    }

    /// [`Listener::bind`] at an explicit path.
    pub fn bind_at(name: &str, path: &Path) -> Result<Listener, CtlError> {
        let io_err = |what, source| CtlError::Io {
            what,
            path: path.to_owned(),
            source,
        };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(io_err(
                    "not a socket:",
                    io::Error::from(io::ErrorKind::AlreadyExists),
                ));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(CtlError::InUse {
                    name: name.to_owned(),
                    path: path.to_owned(),
                });
            }
            std::fs::remove_file(path).map_err(|e| io_err("remove stale socket", e))?;
        }
        let sock = UnixListener::bind(path).map_err(|e| io_err("bind", e))?;
        // Connecting needs write permission on the socket file: owner only.
        // SO_PEERCRED is checked as well, for root's sake and in case the
        // mode is changed.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io_err("chmod", e))?;
        sock.set_nonblocking(true)
            .map_err(|e| io_err("set non-blocking", e))?;
        Ok(Listener {
            sock,
            path: path.to_owned(),
            instance: name.to_owned(),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the control thread for `stack`.
    pub fn serve(self, stack: Arc<Stack>) -> Result<Server, CtlError> {
        let stop = Arc::new(AtomicBool::new(false));
        let events = stack.subscribe();
        let path = self.path.clone();
        let ctx = Ctx {
            exhausted_seen: stack.pool().stats().exhausted,
            stack,
            instance: self.instance.clone(),
            started: Instant::now(),
            tunables: Arc::new(Tunables::default()),
        };
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("pktkit-ctl".into())
            .spawn(move || serve_loop(self.sock, ctx, events, &flag))
            .map_err(|e| CtlError::Io {
                what: "start control thread for",
                path: path.clone(),
                source: e,
            })?;
        Ok(Server {
            stop,
            thread: Some(thread),
            path,
        })
    }
}

/// A serving control socket; dropping it stops the thread and removes the
/// socket file.
pub struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Server {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Tunables of the control plane itself (in the sysctl tree under `ctl.`).
pub(super) struct Tunables {
    /// How often the pool is checked for new exhaustion, in ms.
    pub pool_check_ms: AtomicU64,
    /// Events not queued because a monitor client did not read.
    pub events_dropped: AtomicU64,
    /// Requests answered with an error.
    pub bad_requests: AtomicU64,
    /// Connections refused by the credential check.
    pub refused: AtomicU64,
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables {
            pool_check_ms: AtomicU64::new(250),
            events_dropped: AtomicU64::new(0),
            bad_requests: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }
}

/// What request handlers see.
pub(super) struct Ctx {
    pub stack: Arc<Stack>,
    pub instance: String,
    pub started: Instant,
    pub tunables: Arc<Tunables>,
    exhausted_seen: u64,
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    monitor: bool,
    /// Close once `outbuf` is written (error after an oversized request,
    /// or the peer finished sending).
    closing: bool,
    /// A `ping` or `tcpcheck` in progress; further requests wait for it.
    job: Option<Job>,
}

impl Client {
    fn queue(&mut self, v: &Value) -> bool {
        let line = v.to_string();
        if self.outbuf.len() + line.len() + 1 > MAX_QUEUED {
            return false;
        }
        self.outbuf.extend_from_slice(line.as_bytes());
        self.outbuf.push(b'\n');
        true
    }

    /// Writes what it can; false when the peer is gone.
    fn flush(&mut self) -> bool {
        while !self.outbuf.is_empty() {
            match self.stream.write(&self.outbuf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }

    /// Whether nothing is left to answer: no job and no complete request.
    fn idle(&self) -> bool {
        self.job.is_none() && !self.inbuf.contains(&b'\n')
    }
}

fn error_reply(msg: impl std::fmt::Display) -> Value {
    json!({"ok": false, "error": msg.to_string()})
}

/// The uid of the process at the other end of `s`.
fn peer_uid(s: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred is a live ucred and len its size; the kernel writes at
    // most len bytes.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

fn serve_loop(sock: UnixListener, mut ctx: Ctx, events: Receiver<IfEvent>, stop: &AtomicBool) {
    let mut clients: Vec<Client> = Vec::new();
    let mut next_pool_check = Instant::now();
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    while !stop.load(Ordering::Acquire) {
        let tick = if clients.iter().any(|c| c.job.is_some()) {
            STEP
        } else {
            TICK
        };
        let mut fds = Vec::with_capacity(clients.len() + 1);
        fds.push(libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        for c in &clients {
            // A closing client is not read: after its EOF it would be
            // readable for ever, and a job may keep it here a while.
            let mut ev = if c.closing { 0 } else { libc::POLLIN };
            if !c.outbuf.is_empty() {
                ev |= libc::POLLOUT;
            }
            fds.push(libc::pollfd {
                fd: c.stream.as_raw_fd(),
                events: ev,
                revents: 0,
            });
        }
        // SAFETY: fds is a live array of fds.len() pollfds.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                tick.as_millis() as i32,
            )
        };
        if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            log::error!("control socket: poll: {}", io::Error::last_os_error());
            std::thread::sleep(TICK);
        }
        if n > 0 && fds[0].revents != 0 {
            accept_all(&sock, &mut clients, me, &ctx);
        }
        // Clients first (their fds were polled in order), then events.
        let mut keep = Vec::with_capacity(clients.len());
        for (i, mut c) in clients.into_iter().enumerate() {
            let rev = fds.get(i + 1).map_or(0, |p| p.revents);
            let alive = if c.closing {
                // Gone altogether: nobody is left to read the replies.
                rev & (libc::POLLHUP | libc::POLLERR) == 0
            } else if rev != 0 {
                service_client(&mut c, &mut ctx)
            } else {
                true
            };
            if alive {
                keep.push(c);
            }
        }
        clients = keep;
        for c in clients.iter_mut().filter(|c| c.job.is_some()) {
            step_job(c, &mut ctx);
        }
        publish_events(&events, &mut clients, &mut ctx, &mut next_pool_check);
        clients.retain_mut(|c| c.flush() && !(c.closing && c.outbuf.is_empty() && c.idle()));
    }
}

fn accept_all(sock: &UnixListener, clients: &mut Vec<Client>, me: u32, ctx: &Ctx) {
    loop {
        let stream = match sock.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("control socket: accept: {e}");
                return;
            }
        };
        let refuse = match peer_uid(&stream) {
            Ok(uid) if uid == me || uid == 0 => None,
            Ok(uid) => Some(format!(
                "permission denied: uid {uid} may not control instance '{}' (only uid {me} and root)",
                ctx.instance
            )),
            Err(e) => Some(format!("cannot read peer credentials: {e}")),
        };
        let refuse = refuse.or_else(|| {
            (clients.len() >= MAX_CLIENTS).then(|| format!("too many clients ({MAX_CLIENTS})"))
        });
        if let Some(why) = refuse {
            ctx.tunables.refused.fetch_add(1, Ordering::Relaxed);
            log::warn!("control socket: {why}");
            // Best effort: one line, then close.
            let mut s = &stream;
            let _ = writeln!(s, "{}", error_reply(why));
            continue;
        }
        if stream.set_nonblocking(true).is_err() {
            continue;
        }
        clients.push(Client {
            stream,
            inbuf: Vec::new(),
            outbuf: Vec::new(),
            monitor: false,
            closing: false,
            job: None,
        });
    }
}

/// Reads what the client sent and answers every complete line; returns
/// false when the client is gone.
fn service_client(c: &mut Client, ctx: &mut Ctx) -> bool {
    let mut chunk = [0u8; 4096];
    let mut eof = false;
    loop {
        match c.stream.read(&mut chunk) {
            Ok(0) => {
                eof = true;
                break;
            }
            Ok(n) => {
                c.inbuf.extend_from_slice(&chunk[..n]);
                if c.inbuf.len() > MAX_REQUEST + 1 {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    if eof && !c.inbuf.is_empty() && !c.inbuf.ends_with(b"\n") {
        // A last request without a newline.
        c.inbuf.push(b'\n');
    }
    if !answer_lines(c, ctx) {
        return false;
    }
    if c.job.is_none() && c.inbuf.len() > MAX_REQUEST {
        reject_oversize(c, ctx);
        return true;
    }
    if eof {
        c.closing = true;
        c.monitor = false;
    }
    true
}

/// Answers the complete requests in `c.inbuf`, in order, until one starts
/// a job (the rest wait for it); returns false when the client is gone.
fn answer_lines(c: &mut Client, ctx: &mut Ctx) -> bool {
    while c.job.is_none() {
        let Some(pos) = c.inbuf.iter().position(|&b| b == b'\n') else {
            break;
        };
        let line: Vec<u8> = c.inbuf.drain(..=pos).collect();
        if line.len() > MAX_REQUEST + 1 {
            reject_oversize(c, ctx);
            return true;
        }
        if let Some(reply) = handle_line(&line[..line.len() - 1], c, ctx) {
            if !c.queue(&reply) {
                return false;
            }
        }
    }
    true
}

/// Steps the client's job once; when it is over, queues its reply and
/// answers the requests that waited behind it.
fn step_job(c: &mut Client, ctx: &mut Ctx) {
    let Some(job) = c.job.as_mut() else {
        return;
    };
    if let Job::Capture(cap) = job {
        // A capture sends only what the client's buffer takes (the rest
        // waits in the tap, which drops and counts when full), and ends
        // when the client half-closes or sends anything.
        cap.room = MAX_QUEUED.saturating_sub(c.outbuf.len());
        cap.stop |= c.closing || c.inbuf.contains(&b'\n');
    }
    let mut lines = Vec::new();
    let outcome = job.step(Instant::now(), &mut lines);
    for l in &lines {
        // A client that does not read loses progress lines, not the reply.
        let _ = c.queue(l);
    }
    let Some(outcome) = outcome else {
        return;
    };
    c.job = None;
    let reply = match outcome {
        Ok(mut m) => {
            m.insert("ok".into(), Value::Bool(true));
            Value::Object(m)
        }
        Err(e) => error_reply(e),
    };
    if c.queue(&reply) && !answer_lines(c, ctx) {
        c.closing = true;
    }
}

fn reject_oversize(c: &mut Client, ctx: &Ctx) {
    ctx.tunables.bad_requests.fetch_add(1, Ordering::Relaxed);
    c.inbuf.clear();
    c.queue(&error_reply(format!(
        "request longer than {MAX_REQUEST} bytes; closing the connection"
    )));
    c.closing = true;
}

/// Answers one request; `None` when it started a job (its reply comes
/// when the job is over).
fn handle_line(line: &[u8], c: &mut Client, ctx: &mut Ctx) -> Option<Value> {
    let reply = match serde_json::from_slice::<Value>(line) {
        Err(e) => Err(format!("malformed request (one JSON object per line): {e}")),
        Ok(Value::Object(req)) => match req.get("cmd").and_then(Value::as_str) {
            Some("ping" | "tcpcheck" | "tcpdump") => match Job::start(ctx, &req) {
                Ok(job) => {
                    c.job = Some(job);
                    return None;
                }
                Err(e) => Err(e),
            },
            _ => dispatch(&req, c, ctx),
        },
        Ok(_) => Err("malformed request: not a JSON object".to_owned()),
    };
    Some(match reply {
        Ok(mut m) => {
            m.insert("ok".into(), Value::Bool(true));
            Value::Object(m)
        }
        Err(e) => {
            ctx.tunables.bad_requests.fetch_add(1, Ordering::Relaxed);
            error_reply(e)
        }
    })
}

/// A string argument of a request.
pub(super) fn arg<'a>(req: &'a Map<String, Value>, key: &str) -> Result<&'a str, String> {
    match req.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(format!("'{key}' must be a string")),
        None => Err(format!("missing '{key}'")),
    }
}

/// An optional string argument.
pub(super) fn opt_arg<'a>(
    req: &'a Map<String, Value>,
    key: &str,
) -> Result<Option<&'a str>, String> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("'{key}' must be a string")),
    }
}

fn dispatch(
    req: &Map<String, Value>,
    c: &mut Client,
    ctx: &mut Ctx,
) -> Result<Map<String, Value>, String> {
    let cmd = arg(req, "cmd")?;
    match cmd {
        "info" => Ok(super::views::info(ctx)),
        "mount" => super::views::mount(ctx, arg(req, "spec")?),
        "umount" => super::views::umount(ctx, arg(req, "if")?),
        "ifconfig" => {
            let words = match req.get("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|w| w.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("'args' must be an array of strings")?,
                Some(_) => return Err("'args' must be an array of strings".into()),
            };
            super::views::ifconfig(ctx, opt_arg(req, "if")?, &words)
        }
        "nicinfo" => super::views::nicinfo(ctx, arg(req, "if")?),
        "sysctl" => super::sysctl::request(ctx, opt_arg(req, "name")?, req.get("value")),
        "netstat" => Ok(super::views::netstat(ctx)),
        "fw" => {
            let words = match req.get("args") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|w| w.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("'args' must be an array of strings")?,
                Some(_) => return Err("'args' must be an array of strings".into()),
            };
            super::fw::request(ctx, &words)
        }
        "monitor" => {
            c.monitor = true;
            let mut m = Map::new();
            m.insert("monitoring".into(), Value::Bool(true));
            Ok(m)
        }
        other => Err(format!(
            "unknown command '{other}' (info, mount, umount, ifconfig, nicinfo, sysctl, netstat, monitor, ping, tcpcheck, tcpdump, fw)"
        )),
    }
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// An interface event as a monitor line.
pub(super) fn event_json(ev: &IfEvent) -> Value {
    match ev {
        IfEvent::Link { ifname, state } => json!({
            "event": "link", "if": ifname, "up": state.up,
            "speed_mbps": state.speed_mbps, "full_duplex": state.full_duplex,
            "time": now_secs(),
        }),
        IfEvent::Attached(n) => json!({"event": "attach", "if": n, "time": now_secs()}),
        IfEvent::Detached(n) => json!({"event": "detach", "if": n, "time": now_secs()}),
    }
}

/// Sends the stack's events, and a pool-exhaustion event when the pool's
/// exhaustion count grew since the last check, to every monitor client.
fn publish_events(
    events: &Receiver<IfEvent>,
    clients: &mut [Client],
    ctx: &mut Ctx,
    next_pool_check: &mut Instant,
) {
    let mut out: Vec<Value> = events.try_iter().map(|e| event_json(&e)).collect();
    let now = Instant::now();
    if now >= *next_pool_check {
        let every = ctx.tunables.pool_check_ms.load(Ordering::Relaxed).max(10);
        *next_pool_check = now + Duration::from_millis(every);
        let st = ctx.stack.pool().stats();
        if st.exhausted > ctx.exhausted_seen {
            out.push(json!({
                "event": "pool-exhausted", "pool": st.name,
                "new": st.exhausted - ctx.exhausted_seen, "exhausted": st.exhausted,
                "available": st.available, "capacity": st.capacity, "time": now_secs(),
            }));
            ctx.exhausted_seen = st.exhausted;
        }
    }
    for ev in &out {
        for c in clients.iter_mut().filter(|c| c.monitor) {
            if !c.queue(ev) {
                ctx.tunables.events_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
