//! `sysctl`: a tree of the stack's tunables and read-only figures, read and
//! set at run time.
//!
//! ```text
//! kern.instance, kern.pid, kern.uptime_s           ro
//! kern.fallback, kern.fallback_active              ro  serialized-driver rule
//! kern.log_level                                   rw  off|error|warn|info|debug|trace
//! pool.capacity|available|hugepages|bytes|exhausted|scavenged|double_frees   ro
//! pool.owner.IF                                    ro  buffers IF holds
//! runtime.workers, runtime.sleeps, runtime.worker.N.sleeps                    ro
//! runtime.task_panics, runtime.fault.N (task: panic message)                  ro
//! net.if.IF.mtu                                    rw
//! net.if.IF.promisc, net.if.IF.up                  rw  0|1
//! net.if.IF.flags|mac|driver|link|speed_mbps|stack_drops|tx_pending          ro
//! net.if.IF.rxq.N.packets|bytes|errors|drops, net.if.IF.txq.N....            ro
//! net.if.IF.drv.PATH                               rw|ro  the driver's own tunables
//! net.inet.services                                ro  built-in services
//! ctl.pool_check_ms                                rw  pool-exhaustion check period
//! ctl.bad_requests, ctl.refused, ctl.events_dropped                           ro
//! ```
//!
//! `net.if.IF.drv.*` are what the driver lists in
//! [`Driver::tunables`](pktkit_native::Driver::tunables): for a ported
//! NetBSD driver, the sysctl(9) leaves it made below its device node
//! (`hw.bnull0.tx_defer` is `net.if.bnull0.drv.tx_defer`). They are read
//! and set through the interface's driver lock, as `control` requests are;
//! a value the driver refuses is reported with its reason and changes
//! nothing. Their descriptions come with them (`description` in `--json`).
//! A driver is asked for them only by a request that can select them
//! (everything, `net`, `net.if`, `net.if.IF`, `net.if.IF.drv` or below),
//! so `kern.pid` runs no driver code.

use std::sync::atomic::Ordering;

use serde_json::{json, Map, Value};

use super::server::Ctx;
use crate::runtime::Fallback;

/// One node: name, value, writable, and what it means (drivers' nodes).
struct Node {
    name: String,
    value: String,
    writable: bool,
    description: String,
}

fn ro(name: impl Into<String>, value: impl ToString) -> Node {
    Node {
        name: name.into(),
        value: value.to_string(),
        writable: false,
        description: String::new(),
    }
}

fn rw(name: impl Into<String>, value: impl ToString) -> Node {
    Node {
        writable: true,
        ..ro(name, value)
    }
}

fn bit(b: bool) -> u8 {
    u8::from(b)
}

/// Whether the dotted name `a` is `b` or below it (`b.` and more).
fn within(a: &str, b: &str) -> bool {
    a.strip_prefix(b)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// Whether a request for `name` (`None` or empty: everything) can select
/// a node below `subtree`: `name` is the subtree, above it, or in it.
fn selects(name: Option<&str>, subtree: &str) -> bool {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return true;
    };
    within(subtree, name) || within(name, subtree)
}

/// Every node a request for `name` can select (`None`: every node), in
/// tree order. Drivers are asked for their tunables (which takes their
/// lock and may run their code) only when the request can select them.
fn collect(ctx: &Ctx, name: Option<&str>) -> Vec<Node> {
    let stack = &ctx.stack;
    let mut v = vec![
        ro("kern.instance", &ctx.instance),
        ro("kern.pid", std::process::id()),
        ro(
            "kern.uptime_s",
            format!("{:.1}", ctx.started.elapsed().as_secs_f64()),
        ),
        ro(
            "kern.fallback",
            match stack.policy().mode() {
                Fallback::PerDriver => "per-driver",
                Fallback::Global => "global",
            },
        ),
        ro("kern.fallback_active", bit(stack.policy().global_active())),
        rw(
            "kern.log_level",
            log::max_level().to_string().to_lowercase(),
        ),
    ];
    let p = stack.pool().stats();
    v.extend([
        ro("pool.name", &p.name),
        ro("pool.capacity", p.capacity),
        ro("pool.available", p.available),
        ro("pool.hugepages", bit(p.hugepages)),
        ro("pool.bytes", p.bytes),
        ro("pool.exhausted", p.exhausted),
        ro("pool.scavenged", p.scavenged),
        ro("pool.double_frees", p.double_frees),
    ]);
    for (owner, held) in &p.owners {
        v.push(ro(format!("pool.owner.{owner}"), held));
    }
    let rt = stack.runtime();
    let sleeps = rt.sleeps();
    v.push(ro("runtime.workers", rt.workers()));
    v.push(ro("runtime.sleeps", sleeps.iter().sum::<u64>()));
    for (i, s) in sleeps.iter().enumerate() {
        v.push(ro(format!("runtime.worker.{i}.sleeps"), s));
    }
    let faults = rt.faults();
    v.push(ro("runtime.task_panics", faults.len()));
    for (i, f) in faults.iter().enumerate() {
        v.push(ro(
            format!("runtime.fault.{i}"),
            format!("{}: {}", f.task, f.why),
        ));
    }
    for i in stack.interfaces() {
        let st = i.state();
        let c = i.counters();
        let base = format!("net.if.{}", i.name);
        v.extend([
            rw(format!("{base}.mtu"), st.mtu),
            rw(
                format!("{base}.promisc"),
                bit(st.flags & crate::iface::flags::PROMISC != 0),
            ),
            rw(
                format!("{base}.up"),
                bit(st.flags & crate::iface::flags::UP != 0),
            ),
            ro(format!("{base}.flags"), format!("{:#x}", st.flags)),
            ro(format!("{base}.mac"), crate::iface::fmt_mac(&st.mac)),
            ro(format!("{base}.driver"), &i.driver),
            ro(
                format!("{base}.link"),
                if st.link.up { "up" } else { "down" },
            ),
            ro(format!("{base}.speed_mbps"), st.link.speed_mbps),
            ro(format!("{base}.stack_drops"), c.stack_drops),
            ro(
                format!("{base}.tx_pending"),
                stack.with_proto(|n| n.tx_pending(i.index)),
            ),
        ]);
        let drv = format!("{base}.drv");
        let tunables = if selects(name, &drv) {
            i.with_driver(|d| d.tunables())
        } else {
            Vec::new()
        };
        for t in tunables {
            v.push(Node {
                name: format!("{base}.drv.{}", t.name),
                value: t.value,
                writable: t.writable,
                description: t.description,
            });
        }
        for (dir, qs) in [("rxq", &c.rx_queues), ("txq", &c.tx_queues)] {
            for (n, q) in qs.iter().enumerate() {
                let b = format!("{base}.{dir}.{n}");
                v.extend([
                    ro(format!("{b}.packets"), q.packets),
                    ro(format!("{b}.bytes"), q.bytes),
                    ro(format!("{b}.errors"), q.errors),
                    ro(format!("{b}.drops"), q.drops),
                ]);
            }
        }
    }
    let services = stack.with_proto(|n| {
        n.services()
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(",")
    });
    v.push(ro("net.inet.services", services));
    let t = &ctx.tunables;
    v.extend([
        rw("ctl.pool_check_ms", t.pool_check_ms.load(Ordering::Relaxed)),
        ro("ctl.bad_requests", t.bad_requests.load(Ordering::Relaxed)),
        ro("ctl.refused", t.refused.load(Ordering::Relaxed)),
        ro(
            "ctl.events_dropped",
            t.events_dropped.load(Ordering::Relaxed),
        ),
    ]);
    v
}

fn parse_bit(value: &str) -> Result<bool, String> {
    match value {
        "1" | "on" | "true" | "yes" => Ok(true),
        "0" | "off" | "false" | "no" => Ok(false),
        _ => Err("expected 0 or 1".into()),
    }
}

/// Sets a writable node.
fn set(ctx: &Ctx, name: &str, value: &str) -> Result<(), String> {
    let bad = |why: String| format!("bad value '{value}' for {name}: {why}");
    match name {
        "kern.log_level" => {
            let level: log::LevelFilter = value
                .parse()
                .map_err(|_| bad("expected off, error, warn, info, debug or trace".into()))?;
            log::set_max_level(level);
            return Ok(());
        }
        "ctl.pool_check_ms" => {
            let ms: u64 = value
                .parse()
                .map_err(|_| bad("expected milliseconds".into()))?;
            if !(10..=60_000).contains(&ms) {
                return Err(bad("must be 10..=60000".into()));
            }
            ctx.tunables.pool_check_ms.store(ms, Ordering::Relaxed);
            return Ok(());
        }
        _ => {}
    }
    let Some(rest) = name.strip_prefix("net.if.") else {
        return Err(format!("sysctl {name} is read-only"));
    };
    let stack = &ctx.stack;
    if let Some((ifname, path)) = rest.split_once(".drv.") {
        let iface = stack.interface(ifname).map_err(|e| e.to_string())?;
        return iface
            .with_driver(|d| d.set_tunable(path, value))
            .map_err(|e| match e {
                pktkit_native::DriverError::BadOption { why, .. } => bad(why),
                e => format!("{name}: {e}"),
            });
    }
    let Some((ifname, leaf)) = rest.rsplit_once('.') else {
        return Err(format!("sysctl {name} is read-only"));
    };
    let iface = stack.interface(ifname).map_err(|e| e.to_string())?;
    match leaf {
        "mtu" => {
            let mtu: u32 = value.parse().map_err(|_| bad("expected a number".into()))?;
            stack.set_mtu(&iface.name, mtu).map_err(|e| e.to_string())
        }
        "promisc" => iface
            .set_promisc(parse_bit(value).map_err(bad)?)
            .map_err(|e| e.to_string()),
        "up" => {
            let words = [if parse_bit(value).map_err(bad)? {
                "up"
            } else {
                "down"
            }
            .to_owned()];
            super::views::ifconfig(ctx, Some(ifname), &words).map(drop)
        }
        _ => Err(format!("sysctl {name} is read-only")),
    }
}

fn node_json(n: &Node) -> Value {
    let mut v = json!({"name": n.name, "value": n.value, "writable": n.writable});
    if !n.description.is_empty() {
        v["description"] = Value::String(n.description.clone());
    }
    v
}

/// A `sysctl` request: everything, one node or a subtree (`name`), or a
/// change (`name` and `value`).
pub(super) fn request(
    ctx: &Ctx,
    name: Option<&str>,
    value: Option<&Value>,
) -> Result<Map<String, Value>, String> {
    let value = match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::Bool(b)) => Some(if *b { "1".into() } else { "0".into() }),
        Some(_) => return Err("'value' must be a string or a number".into()),
    };
    let all = collect(ctx, name);
    let find = |name: &str| all.iter().find(|n| n.name == name);
    if let Some(value) = value {
        let name = name.ok_or("setting a value needs a name")?;
        match find(name) {
            None => return Err(format!("unknown sysctl '{name}'")),
            Some(n) if !n.writable => return Err(format!("sysctl {name} is read-only")),
            Some(_) => {}
        }
        set(ctx, name, value.trim())?;
        let after = collect(ctx, Some(name));
        let n = after
            .iter()
            .find(|n| n.name == name)
            .map(node_json)
            .unwrap_or(Value::Null);
        let mut m = Map::new();
        m.insert("values".into(), Value::Array(vec![n]));
        return Ok(m);
    }
    let picked: Vec<Value> = match name {
        None | Some("") => all.iter().map(node_json).collect(),
        Some(name) => {
            let v: Vec<Value> = all
                .iter()
                .filter(|n| within(&n.name, name))
                .map(node_json)
                .collect();
            if v.is_empty() {
                return Err(format!("unknown sysctl '{name}'"));
            }
            v
        }
    };
    let mut m = Map::new();
    m.insert("values".into(), Value::Array(picked));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::selects;

    #[test]
    fn a_request_selects_a_subtree_from_above_at_or_below_it() {
        let drv = "net.if.bnull0.drv";
        for name in [
            None,
            Some(""),
            Some("net"),
            Some("net.if"),
            Some("net.if.bnull0"),
            Some(drv),
            Some("net.if.bnull0.drv.size"),
        ] {
            assert!(selects(name, drv), "{name:?}");
        }
        for name in [
            "kern.pid",
            "kern",
            "ne",
            "net.if.bnull",
            "net.if.bnull00",
            "net.if.bnull0.drvx",
            "net.if.bnull0.mtu",
        ] {
            assert!(!selects(Some(name), drv), "{name}");
        }
    }
}
