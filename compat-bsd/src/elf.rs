//! Just enough ELF to answer two questions without loading anything: "is
//! this file an object of the kind we want, for this machine?" and "which
//! symbols does it define and which does it need?". Used by `port check`
//! (driver objects against the KPI list), by the loader of ported `.so`
//! drivers (before `dlopen`), and by compat-bsd's build script (the symbols
//! its own C archive defines). ELF64 little-endian only: the machines
//! pktkit runs on (x86-64, AArch64).
//!
//! Every read is bounds-checked: the bytes come from files a user names.

use std::fmt;

/// `e_type` of a relocatable object (`.o`).
pub const ET_REL: u16 = 1;
/// `e_type` of a shared object (`.so`).
pub const ET_DYN: u16 = 3;
/// `sh_type` of the full symbol table.
const SHT_SYMTAB: u32 = 2;
/// `sh_type` of the dynamic symbol table.
const SHT_DYNSYM: u32 = 11;
/// `st_shndx` of an undefined symbol.
const SHN_UNDEF: u16 = 0;
/// Symbol bindings (`st_info >> 4`).
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;

/// `e_machine` of the machine this code was built for.
pub const fn host_machine() -> u16 {
    if cfg!(target_arch = "x86_64") {
        62
    } else if cfg!(target_arch = "aarch64") {
        183
    } else {
        0
    }
}

/// Why a file is not the ELF object wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// No ELF magic at the start.
    NotElf,
    /// 32-bit or big-endian.
    NotElf64Le,
    /// Another object type than the one asked for.
    WrongType {
        /// `e_type` found.
        found: u16,
        /// `e_type` wanted.
        wanted: u16,
    },
    /// Built for another machine.
    WrongMachine(u16),
    /// A header or table runs past the end of the file.
    Truncated(&'static str),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::NotElf => write!(f, "not an ELF file"),
            ElfError::NotElf64Le => write!(f, "not a 64-bit little-endian ELF file"),
            ElfError::WrongType { found, wanted } => write!(
                f,
                "ELF type {found} is not {} (e_type {wanted})",
                match *wanted {
                    ET_DYN => "a shared object",
                    ET_REL => "a relocatable object",
                    _ => "the type wanted",
                }
            ),
            ElfError::WrongMachine(m) => write!(
                f,
                "built for ELF machine {m}, this machine is {}",
                host_machine()
            ),
            ElfError::Truncated(what) => write!(f, "truncated ELF file ({what})"),
        }
    }
}

impl std::error::Error for ElfError {}

/// One symbol of a symbol table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Its name.
    pub name: String,
    /// Defined here (else needed from elsewhere).
    pub defined: bool,
    /// Weak binding: an undefined weak symbol may stay unresolved.
    pub weak: bool,
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<usize> {
    let v = u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?);
    usize::try_from(v).ok()
}

/// Checks the ELF header: 64-bit little-endian, `e_type == wanted`, this
/// machine.
pub fn check_header(b: &[u8], wanted: u16) -> Result<(), ElfError> {
    if b.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ElfError::NotElf);
    }
    // EI_CLASS = 2 (64-bit), EI_DATA = 1 (little-endian).
    if b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err(ElfError::NotElf64Le);
    }
    let e_type = u16_at(b, 16).ok_or(ElfError::Truncated("header"))?;
    if e_type != wanted {
        return Err(ElfError::WrongType {
            found: e_type,
            wanted,
        });
    }
    let machine = u16_at(b, 18).ok_or(ElfError::Truncated("header"))?;
    if machine != host_machine() {
        return Err(ElfError::WrongMachine(machine));
    }
    Ok(())
}

/// The global and weak symbols of the file's symbol table: the dynamic one
/// (`.dynsym`) when `dynamic`, else the full one (`.symtab`). A file
/// without that table has none. Local symbols are left out.
pub fn symbols(b: &[u8], dynamic: bool) -> Result<Vec<Symbol>, ElfError> {
    let trunc = ElfError::Truncated("section headers");
    let shoff = u64_at(b, 0x28).ok_or(ElfError::Truncated("header"))?;
    let shentsize = usize::from(u16_at(b, 0x3a).ok_or(ElfError::Truncated("header"))?);
    let shnum = usize::from(u16_at(b, 0x3c).ok_or(ElfError::Truncated("header"))?);
    let section = |i: usize| -> Option<(u32, usize, usize, usize, usize)> {
        let h = shoff.checked_add(i.checked_mul(shentsize)?)?;
        // sh_type, sh_offset, sh_size, sh_link, sh_entsize.
        Some((
            u32_at(b, h + 4)?,
            u64_at(b, h + 0x18)?,
            u64_at(b, h + 0x20)?,
            u32_at(b, h + 0x28)? as usize,
            u64_at(b, h + 0x38)?,
        ))
    };
    let want = if dynamic { SHT_DYNSYM } else { SHT_SYMTAB };
    let mut out = Vec::new();
    for i in 0..shnum {
        let (ty, off, size, link, entsize) =
            section(i).ok_or(ElfError::Truncated("section headers"))?;
        if ty != want || entsize < 24 {
            continue;
        }
        let (_, str_off, str_size, _, _) = section(link).ok_or(trunc.clone())?;
        let strtab = b
            .get(str_off..str_off.saturating_add(str_size))
            .ok_or(ElfError::Truncated("string table"))?;
        let table = b
            .get(off..off.saturating_add(size))
            .ok_or(ElfError::Truncated("symbol table"))?;
        for sym in table.chunks_exact(entsize) {
            // Elf64_Sym: st_name u32, st_info u8, st_other u8, st_shndx u16, ...
            let (Some(name_off), Some(&info), Some(shndx)) =
                (u32_at(sym, 0), sym.get(4), u16_at(sym, 6))
            else {
                continue;
            };
            let binding = info >> 4;
            if binding != STB_GLOBAL && binding != STB_WEAK {
                continue;
            }
            let name = strtab
                .get(name_off as usize..)
                .and_then(|s| s.split(|&c| c == 0).next())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .unwrap_or_default();
            if name.is_empty() {
                continue;
            }
            out.push(Symbol {
                name,
                defined: shndx != SHN_UNDEF,
                weak: binding == STB_WEAK,
            });
        }
    }
    Ok(out)
}

/// The members of a Unix `ar` archive (a static library), without the
/// archive's own symbol and long-name tables. Empty if `b` is no archive.
pub fn archive_members(b: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    if !b.starts_with(b"!<arch>\n") {
        return out;
    }
    let mut at = 8;
    while let Some(header) = b.get(at..at + 60) {
        let name = &header[..16];
        let size: Option<usize> = std::str::from_utf8(&header[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let Some(size) = size else { break };
        let start = at + 60;
        let Some(data) = b.get(start..start + size) else {
            break;
        };
        if !name.starts_with(b"/ ") && !name.starts_with(b"// ") && !name.starts_with(b"/SYM64/") {
            out.push(data);
        }
        // Members start on even offsets.
        at = start + size + (size & 1);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_is_not_elf() {
        assert_eq!(check_header(b"#!/bin/sh\n", ET_DYN), Err(ElfError::NotElf));
        assert_eq!(
            check_header(b"\x7fELF\x01\x01", ET_DYN),
            Err(ElfError::NotElf64Le)
        );
    }

    #[test]
    fn reads_our_own_executable() {
        let Ok(exe) = std::fs::read("/proc/self/exe") else {
            return;
        };
        // Test binaries are position-independent executables: ET_DYN.
        let ty = u16_at(&exe, 16);
        assert!(ty == Some(ET_DYN) || ty == Some(2));
        let syms = symbols(&exe, false).unwrap_or_default();
        assert!(syms.iter().any(|s| s.defined && s.name.contains("rust")));
    }

    #[test]
    fn walks_an_archive() {
        let mut a = b"!<arch>\n".to_vec();
        for (name, data) in [
            ("/               ", &b"xx"[..]),
            ("a.o/            ", b"abc"),
        ] {
            a.extend_from_slice(name.as_bytes());
            a.extend_from_slice(format!("{:<32}{:<10}`\n", "0", data.len()).as_bytes());
            a.extend_from_slice(data);
            if data.len() % 2 == 1 {
                a.push(b'\n');
            }
        }
        assert_eq!(archive_members(&a), vec![&b"abc"[..]]);
    }
}
