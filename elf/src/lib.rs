//! Just enough ELF for pktkit to answer, without loading anything, the
//! questions it asks of files a user names:
//!
//! - is this an object of the kind wanted (shared object, relocatable
//!   object), for this machine? ([`check_header`]) -- the legacy shim and
//!   the loader of ported `.so` drivers ask before `dlopen`;
//! - which symbols does it define and which does it need? ([`symbols`],
//!   [`archive_members`]) -- `pktkit port check`, the ported-driver loader
//!   and compat-bsd's build script;
//! - which interpreter and libraries does it need? ([`dynamic_deps`]) --
//!   the lab, to stage a dynamically linked program's libraries.
//!
//! The tables are read from 64-bit little-endian files only (the machines
//! pktkit runs on: x86-64, AArch64); the header check still names what a
//! 32-bit or big-endian file is. Every read is bounds-checked: no input
//! makes this crate panic.
//!
//! Reference: System V ABI, "Object Files" (ELF header, sections, symbol
//! table, program headers, dynamic section).

/// `e_type` of a relocatable object (`.o`).
pub const ET_REL: u16 = 1;
/// `e_type` of an executable that is not position-independent.
pub const ET_EXEC: u16 = 2;
/// `e_type` of a shared object (`.so`, and position-independent
/// executables).
pub const ET_DYN: u16 = 3;
/// `e_machine` of 32-bit x86.
pub const EM_386: u16 = 3;
/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;
/// `e_machine` of AArch64.
pub const EM_AARCH64: u16 = 183;
/// `e_machine` of RISC-V.
pub const EM_RISCV: u16 = 243;

const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
const SHN_UNDEF: u16 = 0;
const STB_GLOBAL: u8 = 1;
const STB_WEAK: u8 = 2;

/// The `e_machine` of the machine this code was built for.
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

/// The ELF data encoding (`EI_DATA`) of this machine: 1 little-endian.
const fn host_data() -> u8 {
    if cfg!(target_endian = "little") {
        1
    } else {
        2
    }
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

fn type_name(t: u16) -> &'static str {
    match t {
        ET_REL => "a relocatable object",
        ET_EXEC => "an executable",
        ET_DYN => "a shared object",
        4 => "a core file",
        _ => "of unknown type",
    }
}

/// Why a file is not the ELF object wanted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElfError {
    /// Shorter than an ELF identification, or without the `\x7fELF` magic.
    #[error("not an ELF file")]
    NotElf,
    /// 32-bit for a 64-bit machine, or the other way round.
    #[error("ELF class {found} (this machine needs {expected}: {}-bit)", if *expected == 2 { 64 } else { 32 })]
    Class {
        /// `EI_CLASS` found.
        found: u8,
        /// `EI_CLASS` needed.
        expected: u8,
    },
    /// The wrong byte order.
    #[error("ELF byte order {found} (this machine needs {expected})")]
    ByteOrder {
        /// `EI_DATA` found.
        found: u8,
        /// `EI_DATA` needed.
        expected: u8,
    },
    /// Another object type than the one asked for.
    #[error("ELF type {found} is {}, not {} (e_type {wanted})", type_name(*found), type_name(*wanted))]
    WrongType {
        /// `e_type` found.
        found: u16,
        /// `e_type` wanted.
        wanted: u16,
    },
    /// Built for another architecture.
    #[error("built for machine {} ({found}); this machine is {} ({expected})", machine_name(*found), machine_name(*expected))]
    Machine {
        /// `e_machine` found.
        found: u16,
        /// `e_machine` of this machine.
        expected: u16,
    },
    /// A header or table runs past the end of the file.
    #[error("truncated ELF file ({0})")]
    Truncated(&'static str),
}

/// Bounds-checked little-endian reads.
fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}

fn usize_at(b: &[u8], off: usize) -> Option<usize> {
    usize::try_from(u64_at(b, off)?).ok()
}

/// The NUL-terminated string at `off`.
fn c_str(b: &[u8], off: usize) -> Option<String> {
    let rest = b.get(off..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// Checks the ELF header at the start of `b` (20 bytes matter): the ELF
/// magic, this machine's class and byte order, `e_type == wanted` and this
/// machine's `e_machine`.
pub fn check_header(b: &[u8], wanted: u16) -> Result<(), ElfError> {
    if b.len() < 20 || b[..4] != *b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    let (class, data) = (b[4], b[5]);
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
        let h = [b[off], b[off + 1]];
        if data == 1 {
            u16::from_le_bytes(h)
        } else {
            u16::from_be_bytes(h)
        }
    };
    // e_type at 16 and e_machine at 18, in ELF-32 and ELF-64 alike.
    let found = half(16);
    if found != wanted {
        return Err(ElfError::WrongType { found, wanted });
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

/// The `e_machine` of a 64-bit little-endian ELF file (the first 64
/// bytes of it suffice), e.g. to tell the x86-64 libraries from i386 ones
/// of the same name.
pub fn machine(b: &[u8]) -> Result<u16, ElfError> {
    check_elf64le(b)?;
    u16_at(b, 18).ok_or(ElfError::Truncated("header"))
}

/// Checks that `b` is a 64-bit little-endian ELF file (any type, any
/// machine): what the table readers below need.
fn check_elf64le(b: &[u8]) -> Result<(), ElfError> {
    if b.len() < 64 || b[..4] != *b"\x7fELF" {
        return Err(ElfError::NotElf);
    }
    if b[4] != 2 {
        return Err(ElfError::Class {
            found: b[4],
            expected: 2,
        });
    }
    if b[5] != 1 {
        return Err(ElfError::ByteOrder {
            found: b[5],
            expected: 1,
        });
    }
    Ok(())
}

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

/// The global and weak symbols of the file's symbol table: the dynamic one
/// (`.dynsym`) when `dynamic`, else the full one (`.symtab`). A file
/// without that table has none. Local symbols are left out.
pub fn symbols(b: &[u8], dynamic: bool) -> Result<Vec<Symbol>, ElfError> {
    check_elf64le(b)?;
    let header = ElfError::Truncated("header");
    let shoff = usize_at(b, 0x28).ok_or(header.clone())?;
    let shentsize = usize::from(u16_at(b, 0x3a).ok_or(header.clone())?);
    let shnum = usize::from(u16_at(b, 0x3c).ok_or(header)?);
    // sh_type, sh_offset, sh_size, sh_link, sh_entsize of section i.
    let section = |i: usize| -> Option<(u32, usize, usize, usize, usize)> {
        let h = shoff.checked_add(i.checked_mul(shentsize)?)?;
        Some((
            u32_at(b, h.saturating_add(4))?,
            usize_at(b, h.saturating_add(0x18))?,
            usize_at(b, h.saturating_add(0x20))?,
            u32_at(b, h.saturating_add(0x28))? as usize,
            usize_at(b, h.saturating_add(0x38))?,
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
        let (_, str_off, str_size, _, _) =
            section(link).ok_or(ElfError::Truncated("section headers"))?;
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
            let name = c_str(strtab, name_off as usize).unwrap_or_default();
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
        let Some(data) = b.get(start..start.saturating_add(size)) else {
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

/// What an ELF file asks of the dynamic loader.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deps {
    /// `e_machine`: a library must be for the same machine.
    pub machine: u16,
    /// The program interpreter (`PT_INTERP`), for executables.
    pub interp: Option<String>,
    /// `DT_NEEDED` names, in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH`, else `DT_RPATH`, split at `:`.
    pub runpath: Vec<String>,
}

/// Reads a 64-bit little-endian ELF file's interpreter and dynamic section.
/// A static executable gives no interpreter and nothing needed.
pub fn dynamic_deps(b: &[u8]) -> Result<Deps, ElfError> {
    const PT_LOAD: u32 = 1;
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NEEDED: u64 = 1;
    const DT_STRTAB: u64 = 5;
    const DT_RPATH: u64 = 15;
    const DT_RUNPATH: u64 = 29;
    check_elf64le(b)?;
    let header = ElfError::Truncated("header");
    let phdrs = ElfError::Truncated("program headers");
    let phoff = usize_at(b, 0x20).ok_or(header.clone())?;
    let phentsize = usize::from(u16_at(b, 0x36).ok_or(header.clone())?);
    let phnum = usize::from(u16_at(b, 0x38).ok_or(header.clone())?);
    let mut deps = Deps {
        machine: u16_at(b, 0x12).ok_or(header)?,
        ..Deps::default()
    };
    // (vaddr, offset, filesz) of each loaded segment, to turn DT_STRTAB's
    // address into a file offset.
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..phnum {
        let ph = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .ok_or(phdrs.clone())?;
        let kind = u32_at(b, ph).ok_or(phdrs.clone())?;
        let offset = usize_at(b, ph.saturating_add(8)).ok_or(phdrs.clone())?;
        let vaddr = u64_at(b, ph.saturating_add(16)).ok_or(phdrs.clone())?;
        let filesz = usize_at(b, ph.saturating_add(32)).ok_or(phdrs.clone())?;
        match kind {
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            PT_INTERP => {
                deps.interp = Some(c_str(b, offset).ok_or(ElfError::Truncated("interpreter"))?)
            }
            _ => {}
        }
    }
    let Some((dyn_off, dyn_size)) = dynamic else {
        return Ok(deps);
    };
    let dyn_end = dyn_off.saturating_add(dyn_size);
    let mut strtab = None;
    let mut needed = Vec::new();
    let (mut runpath, mut rpath) = (None, None);
    for e in (dyn_off..dyn_end).step_by(16) {
        let (Some(tag), Some(val)) = (u64_at(b, e), u64_at(b, e.saturating_add(8))) else {
            return Err(ElfError::Truncated("dynamic section"));
        };
        match tag {
            0 => break,
            DT_NEEDED => needed.push(val),
            DT_STRTAB => strtab = Some(val),
            DT_RPATH => rpath = Some(val),
            DT_RUNPATH => runpath = Some(val),
            _ => {}
        }
    }
    if needed.is_empty() && runpath.is_none() && rpath.is_none() {
        return Ok(deps);
    }
    let strtab = strtab
        .and_then(|a| {
            loads
                .iter()
                .find(|&&(v, _, size)| a >= v && a - v < size as u64)
                .and_then(|&(v, off, _)| off.checked_add(usize::try_from(a - v).ok()?))
        })
        .ok_or(ElfError::Truncated("dynamic string table"))?;
    let string = |o: u64| {
        usize::try_from(o)
            .ok()
            .and_then(|o| c_str(b, strtab.checked_add(o)?))
            .ok_or(ElfError::Truncated("dynamic string table"))
    };
    for n in needed {
        deps.needed.push(string(n)?);
    }
    if let Some(p) = runpath.or(rpath) {
        deps.runpath = string(p)?
            .split(':')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
    }
    Ok(deps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(class: u8, data: u8, ty: u16, machine: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = class;
        h[5] = data;
        let (t, m) = if data == 1 {
            (ty.to_le_bytes(), machine.to_le_bytes())
        } else {
            (ty.to_be_bytes(), machine.to_be_bytes())
        };
        h[16..18].copy_from_slice(&t);
        h[18..20].copy_from_slice(&m);
        h
    }

    #[test]
    fn headers_are_judged_field_by_field() {
        let host = host_machine();
        assert_eq!(check_header(&header(2, 1, ET_DYN, host), ET_DYN), Ok(()));
        assert_eq!(check_header(b"#!/bin/sh\n", ET_DYN), Err(ElfError::NotElf));
        assert_eq!(check_header(b"\x7fELF", ET_DYN), Err(ElfError::NotElf));
        assert!(matches!(
            check_header(&header(1, 1, ET_DYN, EM_386), ET_DYN),
            Err(ElfError::Class { found: 1, .. })
        ));
        assert!(matches!(
            check_header(&header(2, 2, ET_DYN, host), ET_DYN),
            Err(ElfError::ByteOrder { found: 2, .. })
        ));
        assert_eq!(
            check_header(&header(2, 1, ET_REL, host), ET_DYN),
            Err(ElfError::WrongType {
                found: ET_REL,
                wanted: ET_DYN
            })
        );
        let other = if host == EM_AARCH64 {
            EM_X86_64
        } else {
            EM_AARCH64
        };
        let e = check_header(&header(2, 1, ET_DYN, other), ET_DYN).unwrap_err();
        assert!(e.to_string().contains(machine_name(other)), "{e}");
    }

    /// Any machine's header gives its e_machine; a 32-bit or big-endian
    /// one, or a short one, does not.
    #[test]
    fn machine_is_read_from_a_64_bit_little_endian_header() {
        assert_eq!(machine(&header(2, 1, ET_DYN, 62)), Ok(62));
        assert_eq!(machine(&header(2, 1, ET_DYN, 3)), Ok(3));
        assert!(matches!(
            machine(&header(1, 1, ET_DYN, 3)),
            Err(ElfError::Class { .. })
        ));
        assert!(matches!(
            machine(&header(2, 2, ET_DYN, 62)),
            Err(ElfError::ByteOrder { .. })
        ));
        assert_eq!(machine(b"\x7fELF"), Err(ElfError::NotElf));
    }

    #[test]
    fn reads_our_own_executable() {
        let exe = std::fs::read("/proc/self/exe").expect("read /proc/self/exe");
        // Test binaries are position-independent executables: ET_DYN.
        let ty = u16_at(&exe, 16);
        assert!(ty == Some(ET_DYN) || ty == Some(ET_EXEC));
        let syms = symbols(&exe, false).expect("symbols");
        assert!(syms.iter().any(|s| s.defined && s.name.contains("rust")));
        let deps = dynamic_deps(&exe).expect("deps");
        assert_eq!(deps.machine, host_machine());
        if deps.interp.is_some() {
            assert!(
                deps.needed.iter().any(|n| n.starts_with("libc.so")),
                "{deps:?}"
            );
        }
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
        assert!(archive_members(b"not an archive").is_empty());
    }

    #[test]
    fn offsets_near_the_top_of_the_address_space_are_refused() {
        // Section headers at e_shoff = u64::MAX - 1, one of them.
        let mut sh = header(2, 1, ET_DYN, host_machine());
        sh[0x28..0x30].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
        sh[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        sh[0x3c..0x3e].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(
            symbols(&sh, true),
            Err(ElfError::Truncated("section headers"))
        );
        // A PT_DYNAMIC whose p_offset is u64::MAX - 3.
        let mut ph = header(2, 1, ET_DYN, host_machine());
        ph[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        ph[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        ph[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let mut entry = [0u8; 56];
        entry[0..4].copy_from_slice(&2u32.to_le_bytes());
        entry[8..16].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        entry[32..40].copy_from_slice(&64u64.to_le_bytes());
        ph.extend_from_slice(&entry);
        assert!(dynamic_deps(&ph).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 12345;
        for len in [0usize, 4, 20, 63, 64, 65, 200, 4096] {
            for _ in 0..200 {
                let mut b: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    })
                    .collect();
                if b.len() >= 6 {
                    b[..4].copy_from_slice(b"\x7fELF");
                    b[4] = 2;
                    b[5] = 1;
                }
                let _ = check_header(&b, ET_DYN);
                let _ = symbols(&b, true);
                let _ = symbols(&b, false);
                let _ = dynamic_deps(&b);
            }
        }
    }
}
