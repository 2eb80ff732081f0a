//! Generates the Rust view of `include/pktkit/mbuf.h` with bindgen, so the mbuf
//! layout is declared exactly once (in C) and Rust can never drift from it.
//!
//! Regenerate by hand (for reading) with:
//! `bindgen native/include/pktkit/mbuf.h --allowlist-type 'mbuf|m_hdr|pkthdr|m_ext_storage' --allowlist-var 'M_.*|MT_.*|PKTKIT_.*'`

use std::env;
use std::path::PathBuf;

fn main() {
    let header = "include/pktkit/mbuf.h";
    println!("cargo:rerun-if-changed={header}");
    let include =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("include");
    // Crates that build C against the mbuf (compat-bsd, shim-legacy) find the
    // header through DEP_PKTKIT_MBUF_INCLUDE.
    println!("cargo:include={}", include.display());
    let bindings = bindgen::Builder::default()
        .header(header)
        .allowlist_type("mbuf|m_hdr|pkthdr|m_ext_storage")
        .allowlist_var("M_.*|MT_.*|PKTKIT_.*")
        .derive_default(false)
        .derive_debug(false)
        .layout_tests(true)
        .generate()
        .expect("bindgen could not parse include/pktkit/mbuf.h (is libclang installed?)");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("mbuf_sys.rs");
    bindings.write_to_file(&out).expect("write mbuf bindings");
}
