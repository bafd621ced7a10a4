//! JUnit XML for CI: one `<testsuite>` per tape (or validation flow), one `<testcase>` per
//! step (or check), a `<failure>` carrying the difference lines.

use super::replay::ReplayReport;
use super::validate::ValidateReport;

/// Escapes text for XML attributes and content.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 has no place for other control characters.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

struct Case {
    name: String,
    seconds: f64,
    failure: Option<(String, String)>,
}

struct Suite {
    name: String,
    seconds: f64,
    cases: Vec<Case>,
}

fn render(name: &str, suites: &[Suite]) -> String {
    let tests: usize = suites.iter().map(|s| s.cases.len()).sum();
    let failures: usize = suites
        .iter()
        .flat_map(|s| &s.cases)
        .filter(|c| c.failure.is_some())
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str(&format!(
        "<testsuites name=\"{}\" tests=\"{tests}\" failures=\"{failures}\">\n",
        escape(name)
    ));
    for s in suites {
        let failed = s.cases.iter().filter(|c| c.failure.is_some()).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" time=\"{:.3}\">\n",
            escape(&s.name),
            s.cases.len(),
            s.seconds
        ));
        for c in &s.cases {
            out.push_str(&format!(
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                escape(&s.name),
                escape(&c.name),
                c.seconds
            ));
            match &c.failure {
                None => out.push_str("/>\n"),
                Some((message, body)) => {
                    out.push_str(">\n");
                    out.push_str(&format!(
                        "      <failure message=\"{}\">{}</failure>\n",
                        escape(message),
                        escape(body)
                    ));
                    out.push_str("    </testcase>\n");
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// The JUnit document of a replay.
pub fn replay_xml(report: &ReplayReport) -> String {
    let suites: Vec<Suite> = report
        .tapes
        .iter()
        .map(|t| {
            let mut cases: Vec<Case> = t
                .steps
                .iter()
                .map(|s| {
                    let failure = (!s.passed()).then(|| {
                        let mut lines: Vec<String> = s.error.iter().cloned().collect();
                        lines.extend(s.mismatches.iter().map(|m| format!("{}: {m}", s.label)));
                        let message = lines.first().cloned().unwrap_or_default();
                        (message, lines.join("\n"))
                    });
                    Case {
                        name: s.label.clone(),
                        seconds: s.duration.as_secs_f64(),
                        failure,
                    }
                })
                .collect();
            if let Some(e) = &t.error {
                cases.push(Case {
                    name: "load".into(),
                    seconds: 0.0,
                    failure: Some((e.clone(), e.clone())),
                });
            }
            Suite {
                name: t.path.display().to_string(),
                seconds: t.duration.as_secs_f64(),
                cases,
            }
        })
        .collect();
    render("fast-seller replay", &suites)
}

/// The JUnit document of a validation run.
pub fn validate_xml(report: &ValidateReport) -> String {
    let suites: Vec<Suite> = report
        .flows
        .iter()
        .map(|f| Suite {
            name: f.name.clone(),
            seconds: f.duration.as_secs_f64(),
            cases: f
                .checks
                .iter()
                .map(|c| Case {
                    name: format!("{}: {}", c.step, c.invariant),
                    seconds: 0.0,
                    failure: (!c.passed()).then(|| (c.detail.clone(), c.to_string())),
                })
                .collect(),
        })
        .collect();
    render("fast-seller validate", &suites)
}
