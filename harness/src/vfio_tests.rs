//! Tests of the VFIO device logic over an in-memory backend and a fake
//! sysfs tree.

use std::path::Path;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use pktkit_native::pool::HugePages;
use pktkit_native::PoolConfig;
use vfio_bindings::bindings::vfio::{
    VFIO_REGION_INFO_FLAG_MMAP, VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};

use super::*;
use crate::ops::RegionInfo;
use crate::testutil::FakeSys;

type Log = Arc<Mutex<Vec<String>>>;

fn log(l: &Log, s: String) {
    l.lock().unwrap().push(s);
}

fn entries(l: &Log) -> Vec<String> {
    l.lock().unwrap().clone()
}

const RW: u32 = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE;
const BAR0_LEN: usize = 0x20000;

/// An e1000-like device: BAR0 memory (mappable), BAR1 I/O ports, config.
struct FakeDevice {
    log: Log,
    config: Mutex<Vec<u8>>,
    bar0: AnonMemory,
    bar1: Mutex<[u8; 64]>,
    can_reset: bool,
}

impl DeviceOps for FakeDevice {
    fn region(&self, index: u32) -> Option<RegionInfo> {
        match index {
            0 => Some(RegionInfo {
                size: BAR0_LEN as u64,
                flags: RW | VFIO_REGION_INFO_FLAG_MMAP,
            }),
            1 => Some(RegionInfo {
                size: 64,
                flags: RW,
            }),
            2..=5 => Some(RegionInfo { size: 0, flags: 0 }),
            7 => Some(RegionInfo {
                size: 256,
                flags: RW,
            }),
            _ => None,
        }
    }
    fn irq_count(&self, index: u32) -> u32 {
        [1, 1, 5].get(index as usize).copied().unwrap_or(0)
    }
    fn can_reset(&self) -> bool {
        self.can_reset
    }
    fn read(&self, index: u32, off: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let o = off as usize;
        match index {
            7 => buf.copy_from_slice(&self.config.lock().unwrap()[o..o + buf.len()]),
            1 => buf.copy_from_slice(&self.bar1.lock().unwrap()[o..o + buf.len()]),
            _ => return Err(DeviceError::Unsupported("fake".into())),
        }
        Ok(())
    }
    fn write(&self, index: u32, off: u64, buf: &[u8]) -> Result<(), DeviceError> {
        let o = off as usize;
        match index {
            7 => self.config.lock().unwrap()[o..o + buf.len()].copy_from_slice(buf),
            1 => self.bar1.lock().unwrap()[o..o + buf.len()].copy_from_slice(buf),
            _ => return Err(DeviceError::Unsupported("fake".into())),
        }
        Ok(())
    }
    fn map(&self, index: u32, len: usize) -> Result<NonNull<u8>, DeviceError> {
        log(&self.log, format!("map region {index} {len:#x}"));
        assert_eq!((index, len), (0, BAR0_LEN));
        NonNull::new(self.bar0.as_ptr()).ok_or(DeviceError::Range("null".into()))
    }
    unsafe fn unmap(&self, _ptr: NonNull<u8>, len: usize) {
        log(&self.log, format!("unmap region {len:#x}"));
    }
    fn set_irqs(&self, index: u32, fds: &[&EventFd]) -> Result<(), DeviceError> {
        log(&self.log, format!("set_irqs {index} x{}", fds.len()));
        Ok(())
    }
    fn disable_irqs(&self, index: u32) -> Result<(), DeviceError> {
        log(&self.log, format!("disable_irqs {index}"));
        Ok(())
    }
    fn unmask_intx(&self) -> Result<(), DeviceError> {
        log(&self.log, "unmask".into());
        Ok(())
    }
    fn reset(&self) -> Result<(), DeviceError> {
        log(&self.log, "reset".into());
        Ok(())
    }
}

impl Drop for FakeDevice {
    fn drop(&mut self) {
        log(&self.log, "close".into());
    }
}

struct FakeContainer {
    log: Log,
    can_reset: bool,
}

impl ContainerOps for FakeContainer {
    fn open_device(&self, path: &Path) -> Result<Box<dyn DeviceOps>, HarnessError> {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        log(&self.log, format!("open {name}"));
        let mut config = vec![0u8; 256];
        config[0..4].copy_from_slice(&0x100e_8086u32.to_le_bytes());
        config[0x10..0x14].copy_from_slice(&0xfebc_0000u32.to_le_bytes()); // memory BAR
        config[0x14..0x18].copy_from_slice(&0x0000_c001u32.to_le_bytes()); // I/O BAR
        Ok(Box::new(FakeDevice {
            log: self.log.clone(),
            config: Mutex::new(config),
            bar0: AnonMemory::new(BAR0_LEN).unwrap(),
            bar1: Mutex::new([0; 64]),
            can_reset: self.can_reset,
        }))
    }
    unsafe fn dma_map(&self, iova: u64, len: usize, va: *mut u8) -> Result<(), HarnessError> {
        assert_eq!(iova, va as u64, "IOVA = VA");
        log(&self.log, format!("dma_map {iova:#x} {len:#x}"));
        Ok(())
    }
    fn dma_unmap(&self, iova: u64, len: usize) -> Result<(), HarnessError> {
        log(&self.log, format!("dma_unmap {iova:#x} {len:#x}"));
        Ok(())
    }
}

struct Lab {
    sys: FakeSys,
    log: Log,
    container: Arc<VfioContainer>,
}

fn lab(tag: &str, can_reset: bool) -> Lab {
    let sys = FakeSys::new(&format!("vfio-{tag}"));
    sys.device("0000:00:02.0", 0x020000, Some(1), Some("vfio-pci"));
    sys.device("0000:00:03.0", 0x020000, Some(2), Some("vfio-pci"));
    sys.device("0000:00:04.0", 0x020000, Some(3), Some("e1000e"));
    let log = Log::default();
    let container = VfioContainer::with_backend(
        Box::new(FakeContainer {
            log: log.clone(),
            can_reset,
        }),
        sys.sysfs(),
    );
    Lab {
        sys,
        log,
        container,
    }
}

fn bdf(s: &str) -> PciAddress {
    s.parse().unwrap()
}

fn small_pool(name: &str) -> Pool {
    let mut cfg = PoolConfig::new(name, 64);
    cfg.hugepages = HugePages::Never;
    Pool::new(&cfg).unwrap()
}

#[test]
fn open_checks_the_binding() {
    let l = lab("open", false);
    let e = l.container.open_device(bdf("00:04.0")).unwrap_err();
    assert!(
        e.to_string().contains("bound to e1000e, not vfio-pci"),
        "{e}"
    );
    let e = l.container.open_device(bdf("00:09.0")).unwrap_err();
    assert!(matches!(e, HarnessError::NoSuchDevice(_)), "{e}");
    assert!(
        entries(&l.log).is_empty(),
        "nothing opened: {:?}",
        entries(&l.log)
    );
    let d = l.container.open_device(bdf("00:02.0")).unwrap();
    assert_eq!(d.address(), bdf("0000:00:02.0"));
    drop(d);
    assert_eq!(entries(&l.log), ["open 0000:00:02.0", "close"]);
    drop(l.sys);
}

#[test]
fn config_space_widths_and_bounds() {
    let l = lab("config", false);
    let d = l.container.open_device(bdf("00:02.0")).unwrap();
    assert_eq!(d.config_read(0, 2).unwrap(), 0x8086);
    assert_eq!(d.config_read(2, 2).unwrap(), 0x100e);
    assert_eq!(d.config_read(0, 4).unwrap(), 0x100e_8086);
    assert_eq!(d.config_read(1, 1).unwrap(), 0x80);
    d.config_write(0x3c, 1, 0x0b).unwrap();
    assert_eq!(d.config_read(0x3c, 4).unwrap(), 0x0b);
    assert!(matches!(d.config_read(0, 3), Err(DeviceError::Range(_))));
    assert!(matches!(d.config_read(254, 4), Err(DeviceError::Range(_))));
    assert!(matches!(d.config_read(252, 4), Ok(0)));
}

#[test]
fn bars_map_once_and_io_bars_use_the_region() {
    let l = lab("bars", false);
    let mut d = l.container.open_device(bdf("00:02.0")).unwrap();
    let (p, len) = d.map_bar(0).unwrap();
    assert_eq!(len, BAR0_LEN);
    let (p2, _) = d.map_bar(0).unwrap();
    assert_eq!(p, p2, "a BAR is mapped once");
    assert_eq!(
        entries(&l.log)
            .iter()
            .filter(|e| e.starts_with("map region"))
            .count(),
        1
    );
    // SAFETY: p points at BAR0_LEN bytes of the fake BAR, alive with `d`.
    unsafe { p.add(8).cast::<u32>().write_volatile(0x8008_0783) };
    // SAFETY: as above.
    let status = unsafe { p.add(8).cast::<u32>().read_volatile() };
    assert_eq!(status, 0x8008_0783);

    assert!(d.bar_is_io(1).unwrap());
    let e = d.map_bar(1).unwrap_err();
    assert!(e.to_string().contains("I/O-port BAR"), "{e}");
    assert!(
        matches!(d.map_bar(2), Err(DeviceError::Range(_))),
        "unimplemented BAR"
    );
    assert!(matches!(d.map_bar(6), Err(DeviceError::Range(_))));

    d.io_write(1, 4, 4, 0xdead_beef).unwrap();
    assert_eq!(d.io_read(1, 4, 4).unwrap(), 0xdead_beef);
    assert_eq!(d.io_read(1, 6, 2).unwrap(), 0xdead);
    assert!(matches!(d.io_read(1, 62, 4), Err(DeviceError::Range(_))));
    assert!(matches!(d.io_read(2, 0, 4), Err(DeviceError::Range(_))));

    drop(d);
    let log = entries(&l.log);
    let unmap = log
        .iter()
        .position(|e| e.starts_with("unmap region"))
        .unwrap();
    let close = log.iter().position(|e| e == "close").unwrap();
    assert!(
        unmap < close,
        "BARs unmapped before the device closes: {log:?}"
    );
}

#[test]
fn interrupts_are_eventfds_and_switch_cleanly() {
    let l = lab("irq", false);
    let mut d = l.container.open_device(bdf("00:02.0")).unwrap();
    assert!(matches!(
        d.enable_irqs(IrqKind::Msix, 6),
        Err(DeviceError::Range(_))
    ));
    assert!(matches!(
        d.enable_irqs(IrqKind::Msix, 0),
        Err(DeviceError::Range(_))
    ));
    assert!(matches!(
        d.enable_irqs(IrqKind::Intx, 2),
        Err(DeviceError::Range(_))
    ));
    assert!(matches!(d.unmask_intx(), Err(DeviceError::Unsupported(_))));

    let fds = d.enable_irqs(IrqKind::Msix, 3).unwrap();
    assert_eq!(fds.len(), 3);
    for &fd in &fds {
        // SAFETY: fcntl(F_GETFD) only queries the descriptor.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert!(flags >= 0, "fd {fd} is open");
    }
    assert!(matches!(d.unmask_intx(), Err(DeviceError::Unsupported(_))));

    // Switching to INTx disables MSI-X first.
    let intx = d.enable_irqs(IrqKind::Intx, 1).unwrap();
    d.unmask_intx().unwrap();
    // SAFETY: fcntl(F_GETFD) only queries the descriptor.
    assert!(unsafe { libc::fcntl(intx[0], libc::F_GETFD) } >= 0);
    d.disable_irqs().unwrap();
    d.disable_irqs().unwrap(); // nothing enabled: no call
    assert_eq!(
        entries(&l.log)[1..],
        [
            "set_irqs 2 x3",
            "disable_irqs 2",
            "set_irqs 0 x1",
            "unmask",
            "disable_irqs 0"
        ]
    );

    d.enable_irqs(IrqKind::Msi, 1).unwrap();
    drop(d);
    let log = entries(&l.log);
    assert_eq!(
        log[log.len() - 3..],
        ["set_irqs 1 x1", "disable_irqs 1", "close"]
    );
}

#[test]
fn pools_are_mapped_once_and_again_after_the_last_device_closed() {
    let l = lab("pools", false);
    let pool = small_pool("vfio-test");
    let region = pool.dma_regions()[0];
    let map = format!("dma_map {:#x} {:#x}", region.iova, region.len);
    let count = |s: &str| entries(&l.log).iter().filter(|e| *e == s).count();

    // No device yet: no IOMMU to map into, so it waits.
    l.container.map_pool(&pool).unwrap();
    assert_eq!(count(&map), 0);
    assert_eq!(l.container.mapped_pool_bytes(), 0);

    let a = l.container.open_device(bdf("00:02.0")).unwrap();
    assert_eq!(count(&map), 1);
    let b = l.container.open_device(bdf("00:03.0")).unwrap();
    l.container.map_pool(&pool).unwrap();
    assert_eq!(count(&map), 1, "one container, one mapping for all devices");
    assert_eq!(l.container.mapped_pool_bytes(), region.len);

    drop(a);
    drop(b);
    assert_eq!(
        l.container.mapped_pool_bytes(),
        0,
        "the kernel dropped it with the last group"
    );
    let c = l.container.open_device(bdf("00:02.0")).unwrap();
    assert_eq!(count(&map), 2, "mapped again");

    l.container.unmap_pool(&pool).unwrap();
    assert_eq!(
        count(&format!("dma_unmap {:#x} {:#x}", region.iova, region.len)),
        1
    );
    assert_eq!(l.container.mapped_pool_bytes(), 0);
    drop(c);
}

#[test]
fn dma_alloc_is_page_aligned_and_unmapped_on_drop() {
    let l = lab("dma", false);
    let mut d = l.container.open_device(bdf("00:02.0")).unwrap();
    let m = d.dma_alloc(100).unwrap();
    let page = AnonMemory::page_size();
    assert_eq!(m.len(), page);
    assert_eq!(m.as_ptr() as usize % page, 0);
    assert_eq!(m.iova(), m.as_ptr() as u64);
    // SAFETY: the buffer is m.len() bytes of our own memory.
    unsafe { m.as_ptr().write_bytes(0xa5, m.len()) };
    let iova = m.iova();
    drop(m);
    let log = entries(&l.log);
    assert!(
        log.contains(&format!("dma_map {iova:#x} {page:#x}")),
        "{log:?}"
    );
    assert!(
        log.contains(&format!("dma_unmap {iova:#x} {page:#x}")),
        "{log:?}"
    );
}

#[test]
fn reset_needs_a_reset_method() {
    let l = lab("noreset", false);
    let mut d = l.container.open_device(bdf("00:02.0")).unwrap();
    assert!(matches!(d.reset(), Err(DeviceError::Unsupported(_))));
    let l = lab("reset", true);
    let mut d = l.container.open_device(bdf("00:02.0")).unwrap();
    d.reset().unwrap();
    assert!(entries(&l.log).contains(&"reset".to_owned()));
}

/// Ports as a machine would give them: a byte per port, and which threads
/// `ioperm` refuses.
#[derive(Default)]
struct FakePorts {
    log: Log,
    bytes: Mutex<std::collections::HashMap<u16, u8>>,
    /// `None`: every thread granted; `Some(t)`: only thread `t`
    /// (`Some(None)`: nobody).
    only: Mutex<Option<Option<std::thread::ThreadId>>>,
}

impl PortOps for FakePorts {
    fn granted(&self, base: u16, len: u16) -> bool {
        let ok = match *self.only.lock().unwrap() {
            None => true,
            Some(t) => t == Some(std::thread::current().id()),
        };
        log(&self.log, format!("ioperm {base:#x}+{len:#x} {ok}"));
        ok
    }
    unsafe fn input(&self, port: u16, width: u8) -> u32 {
        let b = self.bytes.lock().unwrap();
        let v = (0..u16::from(width)).fold(0u32, |v, i| {
            v | u32::from(b.get(&(port + i)).copied().unwrap_or(0)) << (8 * i)
        });
        log(&self.log, format!("in {port:#x}/{width}"));
        v
    }
    unsafe fn output(&self, port: u16, width: u8, value: u32) {
        let mut b = self.bytes.lock().unwrap();
        for i in 0..u16::from(width) {
            b.insert(port + i, (value >> (8 * i)) as u8);
        }
        log(&self.log, format!("out {port:#x}/{width} {value:#x}"));
    }
}

/// A lab whose 00:02.0 has its I/O BAR 1 at ports 0xc000 + `ports` (the
/// fake region is 64 bytes), with direct port I/O `pio` over `fake`.
fn port_lab(tag: &str, ports: u64, pio: PioMode, fake: Arc<FakePorts>) -> Lab {
    let sys = FakeSys::new(&format!("vfio-{tag}"));
    sys.device("0000:00:02.0", 0x020000, Some(1), Some("vfio-pci"));
    std::fs::write(
        sys.sysfs().device_path(bdf("00:02.0")).join("resource"),
        format!(
            "0x00000000febc0000 0x00000000febdffff 0x0000000000040200\n\
             0x000000000000c000 {:#018x} 0x0000000000040101\n",
            0xc000 + ports - 1
        ),
    )
    .unwrap();
    let log = fake.log.clone();
    let container = VfioContainer::with_ports(
        Box::new(FakeContainer {
            log: log.clone(),
            can_reset: false,
        }),
        fake,
        pio,
        sys.sysfs(),
    );
    Lab {
        sys,
        log,
        container,
    }
}

fn facts(d: &VfioPciDevice) -> String {
    d.access()
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Granted ports: accesses inside the BAR are `in`/`out` on its ports, and
/// VFIO's region sees none of them; anything else still goes through VFIO,
/// with its checks.
#[test]
fn direct_port_io_goes_to_the_bars_ports() {
    let fake = Arc::new(FakePorts::default());
    let l = port_lab("pio-direct", 64, PioMode::Direct, fake.clone());
    let d = l.container.open_device(bdf("00:02.0")).unwrap();
    assert_eq!(facts(&d), "port I/O BAR 1: direct 0xc000-0xc03f");
    d.io_write(1, 0x10, 4, 0xdead_beef).unwrap();
    assert_eq!(d.io_read(1, 0x10, 4).unwrap(), 0xdead_beef);
    assert_eq!(d.io_read(1, 0x12, 2).unwrap(), 0xdead);
    let e = entries(&l.log);
    assert!(e.contains(&"out 0xc010/4 0xdeadbeef".to_owned()), "{e:?}");
    assert!(e.contains(&"in 0xc012/2".to_owned()), "{e:?}");
    // The region behind VFIO was not touched.
    assert_eq!(
        d.read_value(VFIO_PCI_BAR0_REGION_INDEX + 1, 0x10, 4)
            .unwrap(),
        0
    );
    // Unaligned: through VFIO (which reads its own, zero, bytes).
    assert_eq!(d.io_read(1, 0x11, 2).unwrap(), 0);
    // Beyond the BAR: VFIO's range error, as before.
    assert!(matches!(d.io_read(1, 62, 4), Err(DeviceError::Range(_))));
    assert!(!entries(&l.log).iter().any(|x| x.starts_with("in 0xc011")));
}

/// `PKTKIT_PIO=vfio`, a window whose size is not the region's, and a
/// refused opening thread: every access through VFIO, each saying why.
#[test]
fn port_io_falls_back_to_vfio_and_says_why() {
    let cases = [
        (
            64,
            PioMode::Vfio,
            None,
            "VFIO (ports 0xc000-0xc03f; PKTKIT_PIO=vfio)",
        ),
        (
            32,
            PioMode::Direct,
            None,
            "VFIO (sysfs says 32 ports, VFIO 64 bytes)",
        ),
        (
            64,
            PioMode::Direct,
            Some(None),
            "VFIO (ports 0xc000-0xc03f; no ioperm permission)",
        ),
        (
            64,
            PioMode::Unavailable,
            None,
            "VFIO (ports 0xc000-0xc03f; no direct port I/O here)",
        ),
    ];
    for (i, (ports, pio, only, why)) in cases.into_iter().enumerate() {
        let fake = Arc::new(FakePorts::default());
        *fake.only.lock().unwrap() = only;
        let l = port_lab(&format!("pio-vfio-{i}"), ports, pio, fake.clone());
        let d = l.container.open_device(bdf("00:02.0")).unwrap();
        assert_eq!(facts(&d), format!("port I/O BAR 1: {why}"));
        d.io_write(1, 0x10, 4, 0x1234_5678).unwrap();
        assert_eq!(d.io_read(1, 0x10, 4).unwrap(), 0x1234_5678);
        assert_eq!(
            d.read_value(VFIO_PCI_BAR0_REGION_INDEX + 1, 0x10, 4)
                .unwrap(),
            0x1234_5678
        );
        assert!(
            fake.bytes.lock().unwrap().is_empty(),
            "{why}: no direct access"
        );
    }
}

/// Granted on the opening thread, refused on another: that thread's
/// accesses go through VFIO, and the device says so.
#[test]
fn a_thread_refused_the_ports_goes_through_vfio() {
    let fake = Arc::new(FakePorts::default());
    *fake.only.lock().unwrap() = Some(Some(std::thread::current().id()));
    let l = port_lab("pio-thread", 64, PioMode::Direct, fake.clone());
    let d = l.container.open_device(bdf("00:02.0")).unwrap();
    let d = std::thread::spawn(move || {
        d.io_write(1, 0x20, 2, 0xabcd).unwrap();
        assert_eq!(d.io_read(1, 0x20, 2).unwrap(), 0xabcd);
        d
    })
    .join()
    .unwrap();
    assert!(fake.bytes.lock().unwrap().is_empty(), "nothing went direct");
    assert_eq!(
        d.read_value(VFIO_PCI_BAR0_REGION_INDEX + 1, 0x20, 2)
            .unwrap(),
        0xabcd
    );
    let f = facts(&d);
    assert!(f.starts_with("port I/O BAR 1: direct 0xc000-0xc03f"), "{f}");
    assert!(f.contains("ioperm refused on a thread"), "{f}");
    // This thread still goes direct.
    d.io_write(1, 0x20, 2, 0x4321).unwrap();
    assert_eq!(fake.bytes.lock().unwrap().get(&0xc020), Some(&0x21));
}
