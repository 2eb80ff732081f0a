//! `cargo xtask lab --cross`: traffic between two native drivers.
//!
//! Two stack instances run in the guest, each with its own VFIO container
//! (each process opens its own device's group): `a` on the first e1000
//! (wm0, 10.9.0.1/24, echo and discard) and `b` on the first virtio-net
//! (vio0, 10.9.0.2/24, echo) or, when there is no virtio NIC, the first
//! ne2k_pci through the legacy shim (en0), both on the lab's hub. Once both control
//! sockets answer, each pings the other three times and `a` moves 8 MiB
//! through `b`'s echo service with every byte checked (`pktkit tcpcheck`).
//! Each step ends with `@@LAB cross STEP STATUS`; the host prints the
//! steps' output and fails when one is missing or non-zero.

use std::fmt::Write as _;

use super::{nic_bdf, Model};

/// A step's exit status: `@@LAB cross STEP STATUS`.
const MARK_CROSS: &str = "@@LAB cross ";
/// The steps, in order.
pub const STEPS: [&str; 4] = ["start", "ping-a", "ping-b", "tcp"];
/// Bytes the TCP check moves.
pub const TCP_BYTES: u64 = 8 << 20;

/// The two NICs: `(e1000 BDF, b's -d spec, b's interface)`. `b` is the
/// first virtio-net (vio0) or, without one, the first NIC a ported NetBSD
/// driver handles (rtl8139: rtk0, i82559er: fxp0, pcnet: pcn0), or the
/// first ne2k_pci through the legacy shim (en0, `devn-ne2000.so`).
pub fn plan(nics: &[&Model]) -> Result<(String, String, &'static str), String> {
    let find = |names: &[&str]| nics.iter().position(|m| names.contains(&m.name));
    let wm = find(&["e1000", "e1000e"]).ok_or("--cross needs an e1000 or e1000e NIC")?;
    if let Some(vio) = find(&["virtio", "virtio-mq"]) {
        return Ok((
            nic_bdf(wm),
            format!("virtio-net,pci={}", nic_bdf(vio)),
            "vio0",
        ));
    }
    for (model, driver, ifname) in [
        ("rtl8139", "rtk", "rtk0"),
        ("i82559er", "fxp", "fxp0"),
        ("pcnet", "pcn", "pcn0"),
    ] {
        if let Some(i) = find(&[model]) {
            return Ok((nic_bdf(wm), format!("{driver},pci={}", nic_bdf(i)), ifname));
        }
    }
    let ne = find(&["ne2k_pci"])
        .ok_or("--cross needs a virtio, rtl8139, i82559er, pcnet or ne2k_pci NIC")?;
    Ok((
        nic_bdf(wm),
        format!("legacy:/lib/pktkit/devn-ne2000.so,pci={}", nic_bdf(ne)),
        "en0",
    ))
}

/// The guest command: `a` on the e1000 at `wm`, `b` from `b_spec` (`b_if`).
pub fn script(wm: &str, b_spec: &str, b_if: &str) -> String {
    // tcpcheck's --timeout is how long without progress fails. The legacy
    // NE2000 moves every byte by port I/O (a VFIO access per 4 bytes, under
    // TCG): 2-3 Mbit/s, slower still on a loaded machine; give it room.
    let tcp_timeout = if b_spec.starts_with("legacy:") {
        180
    } else {
        30
    };
    let mut s = String::from("dmesg -n 1\nstatus=0\n");
    let _ = write!(
        s,
        "RUST_BACKTRACE=1 pktkit run --instance a -d e1000,pci={wm} --ip wm0=10.9.0.1/24 --serve echo,discard > /tmp/a.log 2>&1 &\n\
         pa=$!\n\
         RUST_BACKTRACE=1 pktkit run --instance b -d {b_spec} --ip {b_if}=10.9.0.2/24 --serve echo > /tmp/b.log 2>&1 &\n\
         pb=$!\n\
         rc=1\n\
         for i in $(seq 1 600); do\n\
         \x20 if pktkit sysctl --instance a kern.pid >/dev/null 2>&1 && pktkit sysctl --instance b kern.pid >/dev/null 2>&1; then rc=0; break; fi\n\
         \x20 sleep 0.1\n\
         done\n\
         echo \"{MARK_CROSS}start $rc\"\n\
         if [ $rc = 0 ]; then\n\
         \x20 pktkit ifconfig --instance a wm0; pktkit ifconfig --instance b {b_if}\n\
         \x20 pktkit ping --instance a -c 3 10.9.0.2; rc=$?; echo \"{MARK_CROSS}ping-a $rc\"; [ $rc = 0 ] || status=1\n\
         \x20 pktkit ping --instance b -c 3 10.9.0.1; rc=$?; echo \"{MARK_CROSS}ping-b $rc\"; [ $rc = 0 ] || status=1\n\
         \x20 pktkit tcpcheck --instance a 10.9.0.2:7 --bytes {TCP_BYTES} --timeout {tcp_timeout}; rc=$?; echo \"{MARK_CROSS}tcp $rc\"; [ $rc = 0 ] || status=1\n\
         \x20 if [ $rc != 0 ]; then for p in $pa $pb; do for t in /proc/$p/task/*; do echo \"thread $p $(cat $t/comm) stat: $(cut -d' ' -f3,14,15 $t/stat) wchan: $(cat $t/wchan) syscall: $(cut -d' ' -f1-3 $t/syscall)\"; done; done; sleep 1; for p in $pa $pb; do for t in /proc/$p/task/*; do echo \"thread again $p $(cat $t/comm) stat: $(cut -d' ' -f3,14,15 $t/stat) syscall: $(cut -d' ' -f1-3 $t/syscall)\"; done; done; for c in 'nicinfo --instance a wm0' 'nicinfo --instance b {b_if}' 'sysctl --instance a' 'sysctl --instance b' 'netstat --instance a' 'netstat --instance b'; do echo \"== $c\"; timeout 5 pktkit $c; done; echo '== a.log'; cat /tmp/a.log; echo '== b.log'; cat /tmp/b.log; fi\n\
         \x20 pktkit netstat -i --instance a; pktkit netstat -i --instance b; pktkit nicinfo --instance b {b_if}\n\
         else\n\
         \x20 status=1\n\
         fi\n\
         kill $pa $pb; wait\n\
         if [ $status != 0 ]; then echo '== instance a'; cat /tmp/a.log; echo '== instance b'; cat /tmp/b.log; fi\n\
         exit $status\n"
    );
    s
}

/// Each step's exit status, in the order seen.
pub fn outcomes(console: &str) -> Vec<(String, i32)> {
    console
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix(MARK_CROSS))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(step, rc)| (step.to_owned(), rc.trim().parse().unwrap_or(-1)))
        .collect()
}

/// Prints the results (the ping and tcpcheck lines of the guest's output
/// and every step's status) and says whether every step passed.
pub fn report(console: &str) -> Result<(), String> {
    let wanted = [
        "PING ",
        "bytes from ",
        "--- ",
        "packets transmitted",
        "round-trip",
        "TCPCHECK ",
        "bytes echoed",
        "pktkit: ",
    ];
    for line in console.lines().map(str::trim_end) {
        if wanted.iter().any(|w| line.contains(w)) && !line.starts_with("@@LAB") {
            println!("guest: {line}");
        }
    }
    let got = outcomes(console);
    let mut problems = Vec::new();
    for step in STEPS {
        let rc = got.iter().find(|(s, _)| s == step).map(|(_, rc)| *rc);
        let result = match rc {
            Some(0) => "PASS".to_owned(),
            Some(rc) => format!("FAIL (exit {rc})"),
            None => "FAIL (did not run)".to_owned(),
        };
        println!("cross {step:<8} {result}");
        if rc != Some(0) {
            problems.push(format!("cross {step} failed"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_takes_the_first_of_each_driver() {
        let nics = super::super::parse_nics("rtl8139,e1000,virtio,e1000").unwrap();
        assert_eq!(
            plan(&nics).unwrap(),
            (
                "0000:00:03.0".to_owned(),
                "virtio-net,pci=0000:00:04.0".to_owned(),
                "vio0"
            )
        );
        let only = super::super::parse_nics("e1000,e1000").unwrap();
        assert!(plan(&only).unwrap_err().contains("virtio"));
        let ported = super::super::parse_nics("e1000,rtl8139").unwrap();
        assert_eq!(
            plan(&ported).unwrap(),
            (
                "0000:00:02.0".to_owned(),
                "rtk,pci=0000:00:03.0".to_owned(),
                "rtk0"
            )
        );
        let legacy = super::super::parse_nics("ne2k_pci,e1000").unwrap();
        assert_eq!(
            plan(&legacy).unwrap(),
            (
                "0000:00:03.0".to_owned(),
                "legacy:/lib/pktkit/devn-ne2000.so,pci=0000:00:02.0".to_owned(),
                "en0"
            )
        );
        let s = script("0000:00:02.0", "virtio-net,pci=0000:00:03.0", "vio0");
        assert!(
            s.contains("-d e1000,pci=0000:00:02.0 --ip wm0=10.9.0.1/24"),
            "{s}"
        );
        assert!(
            s.contains("-d virtio-net,pci=0000:00:03.0 --ip vio0=10.9.0.2/24"),
            "{s}"
        );
        assert!(
            s.contains("tcpcheck --instance a 10.9.0.2:7 --bytes 8388608"),
            "{s}"
        );
    }

    #[test]
    fn report_needs_every_step() {
        let ok =
            "@@LAB cross start 0\n@@LAB cross ping-a 0\n@@LAB cross ping-b 0\n@@LAB cross tcp 0\n";
        assert!(report(ok).is_ok());
        assert_eq!(outcomes(ok).len(), 4);
        let bad = "@@LAB cross start 0\n@@LAB cross ping-a 0\n@@LAB cross ping-b 1\n";
        let e = report(bad).unwrap_err();
        assert!(e.contains("ping-b") && e.contains("tcp"), "{e}");
    }
}
