//! Exports compat-bsd's KPI from the pktkit binary, so that ported drivers
//! built as shared objects (`-d /path/driver.so`) resolve against it as
//! io-pkt's `devnp-*.so` resolve against io-pkt.
//!
//! compat-bsd's build script lists every KPI symbol (`DEP_PKTKIT_BSD_KPI_LIST`,
//! one name a line). For the binaries this script passes the linker
//! `--undefined=NAME` for each, so the archive members defining them are
//! linked even when no built-in driver calls them, and a `--dynamic-list`
//! of them, so they land in the dynamic symbol table (and only they: the
//! rest of the binary stays private).

use std::env;
use std::path::PathBuf;

fn main() {
    let list = env::var("DEP_PKTKIT_BSD_KPI_LIST").expect("pktkit-bsd exports its KPI list");
    println!("cargo:rerun-if-changed={list}");
    let names = std::fs::read_to_string(&list).expect("read compat-bsd's KPI list");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dynamic_list = out.join("kpi-exports.list");
    let mut text = String::from("{\n");
    for name in names.lines().filter(|n| !n.is_empty()) {
        text.push_str("  ");
        text.push_str(name);
        text.push_str(";\n");
        println!("cargo:rustc-link-arg-bins=-Wl,--undefined={name}");
    }
    text.push_str("};\n");
    std::fs::write(&dynamic_list, text).expect("write the dynamic list");
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--dynamic-list={}",
        dynamic_list.display()
    );
}
