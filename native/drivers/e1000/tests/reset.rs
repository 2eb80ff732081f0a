//! `Driver::reset` and `Driver::inject_fault` against a register-level
//! double whose CTRL.RST self-clears (a thread plays the device), with and
//! without a function-level reset. Real resets and DMA faults are proven in
//! the lab's conformance suite (`cargo xtask lab --suite`).

use std::collections::BTreeMap;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use pktkit_drv_e1000::regs::{ctrl, rah, Reg};
use pktkit_drv_e1000::FACTORY;
use pktkit_native::device::{DeviceError, DmaMemory, IrqKind, PciAddress, PciDevice, PciOpener};
use pktkit_native::pool::HugePages;
use pktkit_native::{AttachArgs, Driver, Fault, OwnerId, Pool, PoolConfig};

const MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x07];

/// BAR0 as atomics, shared by the double and its "device" thread.
struct Bar(Vec<AtomicU32>);

impl Bar {
    fn get(&self, r: Reg) -> u32 {
        self.0[r.0 as usize / 4].load(Ordering::SeqCst)
    }
}

/// An 82540EM double: config space, BAR0, an eventfd as INTx, and an FLR
/// that clears BAR0 (when `flr` is set) or is unsupported.
struct ResettableDevice {
    bar: Arc<Bar>,
    command: Mutex<u32>,
    fd: RawFd,
    flr: bool,
    flrs: Arc<AtomicUsize>,
}

impl PciDevice for ResettableDevice {
    fn address(&self) -> PciAddress {
        "0000:00:03.0".parse().unwrap()
    }
    fn config_read(&self, off: u16, width: u8) -> Result<u32, DeviceError> {
        match (off, width) {
            (0, 2) => Ok(0x8086),
            (2, 2) => Ok(0x100e),
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
        Ok((self.bar.0.as_ptr() as *mut u8, self.bar.0.len() * 4))
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
        if !self.flr {
            return Err(DeviceError::Unsupported("no reset method".into()));
        }
        // A function-level reset: every register back to zero, and the
        // command register too (the kernel restores it on real hardware;
        // the driver must cope either way).
        for r in &self.bar.0 {
            r.store(0, Ordering::SeqCst);
        }
        *self.command.lock().unwrap() = 0;
        self.flrs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

struct Opener {
    bar: Arc<Bar>,
    flr: bool,
    flrs: Arc<AtomicUsize>,
}

impl PciOpener for Opener {
    fn open(&self, _: PciAddress) -> Result<Box<dyn PciDevice>, DeviceError> {
        Ok(Box::new(ResettableDevice {
            bar: self.bar.clone(),
            command: Mutex::new(0),
            // SAFETY: plain eventfd creation; leaked for the test's life.
            fd: unsafe { libc::eventfd(0, libc::EFD_NONBLOCK) },
            flr: self.flr,
            flrs: self.flrs.clone(),
        }))
    }
}

/// Plays the device's part of CTRL.RST: the bit self-clears.
struct ResetClearer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ResetClearer {
    fn new(bar: Arc<Bar>) -> ResetClearer {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                bar.0[Reg::CTRL.0 as usize / 4].fetch_and(!ctrl::RST, Ordering::SeqCst);
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        ResetClearer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ResetClearer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn extra(drv: &dyn Driver, name: &str) -> u64 {
    drv.counters()
        .extra
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// Attaches to the double and runs `reset`; returns (resets, function
/// resets, FLRs the device saw).
fn reset_once(flr: bool) -> (u64, u64, usize) {
    let bar = Arc::new(Bar((0..0x2_0000 / 4).map(|_| AtomicU32::new(0)).collect()));
    let _clearer = ResetClearer::new(bar.clone());
    let flrs = Arc::new(AtomicUsize::new(0));
    let opener = Opener {
        bar: bar.clone(),
        flr,
        flrs: flrs.clone(),
    };
    let options: BTreeMap<String, String> = [("pci", "00:03.0"), ("mac", "52:54:00:12:34:07")]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let args = AttachArgs {
        options,
        pool: Pool::new(&PoolConfig {
            name: format!("e1000-reset-{}-{flr}", std::process::id()),
            buffers: 64,
            hugepages: HugePages::Never,
        })
        .unwrap(),
        owners: vec![OwnerId::POOL],
        ifnames: vec!["wm0".into()],
        pci: Some(Arc::new(opener)),
    };
    let mut drvs = (FACTORY.create)(&args).unwrap();
    let mut drv = drvs.pop().unwrap();
    // Wipe what attach set up: the reset must set it up again.
    bar.0[Reg::rah(0).0 as usize / 4].store(0, Ordering::SeqCst);
    bar.0[Reg::CTRL.0 as usize / 4].store(0, Ordering::SeqCst);

    drv.reset().unwrap();

    // Re-initialised as at attach: station address valid in RAR0, link up
    // forced (SDM 14.3), CTRL.RST done.
    let ral = bar.get(Reg::ral(0)).to_le_bytes();
    let rah = bar.get(Reg::rah(0));
    assert_eq!(&ral[..], &MAC[..4]);
    assert_eq!(
        rah & 0xffff,
        u32::from(u16::from_le_bytes([MAC[4], MAC[5]]))
    );
    assert_ne!(rah & rah::AV, 0);
    assert_ne!(bar.get(Reg::CTRL) & ctrl::SLU, 0);
    assert_eq!(bar.get(Reg::CTRL) & ctrl::RST, 0);

    // A fault asked for while stopped waits for the next start.
    drv.inject_fault(Fault::RxBufferIova(0xdead_0000)).unwrap();

    let counts = (
        extra(drv.as_ref(), "resets"),
        extra(drv.as_ref(), "function_resets"),
        flrs.load(Ordering::SeqCst),
    );
    drop(drv);
    counts
}

#[test]
fn reset_without_flr_uses_ctrl_rst() {
    assert_eq!(reset_once(false), (1, 0, 0));
}

#[test]
fn reset_with_flr_resets_the_function_then_reinitialises() {
    assert_eq!(reset_once(true), (1, 1, 1));
}
