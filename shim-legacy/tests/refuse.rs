//! The checks made before anything of a legacy driver is called: each
//! failure is a clear error, and the process (the stack) carries on.

mod common;

use std::io::Write;

use pktkit_native::DriverError;
use pktkit_shim::drivers;
use pktkit_shim::elf::{self, EM_AARCH64, EM_X86_64};
use pktkit_shim::{LegacyLibrary, LoadError};

/// The error of a refused load (factories are not Debug).
fn refused<T>(r: Result<T, DriverError>) -> DriverError {
    match r {
        Ok(_) => panic!("accepted"),
        Err(e) => e,
    }
}

fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("pktkit-shim-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp dir");
    d
}

#[test]
fn missing_file_is_refused_with_the_os_error() {
    let e = LegacyLibrary::load("/nonexistent/devn-none.so".as_ref()).unwrap_err();
    match &e {
        LoadError::Open { source, .. } => assert_eq!(source.kind(), std::io::ErrorKind::NotFound),
        other => panic!("wrong error: {other}"),
    }
    let e = refused(pktkit_shim::factory("legacy:/nonexistent/devn-none.so"));
    assert!(matches!(e, DriverError::Io { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/devn-none.so"), "{e}");
}

#[test]
fn text_file_is_not_elf() {
    let d = tmpdir("text");
    let p = d.join("readme.so");
    std::fs::File::create(&p)
        .and_then(|mut f| f.write_all(b"this is not a driver\n"))
        .expect("write");
    let e = LegacyLibrary::load(&p).unwrap_err();
    assert!(
        matches!(
            &e,
            LoadError::Elf {
                source: elf::ElfError::NotElf,
                ..
            }
        ),
        "{e}"
    );
    let e = refused(pktkit_shim::factory(&format!("legacy:{}", p.display())));
    assert!(e.to_string().contains("not an ELF file"), "{e}");
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn shared_object_for_another_architecture_is_refused_before_loading() {
    // A copy of a real driver with e_machine patched to another machine.
    let d = tmpdir("arch");
    let p = d.join("devn-null-foreign.so");
    let mut bytes = std::fs::read(drivers::DEVN_NULL).expect("read devn-null.so");
    let foreign = if elf::host_machine() == EM_AARCH64 {
        EM_X86_64
    } else {
        EM_AARCH64
    };
    bytes[18..20].copy_from_slice(&foreign.to_le_bytes());
    std::fs::write(&p, &bytes).expect("write");
    let e = LegacyLibrary::load(&p).unwrap_err();
    match &e {
        LoadError::Elf {
            source: elf::ElfError::Machine { found, expected },
            ..
        } => {
            assert_eq!(*found, foreign);
            assert_eq!(*expected, elf::host_machine());
        }
        other => panic!("wrong error: {other}"),
    }
    assert!(
        e.to_string().contains("aarch64") || e.to_string().contains("x86-64"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn executable_is_not_a_shared_object() {
    // /bin/true on Debian is a PIE (ET_DYN); build a real ET_EXEC instead by
    // patching e_type of a copy, which the check must refuse.
    let d = tmpdir("exec");
    let p = d.join("exec.so");
    let mut bytes = std::fs::read(drivers::DEVN_NULL).expect("read");
    bytes[16..18].copy_from_slice(&2u16.to_le_bytes());
    std::fs::write(&p, &bytes).expect("write");
    let e = LegacyLibrary::load(&p).unwrap_err();
    assert!(
        matches!(
            &e,
            LoadError::Elf {
                source: elf::ElfError::WrongType {
                    found: 2,
                    wanted: elf::ET_DYN,
                },
                ..
            }
        ),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn shared_object_without_the_entry_symbol_is_refused() {
    let e = LegacyLibrary::load(drivers::DEVN_NOENTRY.as_ref()).unwrap_err();
    assert!(matches!(&e, LoadError::NoEntry { .. }), "{e}");
    assert!(e.to_string().contains("pktkit_legacy_entry"), "{e}");
}

#[test]
fn unsupported_abi_major_is_refused_without_calling_the_driver() {
    // devn-abi2's init and shutdown abort the process if called.
    let e = LegacyLibrary::load(drivers::DEVN_ABI2.as_ref()).unwrap_err();
    match &e {
        LoadError::AbiMajor {
            major, supported, ..
        } => {
            assert_eq!(*major, 2);
            assert_eq!(*supported, &[1]);
        }
        other => panic!("wrong error: {other}"),
    }
    let e = refused(pktkit_shim::factory(&format!(
        "legacy:{}",
        drivers::DEVN_ABI2
    )));
    assert!(matches!(e, DriverError::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("ABI 2.0"), "{e}");
}

#[test]
fn after_every_refusal_a_good_driver_still_loads_and_runs() {
    for bad in [
        "/nonexistent.so",
        drivers::DEVN_NOENTRY,
        drivers::DEVN_ABI2,
        "/etc/hostname",
    ] {
        assert!(pktkit_shim::factory(&format!("legacy:{bad}")).is_err());
    }
    let pool = common::pool("refuse-after", 256);
    let (mut d, owner) = common::attach(&pool, drivers::DEVN_NULL, &[]).expect("attach");
    let mut q = d.start().expect("start");
    let mut b = pktkit_native::PacketBatch::with_limit(8);
    assert_eq!(q.rx[0].rx_burst(&mut b), 8);
    b.free_all();
    d.stop(q);
    drop(d);
    assert_eq!(pool.held_by(owner), 0);
}
