//! Test plumbing for tests with a real Linux peer: throw-away network
//! namespaces (removed on drop, also when a test fails), `ip`, AF_PACKET raw
//! sockets and numbered test frames. Only for tests: it panics on failure.
//! Tests use addresses of the documentation ranges inside namespaces they
//! make themselves.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether we may create namespaces and interfaces.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A unique short name (interface names are at most 15 bytes).
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs a command; panics with its stderr on failure.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A network namespace deleted (with its interfaces) when dropped.
pub struct NetNs {
    /// Its name (under /run/netns).
    pub name: String,
}

impl NetNs {
    /// Creates a namespace with a unique name starting with `tag`, loopback up.
    pub fn new(tag: &str) -> NetNs {
        let name = unique(tag);
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command in the namespace; panics on failure.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut v = vec!["ip", "netns", "exec", &self.name];
        v.extend_from_slice(args);
        sh(&v)
    }

    /// Runs a command in the namespace; returns its output whatever the status.
    pub fn try_exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("spawn ip netns exec")
    }

    /// Runs `ip -n <ns> args...`, panicking on failure.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// Runs `ip -n <ns> args...`, returning whether it succeeded.
    pub fn ip_ok(&self, args: &[&str]) -> bool {
        Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Runs `f` on a thread that has entered the namespace, so sockets and
    /// TAP devices it creates live there.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                let c = std::ffi::CString::new(path).expect("path");
                // SAFETY: opens a NUL-terminated path; checked below.
                let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
                assert!(fd >= 0, "open netns: {}", std::io::Error::last_os_error());
                // SAFETY: fd is ours.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                // SAFETY: setns on a namespace fd affects only this thread.
                let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            });
            match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs `ip args...` in the current namespace, panicking on failure.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An AF_PACKET socket bound to one interface of the current namespace.
pub struct RawSocket(OwnedFd);

impl RawSocket {
    /// Opens a raw socket bound to `ifname` (all protocols).
    pub fn bind(ifname: &str) -> RawSocket {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket creation; checked below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto as i32) };
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        // SAFETY: fd is ours.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c = std::ffi::CString::new(ifname).expect("name");
        // SAFETY: NUL-terminated name.
        let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
        assert!(index != 0, "no interface {ifname}");
        // SAFETY: all-zero is a valid sockaddr_ll.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto;
        sll.sll_ifindex = index as i32;
        // SAFETY: binds with a live sockaddr_ll.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
        RawSocket(fd)
    }

    /// Sends one frame; panics on failure.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: sends from a live slice.
        let r = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(
            r,
            frame.len() as isize,
            "send: {}",
            std::io::Error::last_os_error()
        );
    }

    /// Tries to send; false if the kernel refused (e.g. ENOBUFS).
    pub fn try_send(&self, frame: &[u8]) -> bool {
        // SAFETY: sends from a live slice.
        let r = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        r == frame.len() as isize
    }

    /// Receives frames until `want` matches one or `timeout` passes.
    pub fn recv_matching(
        &self,
        timeout: Duration,
        want: impl Fn(&[u8]) -> bool,
    ) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        while Instant::now() < deadline {
            let mut pfd = libc::pollfd {
                fd: self.0.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd.
            unsafe { libc::poll(&mut pfd, 1, 50) };
            // SAFETY: reads into a live buffer of the given size.
            let n = unsafe {
                libc::recv(
                    self.0.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n > 0 && want(&buf[..n as usize]) {
                return Some(buf[..n as usize].to_vec());
            }
        }
        None
    }
}

/// Waits until `fd` is readable or `timeout` passes.
pub fn wait_readable(fd: i32, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout.as_millis() as i32) };
    r == 1
}

/// Our test ethertype (IEEE local experimental), so stray traffic is ignored.
pub const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

/// A test frame: `dst`, `src`, our ethertype, `seq`, a pattern from `seq`.
pub fn frame(dst: [u8; 6], src: [u8; 6], seq: u32, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&ETHERTYPE);
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(31).wrapping_add(seq) as u8;
    }
    f
}

/// The sequence number of a test frame, if it is one.
pub fn seq_of(f: &[u8]) -> Option<u32> {
    (f.len() >= 18 && f[12..14] == ETHERTYPE)
        .then(|| u32::from_be_bytes([f[14], f[15], f[16], f[17]]))
}

impl RawSocket {
    /// Raises the receive buffer (as root, past rmem_max).
    pub fn set_rcvbuf(&self, bytes: i32) {
        // SAFETY: passes a live int and its size.
        let r = unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&bytes as *const i32).cast(),
                std::mem::size_of::<i32>() as u32,
            )
        };
        assert_eq!(r, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
    }
}

/// Deletes a link in the current namespace on drop.
pub struct LinkGuard(pub String);

impl Drop for LinkGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.0]).output();
    }
}
