//! What a validation run found: checks, flows, the report and its text rendering.

use crate::tapes::junit;
use std::fmt;
use std::time::Duration;

/// How bad a failed check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    /// A convention the seller does not follow; does not fail the run.
    Warn,
    Fail,
}

/// One check of one invariant at one step.
#[derive(Debug, Clone)]
pub struct Check {
    pub step: String,
    pub invariant: &'static str,
    pub outcome: Outcome,
    pub detail: String,
}

impl Check {
    pub fn passed(&self) -> bool {
        self.outcome != Outcome::Fail
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.outcome {
            Outcome::Pass => "ok",
            Outcome::Warn => "WARN",
            Outcome::Fail => "FAIL",
        };
        write!(f, "{tag} {}: {}", self.step, self.invariant)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// The checks of one flow.
#[derive(Debug, Clone)]
pub struct FlowResult {
    pub name: String,
    pub checks: Vec<Check>,
    pub duration: Duration,
}

impl FlowResult {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(Check::passed)
    }
}

/// What [`validate`](super::validate) found.
#[derive(Debug, Clone)]
pub struct ValidateReport {
    pub target: String,
    pub flows: Vec<FlowResult>,
}

impl ValidateReport {
    /// True when no check failed (warnings allowed).
    pub fn passed(&self) -> bool {
        self.flows.iter().all(FlowResult::passed)
    }

    /// The invariants that failed somewhere, each once, in order of first failure.
    pub fn failed_invariants(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        for c in self.flows.iter().flat_map(|f| &f.checks) {
            if c.outcome == Outcome::Fail && !out.contains(&c.invariant) {
                out.push(c.invariant);
            }
        }
        out
    }

    /// One line per flow; under it every failed check and warning.
    pub fn render(&self) -> String {
        let mut out = format!("validate {}\n", self.target);
        let (mut checks, mut failed, mut warned) = (0, 0, 0);
        for flow in &self.flows {
            let f = flow
                .checks
                .iter()
                .filter(|c| c.outcome == Outcome::Fail)
                .count();
            checks += flow.checks.len();
            failed += f;
            out.push_str(&format!(
                "{} {} ({} checks{}, {:.1} s)\n",
                if flow.passed() { "PASS" } else { "FAIL" },
                flow.name,
                flow.checks.len(),
                if f > 0 {
                    format!(", {f} failed")
                } else {
                    String::new()
                },
                flow.duration.as_secs_f64()
            ));
            for c in flow.checks.iter().filter(|c| c.outcome != Outcome::Pass) {
                warned += usize::from(c.outcome == Outcome::Warn);
                out.push_str(&format!("  {c}\n"));
            }
        }
        let flows_failed = self.flows.iter().filter(|f| !f.passed()).count();
        out.push_str(&format!(
            "{} flows: {} passed, {} failed; {checks} checks, {failed} failed, {warned} warnings\n",
            self.flows.len(),
            self.flows.len() - flows_failed,
            flows_failed
        ));
        if !self.passed() {
            out.push_str(&format!(
                "broken invariants: {}\n",
                self.failed_invariants().join(", ")
            ));
        }
        out
    }

    /// The JUnit document: one test suite per flow, one test case per check.
    pub fn junit_xml(&self) -> String {
        let suites: Vec<junit::Suite> = self
            .flows
            .iter()
            .map(|f| junit::Suite {
                name: f.name.clone(),
                seconds: f.duration.as_secs_f64(),
                cases: f
                    .checks
                    .iter()
                    .map(|c| junit::Case {
                        name: format!("{}: {}", c.step, c.invariant),
                        seconds: 0.0,
                        failure: (!c.passed()).then(|| (c.detail.clone(), c.to_string())),
                    })
                    .collect(),
            })
            .collect();
        junit::render("fast-seller validate", &suites)
    }
}
