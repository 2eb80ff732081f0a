//! Compiles if_pcn.c against compat-bsd's headers.

use std::env;

fn main() {
    let include = env::var("DEP_PKTKIT_BSD_INCLUDE").expect("pktkit-bsd exports its include dir");
    let mbuf =
        env::var("DEP_PKTKIT_BSD_MBUF_INCLUDE").expect("pktkit-bsd exports the mbuf include dir");
    println!("cargo:rerun-if-changed=if_pcn.c");
    println!("cargo:rerun-if-changed=pcnreg.h");
    cc::Build::new()
        .include(include)
        .include(mbuf)
        .define("_KERNEL", None)
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(true)
        .file("if_pcn.c")
        .compile("pktkit_pcn_c");
}
