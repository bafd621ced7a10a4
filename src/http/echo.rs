//! A caller's value quoted back in an answer or a log line (a Content-Type we refuse, an unknown
//! path): bounded and escaped, so a 100 KB header costs us 128 bytes, not 100 KB per answer
//! and per log line, and cannot forge log lines or terminal escapes.

use std::fmt;

/// Most bytes of a caller's value that an answer or a log line quotes (before the `…`).
pub const MAX_ECHO_BYTES: usize = 128;

/// Displays `.0` with printable ASCII kept, every other character (and `\`) escaped
/// (`\t`, `\u{1b}`, `\u{e9}`), cut to at most [`MAX_ECHO_BYTES`] bytes followed by `…` when
/// there was more.
#[derive(Debug, Clone, Copy)]
pub struct Echo<'a>(pub &'a str);

impl fmt::Display for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut written = 0;
        let mut piece = String::new();
        for c in self.0.chars() {
            piece.clear();
            if c == ' ' || (c.is_ascii_graphic() && c != '\\') {
                piece.push(c);
            } else {
                piece.extend(c.escape_default());
            }
            if written + piece.len() > MAX_ECHO_BYTES {
                return f.write_str("…");
            }
            written += piece.len();
            f.write_str(&piece)?;
        }
        Ok(())
    }
}

/// [`Echo`] as an owned string, for error messages.
pub fn bounded_echo(text: &str) -> String {
    Echo(text).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_printable_values_are_unchanged() {
        assert_eq!(
            bounded_echo("text/plain; charset=utf-8"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(bounded_echo(""), "");
    }

    #[test]
    fn long_values_are_cut_with_an_ellipsis() {
        let long = "a".repeat(100_000);
        let shown = bounded_echo(&long);
        assert_eq!(shown, format!("{}…", "a".repeat(MAX_ECHO_BYTES)));
        let exact = "b".repeat(MAX_ECHO_BYTES);
        assert_eq!(
            bounded_echo(&exact),
            exact,
            "no ellipsis when nothing was cut"
        );
    }

    #[test]
    fn control_and_non_ascii_characters_are_escaped_and_count_as_escaped() {
        assert_eq!(
            bounded_echo("a\tb\nc\u{1b}[31m\\é"),
            "a\\tb\\nc\\u{1b}[31m\\\\\\u{e9}"
        );
        let shown = bounded_echo(&"\u{1b}".repeat(1000));
        assert!(shown.len() <= MAX_ECHO_BYTES + "…".len(), "{}", shown.len());
        assert!(shown.starts_with("\\u{1b}\\u{1b}") && shown.ends_with('…'));
        assert!(!shown.contains('\u{1b}'));
    }
}
