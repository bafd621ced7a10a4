//! What a replay found: per step, per tape, per run; rendered for people and as JUnit XML.

use crate::tapes::compare::Mismatch;
use crate::tapes::junit;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// At most this many differences are printed per step.
const MAX_LINES_PER_STEP: usize = 40;

/// The outcome of one step.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub number: u64,
    /// `step 3 (update shipping)`.
    pub label: String,
    pub mismatches: Vec<Mismatch>,
    /// The step could not be carried out (request failed, placeholder not bound…).
    pub error: Option<String>,
    pub duration: Duration,
}

impl StepResult {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.mismatches.is_empty()
    }

    fn junit_case(&self) -> junit::Case {
        let failure = (!self.passed()).then(|| {
            let mut lines: Vec<String> = self.error.iter().cloned().collect();
            lines.extend(
                self.mismatches
                    .iter()
                    .map(|m| format!("{}: {m}", self.label)),
            );
            let message = lines.first().cloned().unwrap_or_default();
            (message, lines.join("\n"))
        });
        junit::Case {
            name: self.label.clone(),
            seconds: self.duration.as_secs_f64(),
            failure,
        }
    }
}

/// The outcome of one tape.
#[derive(Debug, Clone)]
pub struct TapeResult {
    pub path: PathBuf,
    pub name: String,
    pub steps: Vec<StepResult>,
    /// The tape could not be run at all (unreadable, bad ignore pattern, server start…).
    pub error: Option<String>,
    pub duration: Duration,
    /// Rewritten by `--update`.
    pub updated: bool,
    /// Whether forwarded events were compared.
    pub forwarded_checked: bool,
}

impl TapeResult {
    /// A tape about to run, nothing found yet.
    pub(super) fn new(path: &Path, name: String) -> TapeResult {
        TapeResult {
            path: path.to_path_buf(),
            name,
            steps: Vec::new(),
            error: None,
            duration: Duration::ZERO,
            updated: false,
            forwarded_checked: false,
        }
    }

    /// A tape that could not be run at all (named after its file).
    pub(super) fn failed(path: &Path, error: String) -> TapeResult {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        TapeResult {
            error: Some(error),
            ..TapeResult::new(path, name)
        }
    }

    pub fn differences(&self) -> usize {
        self.steps.iter().map(|s| s.mismatches.len()).sum()
    }

    pub(super) fn has_errors(&self) -> bool {
        self.error.is_some() || self.steps.iter().any(|s| s.error.is_some())
    }

    pub fn passed(&self) -> bool {
        !self.has_errors() && self.differences() == 0
    }

    fn junit_suite(&self) -> junit::Suite {
        let mut cases: Vec<junit::Case> = self.steps.iter().map(StepResult::junit_case).collect();
        if let Some(e) = &self.error {
            cases.push(junit::Case {
                name: "load".into(),
                seconds: 0.0,
                failure: Some((e.clone(), e.clone())),
            });
        }
        junit::Suite {
            name: self.path.display().to_string(),
            seconds: self.duration.as_secs_f64(),
            cases,
        }
    }
}

/// What [`super::replay`] found.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// `http://…` or `in-process`.
    pub target: String,
    pub update: bool,
    pub tapes: Vec<TapeResult>,
}

impl ReplayReport {
    /// True when every tape ran and matched. With `--update`, differences were written into
    /// the tapes, so only tapes that could not run (or steps that failed to send) count.
    pub fn passed(&self) -> bool {
        self.tapes
            .iter()
            .all(|t| !t.has_errors() && (self.update || t.differences() == 0))
    }

    /// The human report: one line per tape, and under a failing tape one line per
    /// difference, `step 3 (update shipping): $.order.order.total_amount expected "94.47"
    /// got "94.46"`.
    pub fn render(&self) -> String {
        let mut out = format!(
            "replay against {}{}\n",
            self.target,
            if self.update { " (--update)" } else { "" }
        );
        for t in &self.tapes {
            let verdict = if t.has_errors() {
                "FAIL"
            } else if t.updated {
                "UPDATED"
            } else if t.passed() {
                "PASS"
            } else {
                "FAIL"
            };
            out.push_str(&format!(
                "{verdict} {} ({} steps, {:.1} s{}{})\n",
                t.path.display(),
                t.steps.len(),
                t.duration.as_secs_f64(),
                if t.forwarded_checked {
                    ""
                } else {
                    ", forwarded events not checked"
                },
                if t.updated { ", rewritten" } else { "" }
            ));
            if let Some(e) = &t.error {
                out.push_str(&format!("  {e}\n"));
            }
            for s in &t.steps {
                if let Some(e) = &s.error {
                    out.push_str(&format!("  {}: {e}\n", s.label));
                }
                for m in s.mismatches.iter().take(MAX_LINES_PER_STEP) {
                    out.push_str(&format!("  {}: {m}\n", s.label));
                }
                if s.mismatches.len() > MAX_LINES_PER_STEP {
                    out.push_str(&format!(
                        "  {}: … and {} more differences\n",
                        s.label,
                        s.mismatches.len() - MAX_LINES_PER_STEP
                    ));
                }
            }
        }
        let failed = self.tapes.iter().filter(|t| !t.passed()).count();
        let diffs: usize = self.tapes.iter().map(TapeResult::differences).sum();
        let rewritten = self.tapes.iter().filter(|t| t.updated).count();
        out.push_str(&format!(
            "{} tapes: {} passed, {} failed ({} differences){}\n",
            self.tapes.len(),
            self.tapes.len() - failed,
            failed,
            diffs,
            if self.update {
                format!(", {rewritten} rewritten")
            } else {
                String::new()
            }
        ));
        out
    }

    /// The JUnit document: one test suite per tape, one test case per step.
    pub fn junit_xml(&self) -> String {
        let suites: Vec<junit::Suite> = self.tapes.iter().map(TapeResult::junit_suite).collect();
        junit::render("fast-seller replay", &suites)
    }
}
