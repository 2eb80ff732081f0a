//! The harness's error type: what went wrong while binding a device or
//! opening it through VFIO, with the OS error kept and what to do said.

use pktkit_native::device::PciAddress;

/// Why a device could not be bound, unbound, opened or mapped.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// Binding devices and opening VFIO need root.
    #[error("this needs root (binding devices and opening /dev/vfio do)")]
    NotRoot,
    /// `/sys/kernel/iommu_groups` is empty: no IOMMU is enabled.
    #[error(
        "no IOMMU groups in /sys/kernel/iommu_groups: enable the IOMMU \
         (intel_iommu=on or amd_iommu=on on the kernel command line, VT-d/AMD-Vi in the firmware)"
    )]
    NoIommuGroups,
    /// No PCI function at this address.
    #[error("no PCI device {0} (see /sys/bus/pci/devices)")]
    NoSuchDevice(PciAddress),
    /// The device's class is not 0x02 (network controller).
    #[error("{bdf} is not a network controller (class {class:#08x})")]
    NotNetwork {
        /// The device.
        bdf: PciAddress,
        /// Its 24-bit class code.
        class: u32,
    },
    /// The device has no IOMMU group.
    #[error("{0} has no IOMMU group (is the IOMMU on for its bus?)")]
    NoGroup(PciAddress),
    /// Other devices in the device's IOMMU group are bound to host drivers,
    /// so VFIO will not hand the group out.
    #[error(
        "IOMMU group {group} of {bdf} is not viable: {} still bound to a host driver; \
         bind them to vfio-pci too, or unbind them",
        .others.iter().map(|(d, drv)| format!("{d} ({drv})")).collect::<Vec<_>>().join(", ")
    )]
    GroupNotViable {
        /// The device asked for.
        bdf: PciAddress,
        /// Its group.
        group: u32,
        /// `(BDF, driver)` of each device in the group in the way.
        others: Vec<(String, String)>,
    },
    /// The device is not bound to vfio-pci.
    #[error("{bdf} is bound to {driver}, not vfio-pci: run `pktkit harness bind {bdf}` first")]
    NotBoundToVfio {
        /// The device.
        bdf: PciAddress,
        /// Its driver, or "no driver".
        driver: String,
    },
    /// The probe after `driver_override` did not leave the device on the
    /// driver asked for.
    #[error("{bdf} did not bind to {want} (now: {now})")]
    BindFailed {
        /// The device.
        bdf: PciAddress,
        /// The driver asked for.
        want: String,
        /// The driver it has now, or "no driver".
        now: String,
    },
    /// The vfio-pci driver is not there and loading it failed.
    #[error("the vfio-pci driver is not loaded and `modprobe {module}` failed: {detail}")]
    VfioModules {
        /// The module that failed.
        module: String,
        /// modprobe's message, or why it could not run.
        detail: String,
    },
    /// A sysfs or device file operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done, with the path.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A VFIO operation through vfio-ioctls failed.
    #[error("{op}: {source}")]
    Vfio {
        /// What was being done.
        op: String,
        /// vfio-ioctls' error (it keeps the errno where the ioctl gave one).
        #[source]
        source: vfio_ioctls::VfioError,
    },
    /// A device-access call failed.
    #[error(transparent)]
    Device(#[from] pktkit_native::device::DeviceError),
}

impl HarnessError {
    /// An I/O error with what was being done.
    pub(crate) fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io {
            op: op.into(),
            source,
        }
    }
}
