//! Attach-time behaviour that needs no hardware: option checking, a stack
//! without VFIO, a device that is not an e1000, and a device that does not
//! come out of reset. Real traffic is proven in the lab (examples/e1000_loop.rs).

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};

use pktkit_drv_e1000::FACTORY;
use pktkit_native::device::{DeviceError, DmaMemory, IrqKind, PciAddress, PciDevice, PciOpener};
use pktkit_native::pool::HugePages;
use pktkit_native::{AttachArgs, DriverError, OwnerId, Pool, PoolConfig};

fn args(opts: &[(&str, &str)], pci: Option<Arc<dyn PciOpener>>) -> AttachArgs {
    let options: BTreeMap<String, String> = opts
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    AttachArgs {
        options,
        pool: Pool::new(&PoolConfig {
            name: format!("e1000-attach-{}", std::process::id()),
            buffers: 64,
            hugepages: HugePages::Never,
        })
        .unwrap(),
        owners: vec![OwnerId::POOL],
        ifnames: vec!["wm0".into()],
        pci,
    }
}

fn attach(a: &AttachArgs) -> Result<(), DriverError> {
    FACTORY.check_options(&a.options)?;
    (FACTORY.create)(a).map(drop)
}

#[test]
fn options_are_checked() {
    let e = attach(&args(&[], None)).unwrap_err();
    assert!(
        matches!(e, DriverError::MissingOption(ref k) if k == "pci"),
        "{e}"
    );
    let e = attach(&args(&[("pci", "00:03.0"), ("speed", "1")], None)).unwrap_err();
    assert!(matches!(e, DriverError::UnknownOption { .. }), "{e}");
    let e = attach(&args(&[("pci", "zz:03")], None)).unwrap_err();
    assert!(
        matches!(e, DriverError::BadOption { ref key, .. } if key == "pci"),
        "{e}"
    );
    assert!(e.to_string().contains("not a PCI address"), "{e}");
    let e = attach(&args(&[("pci", "00:03.0"), ("rxd", "100")], None)).unwrap_err();
    assert!(
        matches!(e, DriverError::BadOption { ref key, .. } if key == "rxd"),
        "{e}"
    );
    let e = attach(&args(&[("pci", "00:03.0"), ("txd", "x")], None)).unwrap_err();
    assert!(matches!(e, DriverError::BadOption { ref key, .. } if key == "txd"));
    let e = attach(&args(
        &[("pci", "00:03.0"), ("mac", "01:00:5e:00:00:01")],
        None,
    ))
    .unwrap_err();
    assert!(matches!(e, DriverError::BadOption { ref key, .. } if key == "mac"));
}

#[test]
fn without_vfio_attach_says_so() {
    let e = attach(&args(&[("pci", "0000:00:03.0")], None)).unwrap_err();
    assert!(matches!(e, DriverError::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("VFIO"), "{e}");
}

/// An opener whose open always fails, as VFIO does for a missing device.
struct Refusing;
impl PciOpener for Refusing {
    fn open(&self, addr: PciAddress) -> Result<Box<dyn PciDevice>, DeviceError> {
        Err(DeviceError::Unsupported(format!("no PCI device {addr}")))
    }
}

#[test]
fn open_failure_is_no_device() {
    let e = attach(&args(&[("pci", "0000:00:1d.7")], Some(Arc::new(Refusing)))).unwrap_err();
    assert!(matches!(e, DriverError::NoDevice(_)), "{e}");
    assert!(e.to_string().contains("0000:00:1d.7"), "{e}");
}

/// A register-level double: config space with given IDs, BAR0 as plain
/// memory (so CTRL.RST never self-clears), an eventfd as INTx.
struct FakeDevice {
    ids: u32,
    bar: Vec<u32>,
    command: Mutex<u32>,
    fd: RawFd,
}

impl PciDevice for FakeDevice {
    fn address(&self) -> PciAddress {
        "0000:00:03.0".parse().unwrap()
    }
    fn config_read(&self, off: u16, width: u8) -> Result<u32, DeviceError> {
        match (off, width) {
            (0, 2) => Ok(self.ids & 0xffff),
            (2, 2) => Ok(self.ids >> 16),
            (4, 2) => Ok(*self.command.lock().unwrap()),
            _ => Ok(0),
        }
    }
    fn config_write(&self, off: u16, _width: u8, value: u32) -> Result<(), DeviceError> {
        if off == 4 {
            *self.command.lock().unwrap() = value;
        }
        Ok(())
    }
    fn map_bar(&mut self, bar: u8) -> Result<(*mut u8, usize), DeviceError> {
        if bar != 0 {
            return Err(DeviceError::Range(format!("BAR {bar}")));
        }
        Ok((self.bar.as_mut_ptr().cast(), self.bar.len() * 4))
    }
    fn io_read(&self, _: u8, _: u64, _: u8) -> Result<u32, DeviceError> {
        Err(DeviceError::Unsupported("io".into()))
    }
    fn io_write(&self, _: u8, _: u64, _: u8, _: u32) -> Result<(), DeviceError> {
        Err(DeviceError::Unsupported("io".into()))
    }
    fn dma_alloc(&mut self, _: usize) -> Result<Box<dyn DmaMemory>, DeviceError> {
        Err(DeviceError::Unsupported("dma".into()))
    }
    fn enable_irqs(&mut self, kind: IrqKind, _: u32) -> Result<Vec<RawFd>, DeviceError> {
        match kind {
            IrqKind::Intx => Ok(vec![self.fd]),
            _ => Err(DeviceError::Unsupported(format!("{kind:?}"))),
        }
    }
    fn disable_irqs(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
    fn unmask_intx(&self) -> Result<(), DeviceError> {
        Ok(())
    }
    fn reset(&mut self) -> Result<(), DeviceError> {
        Err(DeviceError::Unsupported("reset".into()))
    }
}

struct FakeOpener {
    ids: u32,
}

impl PciOpener for FakeOpener {
    fn open(&self, _: PciAddress) -> Result<Box<dyn PciDevice>, DeviceError> {
        Ok(Box::new(FakeDevice {
            ids: self.ids,
            bar: vec![0; 0x2_0000 / 4],
            command: Mutex::new(0),
            // SAFETY: plain eventfd creation; leaked for the test's life.
            fd: unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) },
        }))
    }
}

#[test]
fn other_devices_are_refused() {
    let opener = FakeOpener {
        ids: 0x1041_1af4, // virtio-net
    };
    let e = attach(&args(&[("pci", "00:03.0")], Some(Arc::new(opener)))).unwrap_err();
    assert!(matches!(e, DriverError::Unsupported(_)), "{e}");
    assert!(e.to_string().contains("1af4:1041"), "{e}");
}

#[test]
fn a_device_stuck_in_reset_is_reported() {
    let opener = FakeOpener { ids: 0x100e_8086 };
    let e = attach(&args(&[("pci", "00:03.0")], Some(Arc::new(opener)))).unwrap_err();
    assert!(matches!(e, DriverError::Device(_)), "{e}");
    assert!(e.to_string().contains("CTRL.RST"), "{e}");
}
