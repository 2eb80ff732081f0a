//! The legacy ABI as Rust sees it: bindgen's view of
//! `include/pktkit/legacy_abi.h` (see build.rs), with bindgen's layout tests.
//! Nothing here is hand-copied from the header.

#![allow(
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    dead_code,
    missing_docs,
    clippy::missing_safety_doc,
    clippy::undocumented_unsafe_blocks,
    clippy::useless_transmute,
    clippy::ptr_offset_with_cast
)]

include!(concat!(env!("OUT_DIR"), "/legacy_abi_sys.rs"));
