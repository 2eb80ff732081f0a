//! Test helpers: a fake sysfs tree.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use crate::sysfs::Sysfs;

/// A fake sysfs tree in a fresh directory, removed on drop.
pub(crate) struct FakeSys {
    pub(crate) root: PathBuf,
}

impl FakeSys {
    pub(crate) fn new(tag: &str) -> FakeSys {
        let root = std::env::temp_dir().join(format!("pktkit-sysfs-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        for d in [
            "sys/bus/pci/devices",
            "sys/bus/pci/drivers",
            "sys/kernel/iommu_groups",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("sys/bus/pci/drivers_probe"), "").unwrap();
        FakeSys { root }
    }

    pub(crate) fn sysfs(&self) -> Sysfs {
        Sysfs::at(&self.root)
    }

    pub(crate) fn driver(&self, name: &str) {
        let d = self.root.join("sys/bus/pci/drivers").join(name);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("unbind"), "").unwrap();
    }

    /// A device with a class, a group and optionally a driver.
    pub(crate) fn device(&self, bdf: &str, class: u32, group: Option<u32>, driver: Option<&str>) {
        let d = self.root.join("sys/bus/pci/devices").join(bdf);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("vendor"), "0x8086\n").unwrap();
        fs::write(d.join("device"), "0x100e\n").unwrap();
        fs::write(d.join("class"), format!("{class:#08x}\n")).unwrap();
        fs::write(d.join("driver_override"), "(null)\n").unwrap();
        if let Some(g) = group {
            let gd = self
                .root
                .join("sys/kernel/iommu_groups")
                .join(g.to_string());
            fs::create_dir_all(gd.join("devices")).unwrap();
            symlink(&gd, d.join("iommu_group")).unwrap();
            symlink(&d, gd.join("devices").join(bdf)).unwrap();
        }
        if let Some(drv) = driver {
            self.driver(drv);
            symlink(
                self.root.join("sys/bus/pci/drivers").join(drv),
                d.join("driver"),
            )
            .unwrap();
        }
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel)).unwrap()
    }
}

impl Drop for FakeSys {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}
