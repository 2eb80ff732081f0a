//! The suite's result: named checks with an outcome and evidence, as a
//! table, as JSON and as JUnit XML.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

/// How one check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The device behaved as the contract says.
    Pass,
    /// It did not; the evidence says how.
    Fail,
    /// The check does not apply (the driver, device or host lacks what it
    /// needs); the evidence says why.
    Skip,
}

impl Outcome {
    /// `pass`, `fail` or `skip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
        }
    }

    fn parse(s: &str) -> Option<Outcome> {
        match s {
            "pass" => Some(Outcome::Pass),
            "fail" => Some(Outcome::Fail),
            "skip" => Some(Outcome::Skip),
            _ => None,
        }
    }
}

/// One named check.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    /// Stable name, e.g. `ring_wrap`.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// What was measured (numbers), or why it was skipped.
    pub evidence: String,
    /// How long it took.
    pub duration: Duration,
}

/// Everything one suite run found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// The device under test, e.g. `e1000 pci=0000:00:02.0`.
    pub dut: String,
    /// Its peer on the wire.
    pub peer: String,
    /// What the DUT's driver says about itself (`Driver::describe`).
    pub dut_facts: Vec<(String, String)>,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
    /// Wall time of the whole run.
    pub duration: Duration,
}

impl Report {
    /// The check called `name`.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// How many checks ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.checks.iter().filter(|c| c.outcome == outcome).count()
    }

    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.count(Outcome::Fail) == 0
    }

    /// A plain-text table: check, result, evidence.
    pub fn table(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(5);
        let mut s = format!("conformance: {} (peer {})\n", self.dut, self.peer);
        let _ = writeln!(s, "{:<width$}  {:<6} evidence", "check", "result");
        for c in &self.checks {
            let _ = writeln!(
                s,
                "{:<width$}  {:<6} {}",
                c.name,
                c.outcome.as_str().to_uppercase(),
                c.evidence
            );
        }
        let _ = writeln!(
            s,
            "{} passed, {} failed, {} skipped in {:.1} s",
            self.count(Outcome::Pass),
            self.count(Outcome::Fail),
            self.count(Outcome::Skip),
            self.duration.as_secs_f64()
        );
        s
    }

    /// The report as a JSON value (see [`Report::to_json`]).
    pub fn to_json_value(&self) -> Value {
        let facts: serde_json::Map<String, Value> = self
            .dut_facts
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        json!({
            "suite": "pktkit-conformance",
            "version": 1,
            "dut": self.dut,
            "peer": self.peer,
            "dut_facts": facts,
            "passed": self.passed(),
            "counts": {
                "pass": self.count(Outcome::Pass),
                "fail": self.count(Outcome::Fail),
                "skip": self.count(Outcome::Skip),
            },
            "seconds": self.duration.as_secs_f64(),
            "checks": self.checks.iter().map(|c| json!({
                "name": c.name,
                "result": c.outcome.as_str(),
                "evidence": c.evidence,
                "seconds": c.duration.as_secs_f64(),
            })).collect::<Vec<_>>(),
        })
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(&self.to_json_value()).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Reads back what [`Report::to_json`] wrote.
    pub fn from_json(text: &str) -> Result<Report, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let str_at = |v: &Value, k: &str| -> Result<String, String> {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("missing string '{k}'"))
        };
        let secs = |v: &Value| {
            Duration::from_secs_f64(v.get("seconds").and_then(Value::as_f64).unwrap_or(0.0))
        };
        let mut checks = Vec::new();
        for c in v
            .get("checks")
            .and_then(Value::as_array)
            .ok_or("missing 'checks'")?
        {
            let result = str_at(c, "result")?;
            checks.push(Check {
                name: str_at(c, "name")?,
                outcome: Outcome::parse(&result).ok_or_else(|| format!("bad result '{result}'"))?,
                evidence: str_at(c, "evidence")?,
                duration: secs(c),
            });
        }
        let dut_facts = v
            .get("dut_facts")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Report {
            dut: str_at(&v, "dut")?,
            peer: str_at(&v, "peer")?,
            dut_facts,
            checks,
            duration: secs(&v),
        })
    }

    /// The report as JUnit XML: one `<testsuite>` named after the DUT, one
    /// `<testcase>` per check, `<failure>` or `<skipped>` carrying the
    /// evidence, and the evidence of every check in `<system-out>`.
    pub fn to_junit(&self) -> String {
        let suite = format!("conformance {}", self.dut);
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            s,
            "<testsuites name=\"pktkit-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">",
            self.checks.len(),
            self.count(Outcome::Fail),
            self.count(Outcome::Skip),
            self.duration.as_secs_f64()
        );
        let _ = writeln!(
            s,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
            xml_escape(&suite),
            self.checks.len(),
            self.count(Outcome::Fail),
            self.count(Outcome::Skip),
            self.duration.as_secs_f64()
        );
        s.push_str("    <properties>\n");
        let _ = writeln!(
            s,
            "      <property name=\"peer\" value=\"{}\"/>",
            xml_escape(&self.peer)
        );
        for (k, v) in &self.dut_facts {
            let _ = writeln!(
                s,
                "      <property name=\"dut.{}\" value=\"{}\"/>",
                xml_escape(k),
                xml_escape(v)
            );
        }
        s.push_str("    </properties>\n");
        for c in &self.checks {
            let _ = write!(
                s,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
                xml_escape(&format!("conformance.{}", self.dut)),
                xml_escape(&c.name),
                c.duration.as_secs_f64()
            );
            let ev = xml_escape(&c.evidence);
            match c.outcome {
                Outcome::Pass => {}
                Outcome::Fail => {
                    let _ = write!(s, "\n      <failure message=\"{ev}\">{ev}</failure>");
                }
                Outcome::Skip => {
                    let _ = write!(s, "\n      <skipped message=\"{ev}\"/>");
                }
            }
            let _ = writeln!(s, "\n      <system-out>{ev}</system-out>\n    </testcase>");
        }
        s.push_str("  </testsuite>\n</testsuites>\n");
        s
    }
}

/// Escapes text for XML character data and attribute values. Characters
/// XML 1.0 cannot carry at all (most C0 controls) become `?`.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' | '\n' | '\r' => {
                let _ = write!(o, "&#{};", c as u32);
            }
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => o.push('?'),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report {
            dut: "e1000 pci=0000:00:02.0".into(),
            peer: "e1000 pci=0000:00:03.0".into(),
            dut_facts: vec![("rxd".into(), "256".into())],
            checks: vec![
                Check {
                    name: "frames".into(),
                    outcome: Outcome::Pass,
                    evidence: "1455 sizes <ok> & \"quoted\"".into(),
                    duration: Duration::from_millis(1500),
                },
                Check {
                    name: "ring_wrap".into(),
                    outcome: Outcome::Fail,
                    evidence: "lost 3 of 1024\nline two\u{1}".into(),
                    duration: Duration::from_millis(20),
                },
                Check {
                    name: "reset".into(),
                    outcome: Outcome::Skip,
                    evidence: "not supported: 'reset'".into(),
                    duration: Duration::ZERO,
                },
            ],
            duration: Duration::from_secs(3),
        }
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let back = Report::from_json(&r.to_json()).unwrap();
        assert_eq!(back.checks.len(), 3);
        assert_eq!(back.checks[1].outcome, Outcome::Fail);
        assert_eq!(back.checks[0].evidence, r.checks[0].evidence);
        assert_eq!(back.dut_facts, r.dut_facts);
        assert!(!back.passed());
        let v: Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["counts"]["fail"], 1);
        assert_eq!(v["passed"], false);
    }

    #[test]
    fn escaping_and_table() {
        assert_eq!(
            xml_escape("a<b>&\"c'\n\u{7}"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;?"
        );
        let t = sample().table();
        assert!(t.contains("ring_wrap  FAIL   lost 3 of 1024"), "{t}");
        assert!(t.contains("1 passed, 1 failed, 1 skipped"), "{t}");
    }

    #[test]
    fn junit_counts_and_escapes() {
        let x = sample().to_junit();
        assert!(x.contains("tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\""));
        assert!(x.contains("&lt;ok&gt; &amp; &quot;quoted&quot;"));
        assert!(!x.contains('\u{1}'));
        assert!(x.contains("<skipped message=\"not supported: &apos;reset&apos;\"/>"));
    }
}
