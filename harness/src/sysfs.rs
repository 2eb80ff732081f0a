//! PCI devices as sysfs shows them, and handing a device to vfio-pci and
//! back (`driver_override` + `drivers_probe`).
//!
//! Everything goes through a [`Sysfs`] rooted at `/` on a real machine; tests
//! root it in a directory tree they build, which is the seam for this module
//! (sysfs is plain files and symlinks, so a fake tree behaves the same for
//! reads; writes land in ordinary files the tests read back).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use pktkit_native::device::PciAddress;

use crate::error::HarnessError;
use crate::pio::PortWindow;

/// The driver name VFIO's PCI driver registers.
pub const VFIO_PCI: &str = "vfio-pci";

/// Drivers a group member may have without making the group unusable:
/// VFIO's own, and pci-stub, which the kernel allows alongside VFIO.
const VIABLE_DRIVERS: &[&str] = &[VFIO_PCI, "pci-stub"];

/// A PCI function as sysfs describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciInfo {
    /// Its address.
    pub bdf: PciAddress,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// 24-bit class code (class, subclass, programming interface).
    pub class: u32,
    /// The bound driver's name, if any.
    pub driver: Option<String>,
    /// The IOMMU group, if the device has one.
    pub iommu_group: Option<u32>,
}

impl PciInfo {
    /// Whether the class is 0x02, network controller.
    pub fn is_network(&self) -> bool {
        self.class >> 16 == 0x02
    }
}

/// What [`bind`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BindOutcome {
    /// The device was on vfio-pci already.
    AlreadyBound,
    /// The device moved to vfio-pci from this driver (or from none).
    Bound {
        /// The driver it had before.
        from: Option<String>,
    },
}

/// A view of sysfs (and the module loader) rooted somewhere.
#[derive(Clone, Debug)]
pub struct Sysfs {
    root: PathBuf,
    load_modules: bool,
}

impl Sysfs {
    /// The machine's own sysfs; missing vfio modules are loaded with modprobe.
    pub fn system() -> Sysfs {
        Sysfs {
            root: PathBuf::from("/"),
            load_modules: true,
        }
    }

    /// A tree under `root` laid out like `/sys`, for tests; it never runs
    /// modprobe.
    pub fn at(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs {
            root: root.into(),
            load_modules: false,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn device_dir(&self, bdf: PciAddress) -> PathBuf {
        self.path("sys/bus/pci/devices").join(bdf.to_string())
    }

    /// The sysfs directory of a device (what vfio-ioctls opens a device by).
    pub fn device_path(&self, bdf: PciAddress) -> PathBuf {
        self.device_dir(bdf)
    }

    /// Reads what sysfs says about a device.
    pub fn device_info(&self, bdf: PciAddress) -> Result<PciInfo, HarnessError> {
        let dir = self.device_dir(bdf);
        if !dir.is_dir() {
            return Err(HarnessError::NoSuchDevice(bdf));
        }
        let hex = |name: &str| -> Result<u32, HarnessError> {
            let p = dir.join(name);
            let s = fs::read_to_string(&p)
                .map_err(|e| HarnessError::io(format!("read {}", p.display()), e))?;
            parse_hex(&s).ok_or_else(|| {
                HarnessError::io(
                    format!("parse {}", p.display()),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, s.trim().to_owned()),
                )
            })
        };
        Ok(PciInfo {
            bdf,
            vendor: hex("vendor")? as u16,
            device: hex("device")? as u16,
            class: hex("class")?,
            driver: link_name(&dir.join("driver")),
            iommu_group: link_name(&dir.join("iommu_group")).and_then(|g| g.parse().ok()),
        })
    }

    /// The I/O-port BARs of a device (`resource`: one line per BAR, start,
    /// end and flags): BAR `i`'s ports, or `None` for a memory BAR, an
    /// unset one or a file that cannot be read (the caller then keeps to
    /// VFIO, which needs none of this).
    pub fn io_ports(&self, bdf: PciAddress) -> [Option<PortWindow>; 6] {
        let text = fs::read_to_string(self.device_dir(bdf).join("resource")).unwrap_or_default();
        let mut out = [None; 6];
        for (slot, line) in out.iter_mut().zip(text.lines()) {
            *slot = parse_io_resource(line);
        }
        out
    }

    /// Whether any IOMMU group exists.
    pub fn has_iommu_groups(&self) -> bool {
        fs::read_dir(self.path("sys/kernel/iommu_groups"))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    }

    /// Members of an IOMMU group other than `except` that keep it from being
    /// viable, as `(BDF, driver)`. Unbound devices, devices on vfio-pci or
    /// pci-stub, and bridges (which the kernel lets keep their driver) are
    /// fine.
    pub fn group_blockers(
        &self,
        group: u32,
        except: PciAddress,
    ) -> Result<Vec<(String, String)>, HarnessError> {
        let dir = self
            .path("sys/kernel/iommu_groups")
            .join(group.to_string())
            .join("devices");
        let entries = fs::read_dir(&dir)
            .map_err(|e| HarnessError::io(format!("read {}", dir.display()), e))?;
        let mut out = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == except.to_string() {
                continue;
            }
            let Some(driver) = link_name(&e.path().join("driver")) else {
                continue;
            };
            if VIABLE_DRIVERS.contains(&driver.as_str()) || is_bridge(&e.path()) {
                continue;
            }
            out.push((name, driver));
        }
        out.sort();
        Ok(out)
    }

    /// Makes sure the vfio-pci driver is registered, loading the modules
    /// when allowed.
    fn ensure_vfio_pci(&self) -> Result<(), HarnessError> {
        let registered = || self.path("sys/bus/pci/drivers").join(VFIO_PCI).is_dir();
        if registered() {
            return Ok(());
        }
        if self.load_modules {
            for module in ["vfio-pci", "vfio_iommu_type1"] {
                let out = Command::new("modprobe").arg(module).output().map_err(|e| {
                    HarnessError::VfioModules {
                        module: module.into(),
                        detail: e.to_string(),
                    }
                })?;
                if !out.status.success() {
                    return Err(HarnessError::VfioModules {
                        module: module.into(),
                        detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
                    });
                }
            }
        }
        if registered() {
            Ok(())
        } else {
            Err(HarnessError::VfioModules {
                module: "vfio-pci".into(),
                detail: format!(
                    "{} does not exist",
                    self.path("sys/bus/pci/drivers/vfio-pci").display()
                ),
            })
        }
    }

    fn write(&self, path: &Path, value: &str) -> Result<(), HarnessError> {
        // O_TRUNC as a shell's `>` does: sysfs ignores it, a test tree needs it.
        fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .and_then(|mut f| f.write_all(value.as_bytes()))
            .map_err(|e| {
                HarnessError::io(format!("write '{}' to {}", value.trim(), path.display()), e)
            })
    }

    /// Checks a device can be handed to VFIO: it exists, is a network
    /// controller, has a viable IOMMU group. Returns what sysfs says of it.
    pub fn check_for_vfio(&self, bdf: PciAddress) -> Result<PciInfo, HarnessError> {
        let info = self.device_info(bdf)?;
        if !info.is_network() {
            return Err(HarnessError::NotNetwork {
                bdf,
                class: info.class,
            });
        }
        if !self.has_iommu_groups() {
            return Err(HarnessError::NoIommuGroups);
        }
        let group = info.iommu_group.ok_or(HarnessError::NoGroup(bdf))?;
        let others = self.group_blockers(group, bdf)?;
        if !others.is_empty() {
            return Err(HarnessError::GroupNotViable { bdf, group, others });
        }
        Ok(info)
    }

    /// Hands a network device to vfio-pci. See [`bind`].
    pub fn bind(&self, bdf: PciAddress) -> Result<BindOutcome, HarnessError> {
        let info = self.check_for_vfio(bdf)?;
        if info.driver.as_deref() == Some(VFIO_PCI) {
            return Ok(BindOutcome::AlreadyBound);
        }
        self.ensure_vfio_pci()?;
        let dir = self.device_dir(bdf);
        let name = bdf.to_string();
        // driver_override makes the next probe pick vfio-pci, and only it.
        self.write(&dir.join("driver_override"), VFIO_PCI)?;
        if info.driver.is_some() {
            self.write(&dir.join("driver/unbind"), &name)?;
        }
        self.write(&self.path("sys/bus/pci/drivers_probe"), &name)?;
        let now = link_name(&dir.join("driver"));
        if now.as_deref() != Some(VFIO_PCI) {
            return Err(HarnessError::BindFailed {
                bdf,
                want: VFIO_PCI.into(),
                now: now.unwrap_or_else(|| "no driver".into()),
            });
        }
        Ok(BindOutcome::Bound { from: info.driver })
    }

    /// Takes a device from vfio-pci and lets the host's driver probe it.
    /// See [`unbind`].
    pub fn unbind(&self, bdf: PciAddress) -> Result<Option<String>, HarnessError> {
        let info = self.device_info(bdf)?;
        let dir = self.device_dir(bdf);
        let name = bdf.to_string();
        if info.driver.as_deref() == Some(VFIO_PCI) {
            self.write(&dir.join("driver/unbind"), &name)?;
        }
        // An empty override lets any matching driver probe again.
        self.write(&dir.join("driver_override"), "\n")?;
        self.write(&self.path("sys/bus/pci/drivers_probe"), &name)?;
        Ok(link_name(&dir.join("driver")))
    }
}

/// Hands a network device to vfio-pci: checks the caller is root, the
/// device exists and is a network controller, the IOMMU is on and the
/// device's group has no other member on a host driver; loads vfio-pci if
/// needed; then sets `driver_override`, unbinds the current driver and
/// reprobes.
pub fn bind(bdf: PciAddress) -> Result<BindOutcome, HarnessError> {
    require_root()?;
    Sysfs::system().bind(bdf)
}

/// Gives a device back to the host: unbinds it from vfio-pci, clears
/// `driver_override` and reprobes. Returns the driver it has afterwards.
pub fn unbind(bdf: PciAddress) -> Result<Option<String>, HarnessError> {
    require_root()?;
    Sysfs::system().unbind(bdf)
}

/// Fails with [`HarnessError::NotRoot`] unless the effective uid is 0.
pub fn require_root() -> Result<(), HarnessError> {
    if crate::sys::effective_uid() == 0 {
        Ok(())
    } else {
        Err(HarnessError::NotRoot)
    }
}

/// The kernel's IORESOURCE_IO flag in a `resource` line.
const IORESOURCE_IO: u64 = 0x100;

/// One `resource` line (`0x...c000 0x...c01f 0x...40101`): the ports of an
/// I/O-port BAR, else `None`.
fn parse_io_resource(line: &str) -> Option<PortWindow> {
    let mut f = line.split_whitespace().map(parse_hex64);
    let (start, end, flags) = (f.next()??, f.next()??, f.next()??);
    if flags & IORESOURCE_IO == 0 || end < start {
        return None;
    }
    PortWindow::new(start, end - start + 1)
}

/// `0x8086\n` -> 0x8086.
fn parse_hex(s: &str) -> Option<u32> {
    parse_hex64(s).and_then(|v| u32::try_from(v).ok())
}

/// `0x000000000000c000` -> 0xc000.
fn parse_hex64(s: &str) -> Option<u64> {
    let s = s.trim();
    u64::from_str_radix(s.strip_prefix("0x").unwrap_or(s), 16).ok()
}

/// The last component of a symlink's target (a driver or group name).
fn link_name(p: &Path) -> Option<String> {
    fs::read_link(p)
        .ok()
        .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
}

/// Whether a device is a PCI bridge: header type 1 or 2 in config space
/// (byte 0x0e, low 7 bits), else by class 0x0604 when config is unreadable.
fn is_bridge(dev: &Path) -> bool {
    match fs::read(dev.join("config")) {
        Ok(cfg) if cfg.len() > 0x0e => cfg[0x0e] & 0x7f != 0,
        _ => fs::read_to_string(dev.join("class"))
            .ok()
            .and_then(|s| parse_hex(&s))
            .is_some_and(|c| c >> 8 == 0x0604),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::FakeSys;

    fn bdf(s: &str) -> PciAddress {
        s.parse().unwrap()
    }

    #[test]
    fn reads_device_info() {
        let f = FakeSys::new("info");
        f.device("0000:00:02.0", 0x020000, Some(1), Some("e1000"));
        let i = f.sysfs().device_info(bdf("00:02.0")).unwrap();
        assert_eq!((i.vendor, i.device, i.class), (0x8086, 0x100e, 0x020000));
        assert_eq!(i.driver.as_deref(), Some("e1000"));
        assert_eq!(i.iommu_group, Some(1));
        assert!(i.is_network());
    }

    #[test]
    fn missing_device_is_named() {
        let f = FakeSys::new("missing");
        let e = f.sysfs().bind(bdf("0000:00:09.0")).unwrap_err();
        assert!(matches!(e, HarnessError::NoSuchDevice(_)), "{e}");
        assert!(e.to_string().contains("0000:00:09.0"));
        // And on this machine's real sysfs, for a slot that cannot exist
        // in practice.
        let e = Sysfs::system()
            .device_info(bdf("fffe:ff:1f.7"))
            .unwrap_err();
        assert!(matches!(e, HarnessError::NoSuchDevice(_)), "{e}");
    }

    #[test]
    fn wrong_class_is_refused() {
        let f = FakeSys::new("class");
        f.device("0000:00:1f.2", 0x010601, Some(1), Some("ahci"));
        let e = f.sysfs().bind(bdf("00:1f.2")).unwrap_err();
        assert!(
            e.to_string()
                .contains("not a network controller (class 0x010601)"),
            "{e}"
        );
        // Nothing was written.
        assert_eq!(f.read("sys/bus/pci/drivers_probe"), "");
    }

    #[test]
    fn no_iommu_groups_is_explained() {
        let f = FakeSys::new("noiommu");
        f.device("0000:00:02.0", 0x020000, None, Some("e1000"));
        let e = f.sysfs().bind(bdf("00:02.0")).unwrap_err();
        assert!(matches!(e, HarnessError::NoIommuGroups), "{e}");
    }

    #[test]
    fn group_with_bound_neighbours_is_not_viable() {
        let f = FakeSys::new("viable");
        f.device("0000:00:02.0", 0x020000, Some(7), Some("e1000"));
        f.device("0000:00:02.1", 0x020000, Some(7), Some("e1000"));
        f.device("0000:00:02.2", 0x020000, Some(7), Some("vfio-pci"));
        f.device("0000:00:02.3", 0x020000, Some(7), None);
        f.device("0000:00:01.0", 0x060400, Some(7), Some("pcieport"));
        let e = f.sysfs().bind(bdf("00:02.0")).unwrap_err();
        match &e {
            HarnessError::GroupNotViable { group, others, .. } => {
                assert_eq!(*group, 7);
                assert_eq!(
                    others,
                    &vec![("0000:00:02.1".to_owned(), "e1000".to_owned())]
                );
            }
            other => panic!("expected GroupNotViable, got {other}"),
        }
        assert!(e.to_string().contains("0000:00:02.1 (e1000)"), "{e}");
    }

    #[test]
    fn bind_writes_override_unbind_and_probe() {
        let f = FakeSys::new("bind");
        f.device("0000:00:02.0", 0x020000, Some(3), Some("e1000"));
        f.driver("vfio-pci");
        // The fake kernel does not probe, so the device stays on e1000 and
        // bind reports that, after doing the three writes in order.
        let e = f.sysfs().bind(bdf("00:02.0")).unwrap_err();
        assert!(
            e.to_string()
                .contains("did not bind to vfio-pci (now: e1000)"),
            "{e}"
        );
        assert_eq!(
            f.read("sys/bus/pci/devices/0000:00:02.0/driver_override"),
            "vfio-pci"
        );
        assert_eq!(f.read("sys/bus/pci/drivers/e1000/unbind"), "0000:00:02.0");
        assert_eq!(f.read("sys/bus/pci/drivers_probe"), "0000:00:02.0");
    }

    #[test]
    fn bind_is_idempotent_and_needs_vfio_pci() {
        let f = FakeSys::new("idem");
        f.device("0000:00:02.0", 0x020000, Some(3), Some("vfio-pci"));
        assert_eq!(
            f.sysfs().bind(bdf("00:02.0")).unwrap(),
            BindOutcome::AlreadyBound
        );
        f.device("0000:00:03.0", 0x020000, Some(4), None);
        fs::remove_dir_all(f.root.join("sys/bus/pci/drivers/vfio-pci")).unwrap();
        let e = f.sysfs().bind(bdf("00:03.0")).unwrap_err();
        assert!(matches!(e, HarnessError::VfioModules { .. }), "{e}");
    }

    #[test]
    fn unbind_clears_override_and_reprobes() {
        let f = FakeSys::new("unbind");
        f.device("0000:00:02.0", 0x020000, Some(3), Some("vfio-pci"));
        let now = f.sysfs().unbind(bdf("00:02.0")).unwrap();
        assert_eq!(now.as_deref(), Some("vfio-pci")); // the fake does not unbind
        assert_eq!(
            f.read("sys/bus/pci/drivers/vfio-pci/unbind"),
            "0000:00:02.0"
        );
        assert_eq!(
            f.read("sys/bus/pci/devices/0000:00:02.0/driver_override"),
            "\n"
        );
        assert_eq!(f.read("sys/bus/pci/drivers_probe"), "0000:00:02.0");
    }

    /// I/O BARs from `resource`, as the kernel writes it; memory BARs,
    /// unset ones and a missing file give none.
    #[test]
    fn io_ports_come_from_resource() {
        let f = FakeSys::new("ports");
        f.device("0000:00:04.0", 0x020000, Some(1), Some("vfio-pci"));
        let dir = f.sysfs().device_path(bdf("00:04.0"));
        fs::write(
            dir.join("resource"),
            "0x000000000000c000 0x000000000000c01f 0x0000000000040101\n\
             0x00000000febf1000 0x00000000febf10ff 0x0000000000040200\n\
             0x0000000000000000 0x0000000000000000 0x0000000000000000\n\
             0x000000000000c040 0x000000000000c03f 0x0000000000040101\n\
             garbage\n",
        )
        .unwrap();
        let p = f.sysfs().io_ports(bdf("00:04.0"));
        assert_eq!(p[0], PortWindow::new(0xc000, 0x20));
        assert_eq!(
            p[1..],
            [None; 5],
            "memory, unset, reversed, unparsable, absent"
        );
        assert_eq!(f.sysfs().io_ports(bdf("00:05.0")), [None; 6]);
    }

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex("0x020000\n"), Some(0x020000));
        assert_eq!(parse_hex("8086"), Some(0x8086));
        assert_eq!(parse_hex("0xzz"), None);
    }
}
