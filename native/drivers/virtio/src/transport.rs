//! The virtio 1.x PCI transport: the common configuration structure
//! (virtio 1.1 §4.1.4.3), the device status handshake (§2.1, §3.1.1),
//! feature negotiation (§2.2), virtqueue configuration (§4.1.5.1.3),
//! MSI-X vector assignment (§4.1.5.1.2), notifications (§4.1.4.4,
//! §4.1.5.2) and device configuration reads with the generation counter
//! (§2.4.1).
//!
//! Locking: the common configuration holds selector registers
//! (`device_feature_select`, `queue_select`), so a select-then-access
//! sequence must not interleave with another. Only the control side uses
//! it (attach, start, stop, service: all under `&mut` of the driver), except
//! the device reset of [`Transport::reset`], a single register write that
//! any queue may do when dropped (see `Hw::quiesce`).

use std::time::{Duration, Instant};

use pktkit_native::mmio::Mmio;

/// Offsets in `struct virtio_pci_common_cfg` (virtio 1.1 §4.1.4.3).
pub mod common {
    /// le32, selects which 32 feature bits `DEVICE_FEATURE` shows.
    pub const DEVICE_FEATURE_SELECT: usize = 0x00;
    /// le32, read-only: 32 of the device's feature bits.
    pub const DEVICE_FEATURE: usize = 0x04;
    /// le32, selects which 32 bits `DRIVER_FEATURE` writes.
    pub const DRIVER_FEATURE_SELECT: usize = 0x08;
    /// le32: 32 of the feature bits the driver accepts.
    pub const DRIVER_FEATURE: usize = 0x0c;
    /// le16: MSI-X vector for configuration changes.
    pub const MSIX_CONFIG: usize = 0x10;
    /// le16, read-only: number of virtqueues.
    pub const NUM_QUEUES: usize = 0x12;
    /// u8: the device status (§2.1).
    pub const DEVICE_STATUS: usize = 0x14;
    /// u8, read-only: changes whenever the device configuration changes.
    pub const CONFIG_GENERATION: usize = 0x15;
    /// le16: selects the virtqueue the following fields refer to.
    pub const QUEUE_SELECT: usize = 0x16;
    /// le16: queue size (reads the maximum; the driver may write less).
    pub const QUEUE_SIZE: usize = 0x18;
    /// le16: MSI-X vector of the queue.
    pub const QUEUE_MSIX_VECTOR: usize = 0x1a;
    /// le16: 1 enables the queue.
    pub const QUEUE_ENABLE: usize = 0x1c;
    /// le16, read-only: the queue's offset in the notification area, in
    /// units of `notify_off_multiplier`.
    pub const QUEUE_NOTIFY_OFF: usize = 0x1e;
    /// le64: IOVA of the descriptor table.
    pub const QUEUE_DESC: usize = 0x20;
    /// le64: IOVA of the available ("driver") ring.
    pub const QUEUE_DRIVER: usize = 0x28;
    /// le64: IOVA of the used ("device") ring.
    pub const QUEUE_DEVICE: usize = 0x30;
    /// Bytes of the structure this driver uses.
    pub const LEN: usize = 0x38;
}

/// Device status bits (virtio 1.1 §2.1).
pub mod status {
    /// The guest has noticed the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest knows how to drive it.
    pub const DRIVER: u8 = 2;
    /// The driver is set up and ready to drive the device.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = 8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u8 = 64;
    /// The guest gave up on the device.
    pub const FAILED: u8 = 128;
}

/// Device-independent feature bits (virtio 1.1 §6).
pub mod feature {
    /// Indirect descriptors (§2.6.5.3); not used.
    pub const RING_INDIRECT_DESC: u32 = 28;
    /// `used_event`/`avail_event` notification suppression (§2.6.7, §2.6.10); not used.
    pub const RING_EVENT_IDX: u32 = 29;
    /// Compliance with virtio 1.x: required, this driver has no legacy path.
    pub const VERSION_1: u32 = 32;
    /// The device accesses memory through the platform's IOMMU (§6.1):
    /// with VFIO the addresses are IOVAs, so this must be accepted when offered.
    pub const ACCESS_PLATFORM: u32 = 33;
}

/// "No vector" for `msix_config` and `queue_msix_vector` (§4.1.5.1.2).
pub const NO_VECTOR: u16 = 0xffff;

/// How long a reset may take before we give up waiting.
const RESET_TIMEOUT: Duration = Duration::from_secs(1);

/// The bit for feature `n`.
pub const fn bit(n: u32) -> u64 {
    1 << n
}

/// Why a transport step failed.
#[derive(Debug, PartialEq, Eq)]
pub enum TransportError {
    /// The device did not read back 0 after a reset.
    ResetTimeout(u8),
    /// The device cleared FEATURES_OK: it refuses the feature subset.
    FeaturesRefused(u64),
    /// A queue the driver needs does not exist (size 0).
    NoQueue(u16),
    /// The device could not take the MSI-X vector (it read back NO_VECTOR).
    VectorRefused {
        /// Queue index, or `None` for the configuration vector.
        queue: Option<u16>,
        /// Vector asked for.
        vector: u16,
    },
    /// A queue's notification address lies outside the notification area.
    NotifyOutOfRange(u16),
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::ResetTimeout(s) => {
                write!(f, "device did not finish reset (status {s:#04x})")
            }
            TransportError::FeaturesRefused(feat) => {
                write!(f, "device refused features {feat:#x} (FEATURES_OK cleared)")
            }
            TransportError::NoQueue(q) => write!(f, "virtqueue {q} is not available"),
            TransportError::VectorRefused {
                queue: Some(q),
                vector,
            } => {
                write!(f, "queue {q}: device refused MSI-X vector {vector}")
            }
            TransportError::VectorRefused {
                queue: None,
                vector,
            } => {
                write!(f, "config: device refused MSI-X vector {vector}")
            }
            TransportError::NotifyOutOfRange(q) => {
                write!(f, "queue {q}: notify address outside the notification area")
            }
        }
    }
}

/// Addresses of a split virtqueue's three parts (§2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueAddrs {
    /// Descriptor table.
    pub desc: u64,
    /// Available ring.
    pub driver: u64,
    /// Used ring.
    pub device: u64,
}

/// The transport's register windows.
#[derive(Debug)]
pub struct Transport {
    /// Common configuration.
    pub common: Mmio,
    /// Notification area.
    pub notify: Mmio,
    /// Its `notify_off_multiplier`.
    pub notify_mult: u32,
    /// ISR status, if the device has one.
    pub isr: Option<Mmio>,
    /// Device-specific configuration.
    pub device: Mmio,
}

impl Transport {
    /// The device status.
    pub fn status(&self) -> u8 {
        self.common.read8(common::DEVICE_STATUS)
    }

    /// Adds `bits` to the device status (§3.1.1: each step sets one more bit).
    pub fn add_status(&self, bits: u8) {
        let s = self.status();
        self.common.write8(common::DEVICE_STATUS, s | bits);
    }

    /// Resets the device: writes 0 to the status and waits for it to read
    /// back 0 (§4.1.4.3.2: the driver must wait for that before
    /// re-initialising). Once this returns the device uses no queue and
    /// raises no interrupt.
    pub fn reset(&self) -> Result<(), TransportError> {
        self.common.write8(common::DEVICE_STATUS, 0);
        let t0 = Instant::now();
        loop {
            let s = self.status();
            if s == 0 {
                return Ok(());
            }
            if t0.elapsed() > RESET_TIMEOUT {
                return Err(TransportError::ResetTimeout(s));
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// The 64 feature bits the device offers (§4.1.4.3: two 32-bit windows).
    pub fn device_features(&self) -> u64 {
        self.common.write32(common::DEVICE_FEATURE_SELECT, 0);
        let lo = self.common.read32(common::DEVICE_FEATURE);
        self.common.write32(common::DEVICE_FEATURE_SELECT, 1);
        let hi = self.common.read32(common::DEVICE_FEATURE);
        u64::from(lo) | u64::from(hi) << 32
    }

    /// Writes the accepted features, sets FEATURES_OK and checks the device
    /// kept it (§3.1.1 steps 5-6).
    pub fn set_features(&self, features: u64) -> Result<(), TransportError> {
        self.common.write32(common::DRIVER_FEATURE_SELECT, 0);
        self.common.write32(common::DRIVER_FEATURE, features as u32);
        self.common.write32(common::DRIVER_FEATURE_SELECT, 1);
        self.common
            .write32(common::DRIVER_FEATURE, (features >> 32) as u32);
        self.add_status(status::FEATURES_OK);
        if self.status() & status::FEATURES_OK == 0 {
            return Err(TransportError::FeaturesRefused(features));
        }
        Ok(())
    }

    /// Number of virtqueues the device has.
    pub fn num_queues(&self) -> u16 {
        self.common.read16(common::NUM_QUEUES)
    }

    /// The largest size queue `q` may have; 0 if it does not exist.
    pub fn queue_max_size(&self, q: u16) -> u16 {
        self.common.write16(common::QUEUE_SELECT, q);
        self.common.read16(common::QUEUE_SIZE)
    }

    /// Assigns the configuration-change vector (§4.1.5.1.2) and checks it
    /// was taken (the device reads back NO_VECTOR when it cannot).
    pub fn set_config_vector(&self, vector: u16) -> Result<(), TransportError> {
        self.common.write16(common::MSIX_CONFIG, vector);
        if vector != NO_VECTOR && self.common.read16(common::MSIX_CONFIG) != vector {
            return Err(TransportError::VectorRefused {
                queue: None,
                vector,
            });
        }
        Ok(())
    }

    /// Configures and enables queue `q` (§4.1.5.1.3): size, MSI-X vector,
    /// ring addresses, then `queue_enable`. Returns the byte offset of its
    /// notification address in the notification area (§4.1.4.4:
    /// `queue_notify_off * notify_off_multiplier`).
    pub fn setup_queue(
        &self,
        q: u16,
        size: u16,
        vector: u16,
        addrs: QueueAddrs,
    ) -> Result<usize, TransportError> {
        let c = &self.common;
        c.write16(common::QUEUE_SELECT, q);
        if c.read16(common::QUEUE_SIZE) == 0 {
            return Err(TransportError::NoQueue(q));
        }
        c.write16(common::QUEUE_SIZE, size);
        c.write16(common::QUEUE_MSIX_VECTOR, vector);
        if vector != NO_VECTOR && c.read16(common::QUEUE_MSIX_VECTOR) != vector {
            return Err(TransportError::VectorRefused {
                queue: Some(q),
                vector,
            });
        }
        c.write64(common::QUEUE_DESC, addrs.desc);
        c.write64(common::QUEUE_DRIVER, addrs.driver);
        c.write64(common::QUEUE_DEVICE, addrs.device);
        let off = usize::from(c.read16(common::QUEUE_NOTIFY_OFF)) * self.notify_mult as usize;
        if off + 2 > self.notify.len() {
            return Err(TransportError::NotifyOutOfRange(q));
        }
        // Enable last: the device may use the queue from here on (after DRIVER_OK).
        c.write16(common::QUEUE_ENABLE, 1);
        Ok(off)
    }

    /// Notifies the device that queue `q` has new available buffers
    /// (§4.1.5.2: the queue index, as le16, at its notification address).
    #[inline]
    pub fn notify(&self, notify_off: usize, q: u16) {
        self.notify.write16(notify_off, q);
    }

    /// Reads the ISR status (§4.1.4.5); the read clears it.
    pub fn read_isr(&self) -> u8 {
        self.isr.as_ref().map_or(0, |m| m.read8(0))
    }

    /// Reads the device configuration consistently: runs `read` until
    /// `config_generation` is the same before and after (§2.4.1), at most a
    /// few times.
    pub fn read_config<T>(&self, mut read: impl FnMut(&Mmio) -> T) -> T {
        let mut v;
        let mut tries = 0;
        loop {
            let before = self.common.read8(common::CONFIG_GENERATION);
            v = read(&self.device);
            let after = self.common.read8(common::CONFIG_GENERATION);
            tries += 1;
            if before == after || tries >= 8 {
                return v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_offsets_match_the_spec() {
        // virtio 1.1 §4.1.4.3, struct virtio_pci_common_cfg.
        assert_eq!(common::MSIX_CONFIG, 16);
        assert_eq!(common::DEVICE_STATUS, 20);
        assert_eq!(common::QUEUE_SELECT, 22);
        assert_eq!(common::QUEUE_NOTIFY_OFF, 30);
        assert_eq!(common::QUEUE_DESC, 32);
        assert_eq!(common::QUEUE_DEVICE, 48);
        assert_eq!(status::FEATURES_OK, 8);
        assert_eq!(bit(feature::VERSION_1), 0x1_0000_0000);
    }
}
