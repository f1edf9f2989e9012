//! Log lines with what clients sent in them (device models, host names,
//! task details, paths) made safe to print: control characters, line
//! breaks and terminal escapes are written as `\n`, `\u{1b}` and the like,
//! so that an agent cannot forge a log line or repaint the operator's
//! terminal.

use std::fmt::Write;
use std::sync::Arc;

/// Where the server's log lines go: standard error unless replaced (tests
/// read them).
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

pub fn stderr() -> Sink {
    Arc::new(|line: &str| eprintln!("{line}"))
}

/// Whether `c` must not reach a log as itself: C0 and C1 controls, DEL,
/// the Unicode line and paragraph separators, and the bidirectional
/// overrides that reorder what a terminal shows.
fn unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every unsafe character escaped, and backslashes doubled so that
/// an escape in the log always means the character was there.
pub fn escape(s: &str) -> String {
    if !s.chars().any(|c| unsafe_char(c) || c == '\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_lines_and_terminal_escapes_stay_on_one_line() {
        let model = "x\n[fake] dca-cloud: agent enrolled\r\x1b[2J\u{202e}";
        let line = escape(model);
        assert_eq!(
            line,
            "x\\n[fake] dca-cloud: agent enrolled\\r\\u{1b}[2J\\u{202e}"
        );
        assert!(!line.chars().any(char::is_control));
        assert_eq!(escape("plain text, ünïcode"), "plain text, ünïcode");
        assert_eq!(
            escape("a\\nb"),
            "a\\\\nb",
            "a literal backslash-n is told apart"
        );
    }
}
