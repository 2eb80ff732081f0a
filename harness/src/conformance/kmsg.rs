//! The kernel log, read from `/dev/kmsg` without blocking: how the suite
//! sees the IOMMU's DMA faults (the device itself may still report the
//! descriptor done, see shared/design/lab.md).

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A reader positioned at the end of the kernel log when opened: it sees
/// only records logged afterwards.
pub struct KernelLog {
    file: File,
}

impl KernelLog {
    /// Opens `path` (normally `/dev/kmsg`) and skips what is logged so far.
    pub fn open_at_end(path: &Path) -> std::io::Result<KernelLog> {
        let mut file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        // /dev/kmsg: SEEK_END moves past every record logged so far.
        file.seek(SeekFrom::End(0))?;
        Ok(KernelLog { file })
    }

    /// The message text of every record logged since the last call (each
    /// `read` of /dev/kmsg returns one record, `prio,seq,time,flags;text`).
    pub fn new_lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let text = rec.split_once(';').map_or(&*rec, |(_, t)| t);
                    out.push(text.lines().next().unwrap_or_default().to_owned());
                }
                // EPIPE: records were overwritten while we read; go on.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break, // EAGAIN: nothing more
            }
        }
        out
    }
}

/// Whether a kernel log line reports an IOMMU DMA fault (Intel VT-d:
/// `DMAR: [DMA Read NO_PASID] Request device [00:02.0] fault addr 0x...`).
pub fn is_dma_fault(line: &str) -> bool {
    line.contains("DMAR") && line.contains("fault addr")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_dmar_faults() {
        assert!(is_dma_fault(
            "DMAR: [DMA Write NO_PASID] Request device [00:02.0] fault addr 0xdead00000000 [fault reason 0x05] PTE Write access is not set"
        ));
        assert!(!is_dma_fault("DMAR: IOMMU enabled"));
    }

    #[test]
    fn reads_only_new_records() {
        if unsafe_free_is_root() {
            let mut log = KernelLog::open_at_end(Path::new("/dev/kmsg")).unwrap();
            let mark = format!("pktkit-kmsg-test-{}", std::process::id());
            std::fs::write("/dev/kmsg", format!("{mark}\n")).unwrap();
            let lines = log.new_lines();
            assert!(lines.iter().any(|l| l.contains(&mark)), "{lines:?}");
            assert!(log.new_lines().iter().all(|l| !l.contains(&mark)));
        } else {
            eprintln!("skipping: /dev/kmsg needs root");
        }
    }

    fn unsafe_free_is_root() -> bool {
        std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap_or(false)
    }
}
