//! The ELF header check the shim makes before it lets the dynamic loader
//! near a file: the first 64 bytes must say "shared object for this
//! machine". Parsed here by hand (ELF-64 and ELF-32 headers, either byte
//! order), from untrusted bytes: nothing panics on any input.
//!
//! Reference: System V ABI, "ELF Header" (e_ident, e_type, e_machine).

/// `e_type` of a shared object.
pub const ET_DYN: u16 = 3;
/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;
/// `e_machine` of AArch64.
pub const EM_AARCH64: u16 = 183;
/// `e_machine` of 32-bit x86.
pub const EM_386: u16 = 3;
/// `e_machine` of RISC-V.
pub const EM_RISCV: u16 = 243;

/// The `e_machine` of the machine this shim was built for.
pub const fn host_machine() -> u16 {
    if cfg!(target_arch = "x86_64") {
        EM_X86_64
    } else if cfg!(target_arch = "aarch64") {
        EM_AARCH64
    } else if cfg!(target_arch = "x86") {
        EM_386
    } else if cfg!(target_arch = "riscv64") {
        EM_RISCV
    } else {
        0
    }
}

/// The ELF class (`EI_CLASS`) of this machine: 2 for 64-bit.
const fn host_class() -> u8 {
    if cfg!(target_pointer_width = "64") {
        2
    } else {
        1
    }
}

/// The ELF data encoding (`EI_DATA`) of this machine: 1 little endian.
const fn host_data() -> u8 {
    if cfg!(target_endian = "little") {
        1
    } else {
        2
    }
}

/// What is wrong with a file's ELF header.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    /// Shorter than an ELF identification, or without the `\x7fELF` magic.
    #[error("not an ELF file")]
    NotElf,
    /// 32-bit for a 64-bit machine, or the other way round.
    #[error("ELF class {found} (this machine needs {expected})")]
    Class {
        /// EI_CLASS found.
        found: u8,
        /// EI_CLASS needed.
        expected: u8,
    },
    /// The wrong byte order.
    #[error("ELF byte order {found} (this machine needs {expected})")]
    ByteOrder {
        /// EI_DATA found.
        found: u8,
        /// EI_DATA needed.
        expected: u8,
    },
    /// Not a shared object (an executable, object file or core).
    #[error("ELF type {0} is not a shared object (ET_DYN = 3)")]
    NotShared(u16),
    /// Built for another architecture.
    #[error("built for machine {} ({found}); this machine is {} ({expected})", machine_name(*found), machine_name(*expected))]
    Machine {
        /// e_machine found.
        found: u16,
        /// e_machine of this machine.
        expected: u16,
    },
}

/// A readable name for an `e_machine` value.
pub fn machine_name(m: u16) -> &'static str {
    match m {
        EM_X86_64 => "x86-64",
        EM_AARCH64 => "aarch64",
        EM_386 => "i386",
        EM_RISCV => "riscv",
        40 => "arm",
        8 => "mips",
        21 => "ppc64",
        22 => "s390",
        _ => "unknown",
    }
}

/// Checks that `head` (the first bytes of a file, at least 20 of them
/// matter) is an ELF shared object for this machine.
pub fn check_header(head: &[u8]) -> Result<(), ElfError> {
    if head.len() < 20 || head[..4] != *b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    let (class, data) = (head[4], head[5]);
    if class != host_class() {
        return Err(ElfError::Class {
            found: class,
            expected: host_class(),
        });
    }
    if data != host_data() {
        return Err(ElfError::ByteOrder {
            found: data,
            expected: host_data(),
        });
    }
    let half = |off: usize| {
        let b = [head[off], head[off + 1]];
        if data == 1 {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    // e_type at 16, e_machine at 18, in both ELF-32 and ELF-64.
    let e_type = half(16);
    if e_type != ET_DYN {
        return Err(ElfError::NotShared(e_type));
    }
    let machine = half(18);
    if machine != host_machine() {
        return Err(ElfError::Machine {
            found: machine,
            expected: host_machine(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, e_type: u16, machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = class;
        h[5] = data;
        h[6] = 1;
        let (t, m) = if data == 1 {
            (e_type.to_le_bytes(), machine.to_le_bytes())
        } else {
            (e_type.to_be_bytes(), machine.to_be_bytes())
        };
        h[16..18].copy_from_slice(&t);
        h[18..20].copy_from_slice(&m);
        h
    }

    #[test]
    fn accepts_a_shared_object_for_this_machine() {
        let h = header(host_class(), host_data(), ET_DYN, host_machine());
        assert_eq!(check_header(&h), Ok(()));
    }

    #[test]
    fn refuses_everything_else_without_panicking() {
        assert_eq!(check_header(b""), Err(ElfError::NotElf));
        assert_eq!(check_header(b"\x7fELF"), Err(ElfError::NotElf));
        assert_eq!(
            check_header(b"#!/bin/sh\necho hello\n"),
            Err(ElfError::NotElf)
        );
        let other = if host_class() == 2 { 1 } else { 2 };
        assert!(matches!(
            check_header(&header(other, host_data(), ET_DYN, host_machine())),
            Err(ElfError::Class { .. })
        ));
        let order = if host_data() == 1 { 2 } else { 1 };
        assert!(matches!(
            check_header(&header(host_class(), order, ET_DYN, host_machine())),
            Err(ElfError::ByteOrder { .. })
        ));
        assert_eq!(
            check_header(&header(host_class(), host_data(), 2, host_machine())),
            Err(ElfError::NotShared(2))
        );
        let foreign = if host_machine() == EM_AARCH64 {
            EM_X86_64
        } else {
            EM_AARCH64
        };
        assert_eq!(
            check_header(&header(host_class(), host_data(), ET_DYN, foreign)),
            Err(ElfError::Machine {
                found: foreign,
                expected: host_machine()
            })
        );
        // Every truncation of a good header is refused, never a panic.
        let good = header(host_class(), host_data(), ET_DYN, host_machine());
        for n in 0..20 {
            assert_eq!(check_header(&good[..n]), Err(ElfError::NotElf));
        }
    }
}
