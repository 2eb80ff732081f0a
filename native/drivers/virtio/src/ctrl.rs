//! The control virtqueue (virtio 1.1 §5.1.6.5): one command at a time,
//! synchronously, from the control path.
//!
//! A command is a three-descriptor chain over one DMA page: the
//! device-readable `{class, command}` header, the device-readable data
//! (absent when empty), and the device-writable one-byte ack. The driver
//! notifies and polls the used ring until the device answers (QEMU answers
//! during the notification itself). A command that never completes leaves
//! the queue unusable until the next start, since the device may still
//! write the ack later.

use std::time::{Duration, Instant};

use crate::net::ctrl;
use crate::transport::Transport;
use crate::virtq::{Desc, DmaBuf, SplitQueue, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE};

/// Entries in the control queue: three descriptors per command.
pub const CTRL_QSIZE: u16 = 16;
/// Bytes of the command page.
pub const CTRL_BUF_LEN: usize = 4096;
/// Page layout: header, ack, data.
const HDR_OFF: usize = 0;
const ACK_OFF: usize = 8;
const DATA_OFF: usize = 16;
/// How long the device may take to answer.
const TIMEOUT: Duration = Duration::from_secs(2);

/// Why a control command failed.
#[derive(Debug, PartialEq, Eq)]
pub enum CtrlError {
    /// The device answered VIRTIO_NET_ERR (or another value).
    Refused(u8),
    /// No answer in time; the queue is now out of use.
    Timeout,
    /// An earlier timeout put the queue out of use.
    Broken,
    /// The command's data does not fit the page.
    TooLong(usize),
}

impl std::fmt::Display for CtrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CtrlError::Refused(a) => write!(f, "device refused the command (ack {a})"),
            CtrlError::Timeout => write!(f, "device did not answer within {TIMEOUT:?}"),
            CtrlError::Broken => f.write_str("control queue out of use after a timeout"),
            CtrlError::TooLong(n) => write!(f, "{n} bytes of command data do not fit"),
        }
    }
}

/// The control queue and its command page.
pub struct CtrlQueue {
    vq: SplitQueue,
    page: DmaBuf,
    index: u16,
    notify_off: usize,
    broken: bool,
}

impl CtrlQueue {
    /// A control queue on virtqueue `index`, set up by the caller.
    pub fn new(vq: SplitQueue, page: DmaBuf, index: u16, notify_off: usize) -> CtrlQueue {
        // We poll for the answer: no interrupts (§2.6.7).
        vq.suppress_interrupts(true);
        CtrlQueue {
            vq,
            page,
            index,
            notify_off,
            broken: false,
        }
    }

    /// Sends `class`/`command` with `data` and waits for the ack.
    pub fn command(
        &mut self,
        t: &Transport,
        class: u8,
        command: u8,
        data: &[u8],
    ) -> Result<(), CtrlError> {
        if self.broken {
            return Err(CtrlError::Broken);
        }
        if DATA_OFF + data.len() > CTRL_BUF_LEN {
            return Err(CtrlError::TooLong(data.len()));
        }
        self.page.write(HDR_OFF, &[class, command]);
        self.page.write(ACK_OFF, &[0xff]);
        self.page.write(DATA_OFF, data);
        // Descriptors 0 -> 1 -> 2 (or 0 -> 2 without data), §5.1.6.5:
        // device-readable parts first, the writable ack last (§2.6.4.2).
        let ack = Desc::new(self.page.iova(ACK_OFF), 1, VIRTQ_DESC_F_WRITE, 0);
        if data.is_empty() {
            let hdr = Desc::new(self.page.iova(HDR_OFF), 2, VIRTQ_DESC_F_NEXT, 2);
            self.vq.write_desc(0, hdr);
        } else {
            let hdr = Desc::new(self.page.iova(HDR_OFF), 2, VIRTQ_DESC_F_NEXT, 1);
            let body = Desc::new(
                self.page.iova(DATA_OFF),
                data.len() as u32,
                VIRTQ_DESC_F_NEXT,
                2,
            );
            self.vq.write_desc(0, hdr);
            self.vq.write_desc(1, body);
        }
        self.vq.write_desc(2, ack);
        self.vq.push_avail(0);
        self.vq.publish();
        if self.vq.needs_notify() {
            t.notify(self.notify_off, self.index);
        }
        let t0 = Instant::now();
        loop {
            if self.vq.pop_used().is_some() {
                break;
            }
            if t0.elapsed() > TIMEOUT {
                self.broken = true;
                return Err(CtrlError::Timeout);
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        match self.page.read(ACK_OFF) {
            ctrl::OK => Ok(()),
            a => Err(CtrlError::Refused(a)),
        }
    }
}
