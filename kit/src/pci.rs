//! PCI device access for drivers, over the harness's VFIO container.
//!
//! One container per stack, opened on the first `pci=` attach, so every
//! device shares the stack pool's DMA mappings (IOVA = VA).

use std::sync::{Arc, Mutex};

use pktkit_harness::VfioContainer;
use pktkit_native::device::{DeviceError, PciAddress, PciDevice, PciOpener};
use pktkit_native::Pool;

/// Opens PCI functions through one VFIO container with the pool mapped.
pub struct VfioOpener {
    pool: Pool,
    container: Mutex<Option<Arc<VfioContainer>>>,
}

impl VfioOpener {
    /// An opener for a stack whose packet buffers live in `pool`; nothing is
    /// opened until a driver asks for a device.
    pub fn new(pool: Pool) -> VfioOpener {
        VfioOpener {
            pool,
            container: Mutex::new(None),
        }
    }

    fn container(&self) -> Result<Arc<VfioContainer>, DeviceError> {
        let mut slot = crate::runtime::lock(&self.container);
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = VfioContainer::open().map_err(to_device_error)?;
        c.map_pool(&self.pool).map_err(to_device_error)?;
        *slot = Some(c.clone());
        Ok(c)
    }
}

fn to_device_error(e: pktkit_harness::HarnessError) -> DeviceError {
    DeviceError::Unsupported(e.to_string())
}

impl PciOpener for VfioOpener {
    fn open(&self, addr: PciAddress) -> Result<Box<dyn PciDevice>, DeviceError> {
        let c = self.container()?;
        let dev = c.open_device(addr).map_err(to_device_error)?;
        Ok(Box::new(dev))
    }
}
