//! JUnit XML for CI: one `<testsuite>` per tape (or validation flow), one `<testcase>` per
//! step (or check), a `<failure>` carrying the difference lines.
//!
//! Knows no report: `replay` and `validate` turn theirs into [`Suite`]s and call [`render`].

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

/// One `<testcase>`.
pub struct Case {
    pub name: String,
    pub seconds: f64,
    /// The failure's message and its body (the difference lines).
    pub failure: Option<(String, String)>,
}

/// One `<testsuite>`.
pub struct Suite {
    pub name: String,
    pub seconds: f64,
    pub cases: Vec<Case>,
}

/// The JUnit document named `name`.
pub fn render(name: &str, suites: &[Suite]) -> String {
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
