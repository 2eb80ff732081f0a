//! A `pktkit run` process for the integration tests that drive a running
//! stack through its control socket and CLI (ctl.rs, ops.rs, traffic.rs
//! include this file as a module). Stopped when dropped: SIGTERM, then
//! SIGKILL after 10 s.
//!
//! Each test adds the helpers only it needs in its own `impl Stackd`.

#![allow(dead_code)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use pktkit::ctl::client::Conn;
use pktkit_testnet::{unique, NetNs};
use serde_json::{json, Value};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_pktkit");

/// A running `pktkit run --instance <unique>`.
pub struct Stackd {
    pub child: Child,
    pub instance: String,
}

impl Stackd {
    /// `pktkit run ARGS` under an instance name starting with `tag`, once
    /// its control socket answers.
    pub fn start(tag: &str, args: &[&str]) -> Stackd {
        Self::spawn(tag, args, None)
    }

    /// Likewise inside `ns` (its TAP devices are made there).
    pub fn start_in(tag: &str, ns: &NetNs, args: &[&str]) -> Stackd {
        Self::spawn(tag, args, Some(ns))
    }

    fn spawn(tag: &str, args: &[&str], ns: Option<&NetNs>) -> Stackd {
        let instance = unique(tag);
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .args(args)
            .args(["--instance", &instance])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let netns = ns.map(|ns| {
            std::fs::File::open(format!("/var/run/netns/{}", ns.name)).expect("open netns")
        });
        if let Some(f) = &netns {
            use std::os::fd::AsRawFd;
            let fd = f.as_raw_fd();
            // SAFETY: the closure only calls setns (async-signal-safe) on a
            // descriptor that stays open until spawn returns (`netns`
            // lives past it).
            unsafe {
                cmd.pre_exec(move || {
                    if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = cmd.spawn().expect("spawn pktkit run");
        drop(netns);
        let mut s = Stackd { child, instance };
        let t0 = Instant::now();
        while s.ctl(json!({"cmd": "info"})).is_err() {
            assert!(s.alive(), "pktkit run {} exited early", s.instance);
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "control socket of {} never answered",
                s.instance
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// One request through the library client.
    pub fn ctl(&self, req: Value) -> Result<serde_json::Map<String, Value>, String> {
        Conn::open(&self.instance)
            .and_then(|mut c| c.request(&req))
            .map_err(|e| e.to_string())
    }

    /// A control command through the CLI: `pktkit SUB --instance I ARGS`.
    pub fn cli(&self, sub: &str, args: &[&str]) -> Output {
        Command::new(BIN)
            .arg(sub)
            .args(["--instance", &self.instance])
            .args(args)
            .output()
            .expect("run pktkit")
    }

    /// Like [`Stackd::cli`], asserting success; returns stdout.
    pub fn ok(&self, sub: &str, args: &[&str]) -> String {
        let out = self.cli(sub, args);
        assert!(
            out.status.success(),
            "pktkit {sub} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `pktkit SUB --json ARGS`, parsed.
    pub fn json(&self, sub: &str, args: &[&str]) -> Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ok(sub, &a);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{sub} {args:?}: {e}: {out}"))
    }
}

impl Drop for Stackd {
    fn drop(&mut self) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while self.alive() && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
