//! Server text made safe to print or log. A server (or anyone in the
//! middle) controls error bodies, OAuth error descriptions and webhook
//! payloads; printed raw, `ESC]0;…BEL` retitles the terminal and `ESC[2J`
//! clears it, and bidi overrides make a line read differently than it is.
//! Every server-provided string goes through [`one_line`] (or
//! [`multi_line`]) before it reaches a message, a log line or the screen.

/// Whether `c` must never reach a terminal: C0 controls, DEL, C1 controls
/// and the Unicode bidirectional formatting characters.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` on one line: line breaks and tabs become spaces, every other control
/// or bidi character is dropped (`ESC[2J` becomes the harmless `[2J`).
pub fn one_line(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if is_unsafe(c) => None,
            c => Some(c),
        })
        .collect()
}

/// `s` keeping its line breaks and tabs (for text printed as a block);
/// every other control or bidi character is dropped.
pub fn multi_line(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, '\n' | '\t') || !is_unsafe(*c))
        .collect()
}

/// The first `max` characters of [`one_line`]`(s)`.
pub fn one_line_cut(s: &str, max: usize) -> String {
    one_line(s).chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_bells_c1_and_bidi_are_dropped() {
        let hostile = "a\u{1b}]0;pwned\u{7}b\u{1b}[2Jc\u{9b}31md\u{202e}e\u{2066}f\u{7f}g";
        assert_eq!(one_line(hostile), "a]0;pwnedb[2Jc31mdefg");
        assert_eq!(one_line("x\ny\r\tz"), "x y  z");
        assert_eq!(multi_line("x\ny\r\tz\u{1b}"), "x\ny\tz");
        assert_eq!(one_line("naïve – 日本 ✓"), "naïve – 日本 ✓");
        assert_eq!(one_line_cut("ab\u{1b}cd", 3), "abc");
    }
}
