//! Opens NICs through the harness and shows that VFIO access works: config
//! space, BAR0 mapped (for Intel e1000/e1000e: STATUS and the MAC from
//! RAL0/RAH0), a pool and a DMA buffer mapped into the shared container,
//! interrupts as eventfds, and reset. Then checks the harness's errors for a
//! device that does not exist and one that is not a NIC.
//!
//! Usage (as root, in the lab): `vfio_probe [BDF]...`; with no BDF, every
//! network controller bound to vfio-pci. `cargo xtask lab --example
//! vfio_probe --cmd vfio_probe` runs it in the guest.

use std::process::ExitCode;

use pktkit_harness::{bind, HarnessError, Sysfs, VfioContainer};
use pktkit_native::device::{IrqKind, PciAddress, PciDevice};
use pktkit_native::{Pool, PoolConfig};

/// e1000 registers (Intel 8254x Software Developer's Manual, section 13.4).
const E1000_STATUS: usize = 0x0008;
const E1000_RAL0: usize = 0x5400;
const E1000_RAH0: usize = 0x5404;

fn network_bdfs() -> Vec<PciAddress> {
    let mut out = Vec::new();
    let sys = Sysfs::system();
    if let Ok(dir) = std::fs::read_dir("/sys/bus/pci/devices") {
        for e in dir.flatten() {
            let Ok(bdf) = e.file_name().to_string_lossy().parse::<PciAddress>() else {
                continue;
            };
            if sys.device_info(bdf).is_ok_and(|i| i.is_network()) {
                out.push(bdf);
            }
        }
    }
    out.sort();
    out
}

/// Prints STATUS and the MAC in RAL0/RAH0 of an e1000-family BAR0.
///
/// # Safety
/// `bar0` must be a live mapping of an e1000-family BAR0 longer than
/// RAH0 + 4 bytes.
unsafe fn print_e1000(bar0: *mut u8) {
    let reg = |off: usize| {
        // SAFETY: per this fn's contract the registers are inside the
        // mapping; they are aligned, and MMIO is read with volatile loads.
        unsafe { bar0.add(off).cast::<u32>().read_volatile() }
    };
    let status = reg(E1000_STATUS);
    let (ral, rah) = (reg(E1000_RAL0), reg(E1000_RAH0));
    let mac: Vec<String> = ral
        .to_le_bytes()
        .iter()
        .chain(&rah.to_le_bytes()[..2])
        .map(|b| format!("{b:02x}"))
        .collect();
    print!(
        " STATUS={status:#010x} (link {}) MAC={} (AV={})",
        if status & 2 != 0 { "up" } else { "down" },
        mac.join(":"),
        rah >> 31
    );
}

fn probe(container: &std::sync::Arc<VfioContainer>, bdf: PciAddress) -> Result<(), String> {
    let outcome = bind(bdf).map_err(|e| format!("bind: {e}"))?;
    let mut dev = container
        .open_device(bdf)
        .map_err(|e| format!("open: {e}"))?;
    let id = dev.config_read(0, 4).map_err(|e| e.to_string())?;
    let (vendor, device) = (id & 0xffff, id >> 16);
    print!("vfio_probe: {bdf} {vendor:04x}:{device:04x} ({outcome:?})");

    // Port I/O through the region: the first I/O BAR's first bytes (on an
    // RTL8139 these are IDR0-5, the MAC; RTL8139 datasheet, section 6).
    if let Some(bar) = (0..6u8).find(|&b| matches!(dev.bar_is_io(b), Ok(true))) {
        let bytes: Result<Vec<String>, _> = (0..6)
            .map(|off| dev.io_read(bar, off, 1).map(|v| format!("{v:02x}")))
            .collect();
        let bytes = bytes.map_err(|e| format!("io_read BAR{bar}: {e}"))?;
        print!(" IO-BAR{bar}[0..6]={}", bytes.join(":"));
    }

    // The first memory BAR (virtio 1.x devices often leave BAR0 unused).
    let mut mapped = None;
    for bar in 0..6u8 {
        if matches!(dev.bar_is_io(bar), Ok(false)) {
            if let Ok(m) = dev.map_bar(bar) {
                mapped = Some((bar, m));
                break;
            }
        }
    }
    match mapped {
        Some((bar, (base, len))) => {
            print!(" BAR{bar} {len:#x} bytes");
            if vendor == 0x8086 && bar == 0 && len > E1000_RAH0 + 4 {
                // SAFETY: `base` maps BAR0 of this Intel device, longer
                // than RAH0 + 4, and `dev` (which keeps it mapped) lives on.
                unsafe { print_e1000(base) };
            }
        }
        None => print!(" (no memory BAR)"),
    }

    let ring = dev.dma_alloc(4096).map_err(|e| format!("dma_alloc: {e}"))?;
    print!(
        " dma iova={:#x}+{:#x} pool-mapped={:#x}",
        ring.iova(),
        ring.len(),
        container.mapped_pool_bytes()
    );

    // The richest interrupt kind the device offers.
    let mut irq = "none".to_owned();
    for (kind, count) in [
        (IrqKind::Msix, 5),
        (IrqKind::Msix, 1),
        (IrqKind::Msi, 1),
        (IrqKind::Intx, 1),
    ] {
        if let Ok(fds) = dev.enable_irqs(kind, count) {
            irq = format!("{kind:?} x{}", fds.len());
            if kind == IrqKind::Intx {
                dev.unmask_intx().map_err(|e| format!("unmask INTx: {e}"))?;
            }
            break;
        }
    }
    dev.disable_irqs()
        .map_err(|e| format!("disable irqs: {e}"))?;
    print!(" irqs={irq}");
    match dev.reset() {
        Ok(()) => print!(" reset=ok"),
        Err(e) => print!(" reset=({e})"),
    }
    println!();
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bdfs: Vec<PciAddress> = if args.is_empty() {
        network_bdfs()
    } else {
        match args.iter().map(|a| a.parse()).collect() {
            Ok(v) => v,
            Err(e) => {
                eprintln!("vfio_probe: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let container = match VfioContainer::open() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("vfio_probe: {e}");
            return ExitCode::FAILURE;
        }
    };
    // A packet pool, mapped once for every device of the container.
    let pool = match Pool::new(&PoolConfig::new("vfio-probe", 512)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vfio_probe: pool: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = container.map_pool(&pool) {
        eprintln!("vfio_probe: map pool: {e}");
        return ExitCode::FAILURE;
    }
    let mut failed = 0;
    for &bdf in &bdfs {
        if let Err(e) = probe(&container, bdf) {
            println!("vfio_probe: {bdf} FAILED: {e}");
            failed += 1;
        }
    }
    let region = pool.dma_regions()[0];
    println!(
        "vfio_probe: pool of {} buffers, {:#x} bytes at iova {:#x}, mapped while devices were open",
        pool.capacity(),
        region.len,
        region.iova
    );

    // The errors a user meets most.
    let missing: PciAddress = "0000:00:1d.7"
        .parse()
        .unwrap_or(bdfs.first().copied().unwrap_or(PciAddress {
            domain: 0,
            bus: 0,
            device: 0x1d,
            function: 7,
        }));
    match bind(missing) {
        Err(e @ HarnessError::NoSuchDevice(_)) => println!("vfio_probe: expected error: {e}"),
        other => {
            println!("vfio_probe: bind of a missing device gave {other:?}");
            failed += 1;
        }
    }
    let host_bridge = PciAddress {
        domain: 0,
        bus: 0,
        device: 0,
        function: 0,
    };
    match bind(host_bridge) {
        Err(e @ HarnessError::NotNetwork { .. }) => println!("vfio_probe: expected error: {e}"),
        other => {
            println!("vfio_probe: bind of the host bridge gave {other:?}");
            failed += 1;
        }
    }
    if failed == 0 && !bdfs.is_empty() {
        println!("vfio_probe: {} devices OK", bdfs.len());
        ExitCode::SUCCESS
    } else {
        println!("vfio_probe: {failed} failures, {} devices", bdfs.len());
        ExitCode::FAILURE
    }
}
