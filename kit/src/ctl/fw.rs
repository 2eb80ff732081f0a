//! `pktkit fw`: the stateless filter ([`crate::fw`]) through the control
//! socket, and the listing of the packet filter hooks ([`crate::pfil`]).
//!
//! Request `{"cmd":"fw","args":[WORDS]}` with the words of the command line
//! (`list`, `stats`, `add N ...`, `delete N`, `policy in|out accept|deny`,
//! `flush`, `zero`); the reply carries the listing after the change:
//! `rules` (`num`, `rule` as text, `action`, `packets`, `bytes`), `policy`
//! (`in`/`out`: `action`, `packets`, `bytes`), `active`, and `hooks` (every
//! pfil hook: `name`, `if`, `in`, `out`, `priority`, `calls`, `drops`).

use serde_json::{json, Map, Value};

use super::server::Ctx;
use crate::fw::Listing;

/// Answers a `fw` request.
pub(super) fn request(ctx: &Ctx, args: &[String]) -> Result<Map<String, Value>, String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let l = ctx
        .stack
        .firewall()
        .command(&words)
        .map_err(|e| e.to_string())?;
    Ok(listing_json(ctx, &l))
}

fn listing_json(ctx: &Ctx, l: &Listing) -> Map<String, Value> {
    let rules: Vec<Value> = l
        .rules
        .iter()
        .map(|r| {
            json!({
                "num": r.rule.num, "rule": r.rule.to_string(),
                "action": r.rule.action.to_string(),
                "packets": r.packets, "bytes": r.bytes,
            })
        })
        .collect();
    let pol = |p: &(crate::fw::Action, u64, u64)| json!({"action": p.0.to_string(), "packets": p.1, "bytes": p.2});
    let hooks: Vec<Value> = ctx
        .stack
        .pfil()
        .hooks()
        .into_iter()
        .map(|h| {
            json!({
                "name": h.spec.name, "if": h.spec.ifname, "in": h.spec.input,
                "out": h.spec.output, "priority": h.spec.priority,
                "calls": h.calls, "drops": h.drops,
            })
        })
        .collect();
    let mut m = Map::new();
    m.insert("rules".into(), Value::Array(rules));
    m.insert(
        "policy".into(),
        json!({"in": pol(&l.policy_in), "out": pol(&l.policy_out)}),
    );
    m.insert("active".into(), Value::Bool(l.active));
    m.insert("hooks".into(), Value::Array(hooks));
    m
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

/// The listing as text: `stats` adds counters and the hooks.
pub(super) fn show(m: &Map<String, Value>, stats: bool) -> String {
    let v = Value::Object(m.clone());
    let mut o = String::new();
    let empty = Vec::new();
    let rules = v["rules"].as_array().unwrap_or(&empty);
    for r in rules {
        if stats {
            o += &format!(
                "{:>10} {:>12}  {}\n",
                u(r, "packets"),
                u(r, "bytes"),
                s(r, "rule")
            );
        } else {
            o += &format!("{}\n", s(r, "rule"));
        }
    }
    for d in ["in", "out"] {
        let p = &v["policy"][d];
        if stats {
            o += &format!(
                "{:>10} {:>12}  policy {d} {}\n",
                u(p, "packets"),
                u(p, "bytes"),
                s(p, "action")
            );
        } else {
            o += &format!("policy {d} {}\n", s(p, "action"));
        }
    }
    if stats {
        o += "pfil hooks (in the order they run):\n";
        let hooks = v["hooks"].as_array().unwrap_or(&empty);
        if hooks.is_empty() {
            o += "  none\n";
        }
        for h in hooks {
            let dirs = match (h["in"].as_bool(), h["out"].as_bool()) {
                (Some(true), Some(true)) => "in+out",
                (Some(true), _) => "in",
                _ => "out",
            };
            o += &format!(
                "  {:<12} on {:<8} {:<6} prio {:<4} calls {} drops {}\n",
                s(h, "name"),
                h["if"].as_str().unwrap_or("all"),
                dirs,
                h["priority"].as_i64().unwrap_or(0),
                u(h, "calls"),
                u(h, "drops")
            );
        }
    }
    o
}
