//! The control commands that read or change the stack: `info`, `mount`,
//! `umount`, `ifconfig`, `nicinfo` and `netstat`. Each returns the reply's
//! fields (the server adds `"ok"`), or an error message for the client.

use std::net::IpAddr;
use std::sync::Arc;

use pktkit_native::options::DriverSpec;
use pktkit_native::{Concurrency, QueueCounters};
use serde_json::{json, Map, Value};

use super::server::Ctx;
use crate::iface::{flags, fmt_mac, Interface};
use crate::proto::{IpCidr, ProtoCounters};
use crate::stack::Stack;

type Reply = Result<Map<String, Value>, String>;

fn reply(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => {
            let mut m = Map::new();
            m.insert("value".into(), other);
            m
        }
    }
}

fn concurrency_name(c: Concurrency) -> &'static str {
    match c {
        Concurrency::MpSafe => "mp-safe",
        Concurrency::Serialized => "serialized",
    }
}

/// `info`: who this stack is.
pub(super) fn info(ctx: &Ctx) -> Map<String, Value> {
    let names: Vec<String> = ctx
        .stack
        .interfaces()
        .iter()
        .map(|i| i.name.clone())
        .collect();
    reply(json!({
        "instance": ctx.instance,
        "pid": std::process::id(),
        "uptime_s": ctx.started.elapsed().as_secs_f64(),
        "interfaces": names,
        "workers": ctx.stack.runtime().workers(),
    }))
}

/// Brings an interface up and into the protocol layer, with the addresses
/// it had (the protocol layer forgets them at down).
fn bring_up(stack: &Stack, iface: &Interface) -> Result<(), String> {
    if iface.queues().is_some() {
        return Ok(());
    }
    stack.up(&iface.name).map_err(|e| e.to_string())?;
    stack.attach_proto(&iface.name).map_err(|e| e.to_string())?;
    for (a, p) in iface.state().addrs {
        stack
            .add_address(&iface.name, a, p)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `mount`: attaches a driver, brings its interfaces up and runs the
/// protocol layer on them. On any failure what was attached is detached.
pub(super) fn mount(ctx: &Ctx, spec: &str) -> Reply {
    let spec = DriverSpec::parse(spec).map_err(|e| format!("-d {spec}: {e}"))?;
    let stack = &ctx.stack;
    let ifs = stack.attach(&spec).map_err(|e| e.to_string())?;
    for i in &ifs {
        if let Err(e) = bring_up(stack, i) {
            for j in &ifs {
                if let Err(d) = stack.detach(&j.name) {
                    log::warn!("mount: undo: {d}");
                }
            }
            return Err(e);
        }
    }
    let names: Vec<String> = ifs.iter().map(|i| i.name.clone()).collect();
    log::info!("mounted {} as {}", spec.name, names.join(", "));
    Ok(reply(json!({ "interfaces": names })))
}

/// `umount`: detaches an interface; every buffer its driver held must be
/// back in the pool (else the error names how many are missing).
pub(super) fn umount(ctx: &Ctx, ifname: &str) -> Reply {
    ctx.stack.detach(ifname).map_err(|e| e.to_string())?;
    log::info!("unmounted {ifname}");
    let pool = ctx.stack.pool();
    Ok(reply(json!({
        "detached": ifname,
        "pool_available": pool.available(),
        "pool_capacity": pool.capacity(),
    })))
}

/// The protocol layer's addresses of an interface when it runs there,
/// else the ones the interface records.
fn addresses(stack: &Stack, iface: &Interface) -> Vec<(IpAddr, u8)> {
    let proto = stack.with_proto(|n| n.addresses(iface.index));
    match proto {
        Ok(list) => list
            .iter()
            .map(|c| (IpAddr::from(c.address()), c.prefix_len()))
            .collect(),
        Err(_) => iface.state().addrs,
    }
}

fn is_link_local(a: &IpAddr) -> bool {
    matches!(a, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}

/// One interface as `ifconfig` lists it.
fn iface_json(stack: &Stack, i: &Interface) -> Value {
    let st = i.state();
    let mut addrs = Vec::new();
    let (mut primary4, mut primary6, mut alias_no) = (false, false, 0);
    for (a, p) in addresses(stack, i) {
        let (family, primary) = match a {
            IpAddr::V4(_) => ("inet", &mut primary4),
            IpAddr::V6(_) => ("inet6", &mut primary6),
        };
        let alias = if is_link_local(&a) || !*primary {
            *primary |= !is_link_local(&a);
            Value::Null
        } else {
            alias_no += 1;
            Value::String(format!("{}:{alias_no}", i.name))
        };
        addrs
            .push(json!({"family": family, "addr": a.to_string(), "prefixlen": p, "alias": alias}));
    }
    let offloads = i.caps.offloads.names();
    json!({
        "name": i.name,
        "index": i.index,
        "flags": st.flags,
        "flag_names": flags::names(st.flags),
        "mtu": st.mtu,
        "mac": fmt_mac(&st.mac),
        "driver": i.driver,
        "kind": i.kind.to_string(),
        "concurrency": concurrency_name(i.concurrency()),
        "link": {"up": st.link.up, "speed_mbps": st.link.speed_mbps, "full_duplex": st.link.full_duplex},
        "media": media(&st.link),
        "status": if st.link.up { "active" } else { "no carrier" },
        "capabilities": offloads,
        "enabled": offloads,
        "addresses": addrs,
        "multicast": st.multicast.iter().map(fmt_mac).collect::<Vec<_>>(),
        "proto": stack.with_proto(|n| n.interfaces().contains(&i.index)),
    })
}

fn media(l: &pktkit_native::LinkState) -> String {
    if l.speed_mbps == 0 {
        "Ethernet autoselect".into()
    } else {
        format!(
            "Ethernet autoselect ({}Mb/s {}-duplex)",
            l.speed_mbps,
            if l.full_duplex { "full" } else { "half" }
        )
    }
}

/// One change `ifconfig` asked for.
#[derive(Debug, PartialEq)]
enum IfOp {
    Up,
    Down,
    Mtu(u32),
    Promisc(bool),
    Addr { addr: IpAddr, plen: u8, alias: bool },
    RemoveAddr(IpAddr),
}

/// Parses ifconfig's words: `up`, `down`, `mtu N`, `promisc`, `-promisc`,
/// `ADDR/PLEN [alias]`, `-alias ADDR`.
fn parse_ops(words: &[String]) -> Result<Vec<IfOp>, String> {
    let mut ops = Vec::new();
    let mut it = words.iter().map(String::as_str).peekable();
    while let Some(w) = it.next() {
        let op = match w {
            "up" => IfOp::Up,
            "down" => IfOp::Down,
            "promisc" => IfOp::Promisc(true),
            "-promisc" => IfOp::Promisc(false),
            "mtu" => {
                let n = it.next().ok_or("'mtu' needs a value")?;
                IfOp::Mtu(n.parse().map_err(|_| format!("bad MTU '{n}'"))?)
            }
            "-alias" | "delete" => {
                let a = it.next().ok_or("'-alias' needs an address")?;
                let a = a.split_once('/').map_or(a, |(x, _)| x);
                IfOp::RemoveAddr(a.parse().map_err(|_| format!("bad address '{a}'"))?)
            }
            "alias" => return Err("'alias' must follow ADDR/PLEN".into()),
            w if w.contains('/') => {
                let (addr, plen) = crate::cli::parse_cidr(w)?;
                let alias = it.next_if(|x| *x == "alias").is_some();
                IfOp::Addr { addr, plen, alias }
            }
            w => {
                return Err(format!(
                    "unknown ifconfig argument '{w}' (up, down, mtu N, ADDR/PLEN [alias], -alias ADDR, promisc, -promisc)"
                ))
            }
        };
        ops.push(op);
    }
    Ok(ops)
}

fn apply(stack: &Stack, iface: &Arc<Interface>, op: &IfOp) -> Result<(), String> {
    let name = &iface.name;
    let e = |e: crate::stack::StackError| e.to_string();
    match op {
        IfOp::Up => bring_up(stack, iface),
        IfOp::Down => stack.down(name).map_err(e),
        IfOp::Mtu(m) => stack.set_mtu(name, *m).map_err(e),
        IfOp::Promisc(on) => iface.set_promisc(*on).map_err(|x| x.to_string()),
        IfOp::Addr { addr, plen, alias } => {
            if !alias {
                // Without `alias` the address replaces the family's others.
                for (a, _) in iface.state().addrs {
                    if a.is_ipv4() == addr.is_ipv4() && a != *addr {
                        stack.remove_address(name, a).map_err(e)?;
                    }
                }
            }
            stack.add_address(name, *addr, *plen).map_err(e)
        }
        IfOp::RemoveAddr(a) => stack.remove_address(name, *a).map_err(e),
    }
}

/// `ifconfig`: lists every interface (or one), after applying the changes
/// `words` ask for, in order. A failing change stops there; the ones
/// before it stay applied.
pub(super) fn ifconfig(ctx: &Ctx, ifname: Option<&str>, words: &[String]) -> Reply {
    let stack = &ctx.stack;
    let list = match ifname {
        Some(n) => vec![stack.interface(n).map_err(|e| e.to_string())?],
        None if !words.is_empty() => return Err("changes need an interface name".into()),
        None => stack.interfaces(),
    };
    let ops = parse_ops(words)?;
    if let Some(iface) = list.first() {
        for (k, op) in ops.iter().enumerate() {
            apply(stack, iface, op).map_err(|e| {
                if k == 0 {
                    e
                } else {
                    format!("{e} (the {k} change(s) before it were applied)")
                }
            })?;
        }
    }
    let v: Vec<Value> = list.iter().map(|i| iface_json(stack, i)).collect();
    Ok(reply(json!({ "interfaces": v })))
}

fn queue_json(q: &QueueCounters) -> Value {
    json!({
        "packets": q.packets, "bytes": q.bytes, "errors": q.errors, "drops": q.drops,
        "multicast": q.multicast, "ring_full": q.ring_full, "interrupts": q.interrupts,
    })
}

fn proto_json(c: &ProtoCounters) -> Value {
    json!({
        "rx_frames": c.rx_frames, "rx_bytes": c.rx_bytes, "rx_runt": c.rx_runt,
        "rx_oversize": c.rx_oversize, "rx_not_for_us": c.rx_not_for_us,
        "rx_unknown_ethertype": c.rx_unknown_ethertype, "rx_malformed": c.rx_malformed,
        "tx_frames": c.tx_frames, "tx_bytes": c.tx_bytes, "tx_oversize": c.tx_oversize,
        "tx_no_buffer": c.tx_no_buffer, "tx_dropped": c.tx_dropped, "tx_busy": c.tx_busy,
        "service_drops": c.service_drops,
    })
}

/// `nicinfo`: everything known of one interface's device.
pub(super) fn nicinfo(ctx: &Ctx, ifname: &str) -> Reply {
    let stack = &ctx.stack;
    let i = stack.interface(ifname).map_err(|e| e.to_string())?;
    let st = i.state();
    let c = i.counters();
    let pool = stack.pool();
    let in_proto = stack.with_proto(|n| n.interfaces().contains(&i.index));
    let proto = if in_proto {
        proto_json(&stack.with_proto(|n| n.counters(i.index)))
    } else {
        Value::Null
    };
    let describe: Vec<Value> = i
        .describe()
        .into_iter()
        .map(|(k, v)| json!([k, v]))
        .collect();
    let extra: Map<String, Value> = c
        .device
        .extra
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let nic = json!({
        "name": i.name,
        "driver": i.driver,
        "kind": i.kind.to_string(),
        "concurrency": concurrency_name(i.concurrency()),
        "describe": describe,
        "mac": fmt_mac(&st.mac),
        "queues": {"rx": i.caps.rx_queues, "tx": i.caps.tx_queues},
        "mtu": {"current": st.mtu, "min": i.caps.min_mtu, "max": i.caps.max_mtu},
        "offloads": i.caps.offloads.names(),
        "multicast_slots": i.caps.multicast_slots,
        "promisc_capable": i.caps.promisc,
        "link": {"up": st.link.up, "speed_mbps": st.link.speed_mbps, "full_duplex": st.link.full_duplex},
        "counters": {
            "rx": queue_json(&c.rx),
            "tx": queue_json(&c.tx),
            "rx_queues": c.rx_queues.iter().map(queue_json).collect::<Vec<_>>(),
            "tx_queues": c.tx_queues.iter().map(queue_json).collect::<Vec<_>>(),
            "device": {"collisions": c.device.collisions, "rx_no_buffer": c.device.rx_no_buffer, "extra": extra},
            "stack_drops": c.stack_drops,
        },
        "pool": {"held": pool.held_by(i.owner), "pool_exhausted": pool.stats().exhausted},
        "proto": proto,
    });
    Ok(reply(json!({ "nic": nic })))
}

fn cidr_string(c: &IpCidr) -> String {
    format!("{}/{}", c.address(), c.prefix_len())
}

/// `netstat`: the protocol layer's sockets and routes, and per-interface
/// counters.
pub(super) fn netstat(ctx: &Ctx) -> Map<String, Value> {
    let stack = &ctx.stack;
    let ifs = stack.interfaces();
    let name_of = |idx: u32| {
        ifs.iter()
            .find(|i| i.index == idx)
            .map_or_else(|| format!("if{idx}"), |i| i.name.clone())
    };
    let (sockets, routes) = stack.with_proto(|n| (n.sockets(), n.routes()));
    let sockets: Vec<Value> = sockets
        .iter()
        .map(|s| {
            json!({
                "if": name_of(s.ifindex), "proto": s.kind, "local": s.local,
                "remote": s.remote, "state": s.state, "owner": s.owner,
                "recv_q": s.recv_queue, "send_q": s.send_queue,
            })
        })
        .collect();
    let routes: Vec<Value> = routes
        .iter()
        .map(|r| {
            let on: Vec<String> = r.ifindexes.iter().flatten().map(|&i| name_of(i)).collect();
            json!({
                "dest": cidr_string(&r.dest), "gateway": r.gw.to_string(),
                "interfaces": on, "dhcp": r.dhcp,
            })
        })
        .collect();
    let counters: Vec<Value> = ifs
        .iter()
        .map(|i| {
            let c = i.counters();
            json!({
                "if": i.name, "mtu": i.state().mtu,
                "rx_packets": c.rx.packets, "rx_bytes": c.rx.bytes, "rx_errors": c.rx.errors,
                "rx_drops": c.rx.drops, "tx_packets": c.tx.packets, "tx_bytes": c.tx.bytes,
                "tx_errors": c.tx.errors, "tx_drops": c.tx.drops + c.stack_drops,
            })
        })
        .collect();
    reply(json!({ "sockets": sockets, "routes": routes, "interfaces": counters }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn ifconfig_words_parse() {
        let ops = parse_ops(&words(
            "up mtu 1400 192.0.2.5/24 alias -alias 192.0.2.6 promisc",
        ))
        .unwrap();
        assert_eq!(
            ops,
            [
                IfOp::Up,
                IfOp::Mtu(1400),
                IfOp::Addr {
                    addr: "192.0.2.5".parse().unwrap(),
                    plen: 24,
                    alias: true
                },
                IfOp::RemoveAddr("192.0.2.6".parse().unwrap()),
                IfOp::Promisc(true),
            ]
        );
        assert!(parse_ops(&words("mtu")).is_err());
        assert!(parse_ops(&words("mtu big")).is_err());
        assert!(parse_ops(&words("alias")).is_err());
        assert!(parse_ops(&words("192.0.2.1/33")).is_err());
        assert!(parse_ops(&words("frobnicate")).is_err());
    }
}
