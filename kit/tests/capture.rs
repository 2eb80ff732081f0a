//! Captures through the stack's taps, written as pcap and read back by
//! Debian's tcpdump.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pktkit::bpf::{Direction, Filter, PcapWriter, Tap};
use pktkit::stack::{Stack, StackConfig};
use pktkit_native::options::DriverSpec;

#[test]
fn icmp_capture_reads_back_in_tcpdump() {
    let st = Stack::new(&StackConfig {
        pool_buffers: 2048,
        ..StackConfig::default()
    })
    .unwrap();
    st.attach(&DriverSpec::parse("pair").unwrap()).unwrap();
    for (n, a) in [("pair0", "192.0.2.1"), ("pair1", "192.0.2.2")] {
        st.up(n).unwrap();
        st.attach_proto(n).unwrap();
        st.add_address(n, a.parse().unwrap(), 24).unwrap();
    }
    let p1 = st.interface("pair1").unwrap();
    let icmp = Arc::new(Tap::new(
        Filter::parse("icmp and host 192.0.2.1").unwrap(),
        None,
        65535,
        1000,
    ));
    let udp = Arc::new(Tap::new(Filter::parse("udp").unwrap(), None, 65535, 1000));
    let rx_only = Arc::new(Tap::new(Filter::All, Some(Direction::In), 65535, 1000));
    for t in [&icmp, &udp, &rx_only] {
        p1.add_tap(t.clone());
    }

    let idx0 = st.interface("pair0").unwrap().index;
    let h = st.with_proto(|n| n.ping_open(idx0, 0x99)).unwrap();
    let mut replies = 0;
    let t0 = Instant::now();
    for seq in 1..=3u16 {
        st.with_proto(|n| n.ping_send(idx0, h, "192.0.2.2".parse().unwrap(), seq, b"capture me"))
            .unwrap();
        while t0.elapsed() < Duration::from_secs(5) {
            if st
                .with_proto(|n| n.ping_recv(idx0, h))
                .ok()
                .flatten()
                .is_some()
            {
                replies += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    assert_eq!(replies, 3);
    for t in [&icmp, &udp, &rx_only] {
        p1.remove_tap(t);
    }

    let frames = icmp.drain(100);
    assert_eq!(frames.len(), 6, "3 requests in, 3 replies out");
    assert_eq!(frames.iter().filter(|c| c.dir == Direction::In).count(), 3);
    assert!(udp.drain(100).is_empty());
    assert!(rx_only.drain(100).iter().all(|c| c.dir == Direction::In));

    let path = std::env::temp_dir().join(format!("pktkit-capture-{}.pcap", std::process::id()));
    let mut w = PcapWriter::new(std::fs::File::create(&path).unwrap(), 65535).unwrap();
    for c in &frames {
        w.write(c).unwrap();
    }
    w.finish().unwrap();
    let out = Command::new("tcpdump")
        .args(["-nn", "-r"])
        .arg(&path)
        .output();
    let _ = std::fs::remove_file(&path);
    let Ok(out) = out else {
        panic!("tcpdump is needed for this test (.ci/run installs it)");
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("192.0.2.1 > 192.0.2.2: ICMP echo request"))
            .count(),
        3,
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.contains("192.0.2.2 > 192.0.2.1: ICMP echo reply"))
            .count(),
        3,
        "{text}"
    );
    st.shutdown();
}
