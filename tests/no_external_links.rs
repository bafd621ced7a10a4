//! The repository must stand on its own: a user's clone has nothing beside it. No comment,
//! README or document may point at files outside the repository (a sibling `shared` folder,
//! the design notes the project was built from, absolute paths of the machine it was written
//! on). What the project promises is written in `docs/`; point there instead.
//!
//! Every hit is printed as `file:line: what` so it can be fixed where it is.

use std::path::{Path, PathBuf};

/// Design notes that lived outside the repository. A mention is fine only as a path of this
/// repository's own `docs/` (the file must exist there).
const OUTSIDE_NOTES: [&str; 4] = [
    "contract.md",
    "reliability.md",
    "performance.md",
    "protocol.md",
];

/// Text that always points outside the repository, compared in lower case. This file is the
/// one place allowed to spell them out.
const OUTSIDE_MARKERS: [(&str, &str); 6] = [
    ("../shared", "a folder beside the repository"),
    (
        "contract §",
        "a section of a document outside the repository",
    ),
    (
        "protocol §",
        "a section of a document outside the repository",
    ),
    ("reliability notes", "a document outside the repository"),
    (
        "/work/",
        "an absolute path of the machine it was written on",
    ),
    (
        "/root/",
        "an absolute path of the machine it was written on",
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What is wrong with `line` of the file at `rel` (a path relative to the repository root).
fn problems(rel: &str, line: &str, repo: &Path) -> Vec<String> {
    let lower = line.to_lowercase();
    let mut found: Vec<String> = OUTSIDE_MARKERS
        .iter()
        .filter(|(marker, _)| lower.contains(marker))
        .map(|(marker, why)| format!("`{marker}`: {why}"))
        .collect();
    let in_docs = rel.starts_with("docs/");
    for name in OUTSIDE_NOTES {
        for (at, _) in lower.match_indices(name) {
            let before = &lower[..at];
            // Part of a longer name (`my-protocol.md`) is not this document.
            if before
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
            {
                continue;
            }
            let ours = repo.join("docs").join(name).is_file();
            let docs_path = before.ends_with("docs/") || (in_docs && !before.ends_with('/'));
            if !(docs_path && ours) {
                found.push(format!(
                    "`{name}` is not a document of this repository (point at docs/ instead)"
                ));
            }
        }
    }
    found
}

/// Files under `dir` (recursively) that `keep` accepts, skipping build output and fuzzing
/// inputs.
fn files(dir: &Path, keep: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(
                name,
                "target" | "corpus" | "artifacts" | "node_modules" | ".git"
            ) {
                files(&path, keep, out);
            }
        } else if keep(&path) {
            out.push(path);
        }
    }
}

/// `file:line: problem` for every hit in `paths`; text files only.
fn scan(paths: &[PathBuf]) -> Vec<String> {
    let repo = root();
    let this_file = repo.join(file!());
    let mut hits = Vec::new();
    for path in paths {
        if *path == this_file {
            continue;
        }
        // Binary files (and anything not UTF-8) hold no comments to read.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let rel = path
            .strip_prefix(&repo)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        for (n, line) in text.lines().enumerate() {
            for p in problems(&rel, line, &repo) {
                hits.push(format!("{rel}:{}: {p}", n + 1));
            }
        }
    }
    hits
}

fn assert_none(what: &str, hits: &[String]) {
    assert!(
        hits.is_empty(),
        "{} pointer(s) outside the repository in {what}:\n{}",
        hits.len(),
        hits.join("\n")
    );
}

#[test]
fn readme_docs_tests_and_tooling_point_only_inside_the_repository() {
    let repo = root();
    let any = |_: &Path| true;
    let markdown = |p: &Path| p.extension().is_some_and(|e| e == "md");
    let mut paths = vec![repo.join("README.md")];
    for dir in [
        "docs",
        "tests",
        "benches",
        "fuzz",
        "deploy",
        "scripts",
        "integrations",
    ] {
        files(&repo.join(dir), &any, &mut paths);
    }
    files(&repo.join("fixtures"), &markdown, &mut paths);
    assert!(
        paths.len() > 20,
        "the scan found only {} files: is it looking in the right place?",
        paths.len()
    );
    assert_none(
        "README.md, docs/, tests/, benches/, fuzz/, deploy/, scripts/, integrations/, fixtures/",
        &scan(&paths),
    );
}

#[test]
fn source_comments_point_only_inside_the_repository() {
    let mut paths = Vec::new();
    files(&root().join("src"), &|_| true, &mut paths);
    assert!(!paths.is_empty(), "no files under src/");
    assert_none("src/", &scan(&paths));
}

/// The scanner itself: each kind of pointer is found, and the project's own docs/ paths are
/// not.
#[test]
fn the_scanner_tells_outside_pointers_from_the_projects_own_docs() {
    let repo = root();
    let outside = [
        ("src/a.rs", "//! Pricing (contract §3)."),
        ("src/a.rs", "// Contract §7 names a cancel"),
        ("tests/a.rs", "/// Fast's checkout (protocol §2.1)"),
        (
            "README.md",
            "follow [`../shared/contract.md`](../shared/contract.md) §2–§6",
        ),
        ("tests/a.rs", "//! Hostile input (reliability.md §5.3)"),
        ("benches/a.rs", "//! (`/work/shared/performance.md` §5)"),
        (
            "fixtures/README.md",
            "covering every flow of `protocol.md` §2",
        ),
        ("src/a.rs", "//! pattern B of the reliability notes, §4.5"),
        ("scripts/a.sh", "cp /root/keys ."),
        ("docs/a.md", "see ../contract.md"),
        ("docs/a.md", "see [the contract](contract.md)"),
    ];
    for (rel, line) in outside {
        assert!(
            !problems(rel, line, &repo).is_empty(),
            "{rel}: not flagged: {line}"
        );
    }
    let inside = [
        (
            "tests/a.rs",
            "// The default limit (docs/protocol.md#reading-a-request).",
        ),
        (
            "README.md",
            "- [docs/performance.md](docs/performance.md): how the bench measures",
        ),
        (
            "fixtures/README.md",
            "the wire format is in [docs/protocol.md](../docs/protocol.md)",
        ),
        (
            "docs/pricing.md",
            "The wire forms are in [protocol.md](protocol.md).",
        ),
        (
            "src/a.rs",
            "//! RSA keys shorter than this are ignored (RFC 7518 §3.3).",
        ),
        ("tests/a.rs", "// money-protocol.md is some other file"),
    ];
    for (rel, line) in inside {
        let found = problems(rel, line, &repo);
        assert!(
            found.is_empty(),
            "{rel}: wrongly flagged: {line}: {found:?}"
        );
    }
}
