//! The KPI a ported driver finds, held to the names NetBSD's drivers use.
//!
//! tests/kpi-tiers.txt lists, tier by tier, the headers, names and
//! structure members of NetBSD's network driver KPI (see its header for
//! the notation). For each section this test writes a C file that includes
//! every header and uses every name -- a structure by its size, a type by
//! its size, a macro or constant by `#ifdef` or value, a function or
//! variable by its address -- and runs `pktkit port check` on it: the file
//! must compile against compat-bsd's headers and every symbol it references
//! must be one the KPI defines. A gap names the tier and the name.

use std::fmt::Write as _;
use std::path::PathBuf;

use pktkit_bsd::portcheck;

/// One section of kpi-tiers.txt.
struct Section {
    name: String,
    lines: Vec<String>,
}

fn sections() -> Vec<Section> {
    let text = include_str!("kpi-tiers.txt");
    let mut out: Vec<Section> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest.split(']').next().unwrap_or_default().to_string();
            out.push(Section {
                name,
                lines: Vec::new(),
            });
        } else if let Some(s) = out.last_mut() {
            s.lines.push(line.to_string());
        }
    }
    out
}

/// The words of a section, `struct X` and `struct *X` kept whole.
fn names(lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for line in lines {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "struct" {
                if let Some(tag) = words.next() {
                    out.push(format!("struct {tag}"));
                }
            } else {
                out.push(w.to_string());
            }
        }
    }
    out
}

fn macro_case(name: &str) -> bool {
    name.starts_with("__")
        || (name.chars().any(|c| c.is_ascii_uppercase())
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
}

/// The probe file of one section: declarations at file scope, uses in a
/// function, each on its own line so a gap points at its name.
fn probe(headers: &[String], section: &Section) -> String {
    let mut top = String::new();
    let mut body = String::new();
    if section.name == "fields" {
        for line in &section.lines {
            let Some((ty, members)) = line.split_once(':') else {
                continue;
            };
            for m in members.split_whitespace() {
                writeln!(body, "\t(void)__builtin_offsetof({ty}, {m});").unwrap();
            }
        }
    } else if section.name != "headers" && section.name != "omitted" {
        for (i, n) in names(&section.lines).iter().enumerate() {
            if let Some(tag) = n.strip_prefix("struct *") {
                writeln!(top, "struct {tag} *probe_{i};").unwrap();
            } else if let Some(ty) = n.strip_prefix('*') {
                writeln!(top, "{ty} *probe_{i};").unwrap();
            } else if n.starts_with("struct ") || n.ends_with("_t") {
                writeln!(top, "char probe_{i}[sizeof({n})];").unwrap();
            } else if macro_case(n) {
                writeln!(body, "#ifndef {n}\n\t(void)sizeof({n});\n#endif").unwrap();
            } else {
                writeln!(
                    body,
                    "#ifndef {n}\n\tprobe_use((const void *)&{n});\n#endif"
                )
                .unwrap();
            }
        }
    }
    let mut src = String::new();
    for h in headers {
        writeln!(src, "#include <{h}>").unwrap();
    }
    write!(
        src,
        "\nvoid probe_use(const void *);\n{top}\nvoid\nprobe_all(void)\n{{\n{body}}}\n\n\
         void\nprobe_use(const void *p)\n{{\n\t(void)p;\n}}\n"
    )
    .unwrap();
    src
}

#[test]
fn every_name_of_every_tier_is_there() {
    let all = sections();
    let headers = all
        .iter()
        .find(|s| s.name == "headers")
        .map(|s| names(&s.lines))
        .expect("a [headers] section");
    assert!(all.len() >= 5, "sections: {}", all.len());
    let root = std::env::temp_dir().join(format!("pktkit-tiers-{}", std::process::id()));
    let mut failures = String::new();
    for section in all.iter().filter(|s| s.name != "omitted") {
        let dir: PathBuf = root.join(&section.name);
        std::fs::create_dir_all(&dir).unwrap();
        let file = format!("probe_{}.c", section.name.replace('-', "_"));
        std::fs::write(dir.join(&file), probe(&headers, section)).unwrap();
        let report = portcheck::check(&dir).expect("port check runs");
        if !report.complete() || report.compiled.len() != 1 {
            writeln!(failures, "[{}] {report}", section.name).unwrap();
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    assert!(failures.is_empty(), "missing from the KPI:\n{failures}");
}

#[test]
fn a_missing_name_is_reported_under_its_tier() {
    // The check itself: a name no NetBSD header has must be a gap.
    let section = Section {
        name: "made-up".into(),
        lines: vec!["if_no_such_call struct no_such_softc NO_SUCH_FLAG".into()],
    };
    let dir = std::env::temp_dir().join(format!("pktkit-tiers-neg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("probe.c"),
        probe(&["sys/param.h".into()], &section),
    )
    .unwrap();
    // And one declared (as a header would) but defined nowhere: a link gap.
    let declared = Section {
        name: "declared".into(),
        lines: vec!["if_declared_only".into()],
    };
    let src = probe(&["sys/param.h".into()], &declared).replacen(
        "void probe_use",
        "void if_declared_only(void);\nvoid probe_use",
        1,
    );
    std::fs::write(dir.join("declared.c"), src.replace("probe_", "declared_")).unwrap();
    let report = portcheck::check(&dir).expect("port check runs");
    let _ = std::fs::remove_dir_all(&dir);
    let gaps: Vec<&str> = report.gaps.iter().map(|g| g.name.as_str()).collect();
    for name in [
        "if_no_such_call",
        "struct no_such_softc",
        "NO_SUCH_FLAG",
        "if_declared_only",
    ] {
        assert!(gaps.contains(&name), "{name} not among {gaps:?}");
    }
    let link = report.gaps.iter().find(|g| g.name == "if_declared_only");
    assert_eq!(
        link.map(|g| g.kind),
        Some(portcheck::GapKind::Symbol),
        "{report}"
    );
}
