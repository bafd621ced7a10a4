//! Compact tables for people (the listing commands and `config check`); `--json` prints the
//! records whole instead.

use serde_json::Value;

/// Columns padded to their widest cell, two spaces apart, headers in capitals; a cell wider
/// than 60 characters is cut with `…`.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    const MAX: usize = 60;
    let cut = |s: &str| -> String {
        if s.chars().count() > MAX {
            s.chars().take(MAX - 1).chain(['…']).collect()
        } else {
            s.to_string()
        }
    };
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cut(c)).collect())
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| -> String {
        let last = cells.len().saturating_sub(1);
        let padded: Vec<String> = cells
            .into_iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == last {
                    c
                } else {
                    let pad = w.saturating_sub(c.chars().count());
                    c + &" ".repeat(pad)
                }
            })
            .collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(headers.iter().map(|h| h.to_uppercase()).collect());
    for row in rows {
        out += &line(row);
    }
    out
}

/// The text of `v[key]`: strings as they are, numbers and booleans as JSON, `-` when absent.
pub fn cell(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let t = render(
            &["id", "state"],
            &[
                vec!["a".into(), "pending".into()],
                vec!["longer".into(), "dead".into()],
            ],
        );
        assert_eq!(t, "ID      STATE\na       pending\nlonger  dead\n");
    }
}
