//! Builds the Rust view of `include/pktkit/legacy_abi.h` with bindgen, and
//! the legacy drivers as separate shared objects (never linked into pktkit).
//!
//! Every `.so` is compiled with `-fPIC` and linked with `cc -shared` by hand,
//! into `OUT_DIR`, and copied to `<target>/<profile>/legacy/` where the lab
//! and scripts find them. Their paths reach the crate as `PKTKIT_SO_*`
//! environment variables (see `src/drivers.rs`).
//!
//! Regenerate the bindings by hand (for reading) with:
//! `bindgen shim-legacy/include/pktkit/legacy_abi.h --allowlist-type 'pktkit_lg_.*' --allowlist-var 'PKTKIT_LG_.*'`

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One shared object: its file name, its sources and extra compiler flags.
struct SharedObject {
    file: &'static str,
    env: &'static str,
    sources: &'static [&'static str],
    flags: &'static [&'static str],
}

const OBJECTS: &[SharedObject] = &[
    SharedObject {
        file: "devn-null.so",
        env: "PKTKIT_SO_DEVN_NULL",
        sources: &["drivers/devn-null.c"],
        flags: &[],
    },
    SharedObject {
        file: "devn-ne2000.so",
        env: "PKTKIT_SO_DEVN_NE2000",
        sources: &["drivers/devn-ne2000.c"],
        flags: &[],
    },
    // The same null driver built against the frozen v1 snapshot: both
    // headers share one include guard, so `-include` of the snapshot makes
    // the driver's own `#include <pktkit/legacy_abi.h>` a no-op.
    SharedObject {
        file: "devn-null-v1.so",
        env: "PKTKIT_SO_DEVN_NULL_V1",
        sources: &["drivers/devn-null.c"],
        flags: &["-include", "pktkit/legacy_abi_v1.h"],
    },
    // And against the frozen 1.1 snapshot (the burst entries).
    SharedObject {
        file: "devn-null-v1_1.so",
        env: "PKTKIT_SO_DEVN_NULL_V1_1",
        sources: &["drivers/devn-null.c"],
        flags: &["-include", "pktkit/legacy_abi_v1_1.h"],
    },
    // And against the frozen 1.2 snapshot (lf_reset).
    SharedObject {
        file: "devn-null-v1_2.so",
        env: "PKTKIT_SO_DEVN_NULL_V1_2",
        sources: &["drivers/devn-null.c"],
        flags: &["-include", "pktkit/legacy_abi_v1_2.h"],
    },
    // And against the frozen 1.3 snapshot (flat descriptors).
    SharedObject {
        file: "devn-null-v1_3.so",
        env: "PKTKIT_SO_DEVN_NULL_V1_3",
        sources: &["drivers/devn-null.c"],
        flags: &["-include", "pktkit/legacy_abi_v1_3.h"],
    },
    // devn-ne2000 with its test hooks exported (the multicast hash, for
    // tests/ne2000.rs); the driver itself exports only its entry.
    SharedObject {
        file: "devn-ne2000-hooks.so",
        env: "PKTKIT_SO_DEVN_NE2000_HOOKS",
        sources: &["drivers/devn-ne2000.c"],
        flags: &["-DNE_TEST_HOOKS"],
    },
    SharedObject {
        file: "devn-bad.so",
        env: "PKTKIT_SO_DEVN_BAD",
        sources: &["tests/drivers/devn-bad.c"],
        flags: &[],
    },
    SharedObject {
        file: "devn-abi2.so",
        env: "PKTKIT_SO_DEVN_ABI2",
        sources: &["tests/drivers/devn-abi2.c"],
        flags: &[],
    },
    SharedObject {
        file: "devn-noentry.so",
        env: "PKTKIT_SO_DEVN_NOENTRY",
        sources: &["tests/drivers/devn-noentry.c"],
        flags: &[],
    },
];

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let include = manifest.join("include");
    let header = include.join("pktkit/legacy_abi.h");
    println!("cargo:rerun-if-changed={}", header.display());
    for snapshot in [
        "legacy_abi_v1.h",
        "legacy_abi_v1_1.h",
        "legacy_abi_v1_2.h",
        "legacy_abi_v1_3.h",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            include.join("pktkit").join(snapshot).display()
        );
    }
    println!("cargo:rerun-if-env-changed=CC");

    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .allowlist_type("pktkit_lg_.*")
        .allowlist_var("PKTKIT_LG_.*")
        .derive_default(true)
        .derive_debug(false)
        .layout_tests(true)
        .generate()
        .expect("bindgen could not parse legacy_abi.h (is libclang installed?)");
    bindings
        .write_to_file(out.join("legacy_abi_sys.rs"))
        .expect("write legacy ABI bindings");

    // <target>/<profile>/build/pktkit-shim-HASH/out -> <target>/<profile>/legacy
    let stable = out.ancestors().nth(3).map(|p| p.join("legacy"));
    if let Some(dir) = &stable {
        std::fs::create_dir_all(dir).expect("create the legacy driver directory");
    }
    for so in OBJECTS {
        for s in so.sources {
            println!("cargo:rerun-if-changed={s}");
        }
        let path = build_shared_object(&manifest, &include, &out, so);
        if let Some(dir) = &stable {
            std::fs::copy(&path, dir.join(so.file)).expect("copy a legacy driver");
        }
        println!("cargo:rustc-env={}={}", so.env, path.display());
    }
    if let Some(dir) = &stable {
        println!("cargo:rustc-env=PKTKIT_SO_DIR={}", dir.display());
    }
}

/// Compiles each source with -fPIC and links them with `cc -shared`.
fn build_shared_object(manifest: &Path, include: &Path, out: &Path, so: &SharedObject) -> PathBuf {
    let cc = env::var("CC").unwrap_or_else(|_| "cc".into());
    let stem = so.file.trim_end_matches(".so");
    let mut objects = Vec::new();
    for (i, src) in so.sources.iter().enumerate() {
        let obj = out.join(format!("{stem}.{i}.o"));
        run(Command::new(&cc)
            .args([
                "-c", "-fPIC", "-O2", "-g", "-std=c11", "-Wall", "-Wextra", "-Werror",
            ])
            .args(["-fvisibility=hidden", "-D_DEFAULT_SOURCE"])
            .arg("-I")
            .arg(include)
            .args(so.flags)
            .arg("-o")
            .arg(&obj)
            .arg(manifest.join(src)));
        objects.push(obj);
    }
    let path = out.join(so.file);
    run(Command::new(&cc)
        .args(["-shared", "-Wl,-z,defs", "-Wl,-soname"])
        .arg(so.file)
        .arg("-o")
        .arg(&path)
        .args(&objects));
    path
}

fn run(cmd: &mut Command) {
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}
