//! Ported drivers as loadable shared objects: bsdnull built as bsdnull.so
//! (ported/bsdnull/if_bsdnull.c unchanged plus an entry file) loads into
//! the pktkit binary, which exports the KPI, and forwards frames; an object
//! needing a symbol pktkit lacks is refused with that name, a non-ELF file
//! is refused, and a running stack keeps running after either refusal.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pktkit");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A temporary directory holding the built objects, removed on drop.
struct Objects {
    dir: PathBuf,
}

impl Objects {
    /// Builds bsdnull.so, bad.so (needs `pci_foo_not_in_pktkit`) and
    /// text.so (not ELF); `None` without a C compiler.
    fn build(tag: &str) -> Option<Objects> {
        let dir = std::env::temp_dir().join(format!("pktkit-so-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).ok()?;
        let objects = Objects { dir };
        let r = repo();
        let fixtures = r.join("kit/tests/fixtures/ported-so");
        let compile = |out: &str, extra: &[PathBuf]| -> Option<()> {
            let status = Command::new("cc")
                .args(["-shared", "-fPIC", "-O2", "-D_KERNEL"])
                .arg("-I")
                .arg(r.join("compat-bsd/include"))
                .arg("-I")
                .arg(r.join("native/include"))
                .arg(r.join("ported/bsdnull/if_bsdnull.c"))
                .arg(fixtures.join("bsdnull_entry.c"))
                .args(extra)
                .arg("-o")
                .arg(objects.dir.join(out))
                .status()
                .ok()?;
            assert!(status.success(), "cc {out} failed");
            Some(())
        };
        compile("bsdnull.so", &[])?;
        compile("bad.so", &[fixtures.join("needs_missing.c")])?;
        std::fs::write(objects.dir.join("text.so"), "#!/bin/sh\n").ok()?;
        Some(objects)
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Objects {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn run(args: &[&str]) -> Output {
    match Command::new(BIN).args(args).output() {
        Ok(o) => o,
        Err(e) => panic!("run pktkit: {e}"),
    }
}

#[test]
fn a_loaded_bsdnull_forwards_frames() {
    let Some(objs) = Objects::build("fwd") else {
        println!("skipped: no C compiler");
        return;
    };
    let so = objs.path("bsdnull.so");
    let out = run(&[
        "bench",
        "fwd",
        "--port",
        &so,
        "--port",
        &so,
        "--seconds",
        "1",
        "--json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => panic!("{e}: {text}"),
    };
    assert_eq!(v["ports"], serde_json::json!(["bnull0", "bnull1"]), "{v}");
    assert!(v["tx_packets"].as_u64().unwrap_or(0) > 100_000, "{v}");
    assert_eq!(v["drops"], 0, "{v}");
}

#[test]
fn objects_pktkit_cannot_serve_are_refused_by_name() {
    let Some(objs) = Objects::build("refuse") else {
        println!("skipped: no C compiler");
        return;
    };
    for (so, needle) in [
        ("bad.so", "pci_foo_not_in_pktkit"),
        ("text.so", "not an ELF file"),
        ("none.so", "No such file"),
    ] {
        let out = run(&[
            "bench",
            "fwd",
            "--port",
            &objs.path(so),
            "--port",
            "null",
            "--seconds",
            "1",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{so} was accepted");
        assert!(err.contains(needle), "{so}: {err:?} lacks {needle:?}");
    }
}

/// A `pktkit run` process, killed when dropped.
struct Stackd {
    child: Child,
    instance: String,
}

impl Drop for Stackd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Stackd {
    fn ctl(&self, sub: &str, args: &[&str]) -> Output {
        let mut a = vec![sub, "--instance", &self.instance];
        a.extend_from_slice(args);
        run(&a)
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

#[test]
fn a_running_stack_mounts_a_ported_object_and_survives_refusals() {
    let Some(objs) = Objects::build("mount") else {
        println!("skipped: no C compiler");
        return;
    };
    let instance = format!("so{}", std::process::id());
    let child = match Command::new(BIN)
        .args([
            "run",
            "-d",
            "null",
            "-d",
            "null",
            "--forward",
            "null0:null1",
        ])
        .args(["--instance", &instance])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("spawn pktkit run: {e}"),
    };
    let mut st = Stackd { child, instance };
    let t0 = Instant::now();
    while !st.ctl("ifconfig", &[]).status.success() {
        assert!(st.alive(), "pktkit run exited early");
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "control socket never answered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for (so, needle) in [
        ("bad.so", "pci_foo_not_in_pktkit"),
        ("text.so", "not an ELF file"),
    ] {
        let out = st.ctl("mount", &["-d", &objs.path(so)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{so} mounted");
        assert!(err.contains(needle), "{so}: {err:?} lacks {needle:?}");
        assert!(st.alive(), "the stack died refusing {so}");
    }
    let out = st.ctl("mount", &["-d", &objs.path("bsdnull.so")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ifs = String::from_utf8_lossy(&st.ctl("ifconfig", &[]).stdout).into_owned();
    assert!(ifs.contains("bnull0"), "{ifs}");
    let out = st.ctl("umount", &["bnull0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(st.alive());
}
