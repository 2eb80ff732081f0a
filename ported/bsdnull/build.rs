//! Compiles if_bsdnull.c against compat-bsd's headers.

use std::env;

fn main() {
    let include = env::var("DEP_PKTKIT_BSD_INCLUDE").expect("pktkit-bsd exports its include dir");
    let mbuf =
        env::var("DEP_PKTKIT_BSD_MBUF_INCLUDE").expect("pktkit-bsd exports the mbuf include dir");
    println!("cargo:rerun-if-changed=if_bsdnull.c");
    cc::Build::new()
        .include(include)
        .include(mbuf)
        .define("_KERNEL", None)
        .flag_if_supported("-Wno-unused-parameter")
        .warnings(true)
        .file("if_bsdnull.c")
        .compile("pktkit_bsdnull_c");
}
