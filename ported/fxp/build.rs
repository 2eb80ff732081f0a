//! Compiles if_fxp.c against compat-bsd's headers.

use std::env;

fn main() {
    let include = env::var("DEP_PKTKIT_BSD_INCLUDE").expect("pktkit-bsd exports its include dir");
    let mbuf =
        env::var("DEP_PKTKIT_BSD_MBUF_INCLUDE").expect("pktkit-bsd exports the mbuf include dir");
    println!("cargo:rerun-if-changed=if_fxp.c");
    println!("cargo:rerun-if-changed=i8255xreg.h");
    cc::Build::new()
        .include(include)
        .include(mbuf)
        .define("_KERNEL", None)
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(true)
        .file("if_fxp.c")
        .compile("pktkit_fxp_c");
}
