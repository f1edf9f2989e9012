//! Printer strings decoded to UTF-8 by one documented strategy.
//!
//! Printers send ASCII, UTF-8 (CJK models), ISO-8859-x, UTF-16, strings with
//! trailing NULs, and HP's private strings with a two-octet PCL symbol-set
//! prefix (`01 15` for Roman-8, `FD E8` for UTF-8). The strategy, in order:
//!
//! 1. strip an HP symbol-set prefix when the caller says the string comes
//!    from HP's private tree ([`Origin::HpPrivate`]); and strip `FD E8`
//!    (UTF-8 follows) from any string whose rest is valid UTF-8: HP puts
//!    it on standard strings too (supply descriptions), and no real text
//!    starts with "ýè" followed by UTF-8;
//! 2. decode UTF-16 when the octets start with a byte-order mark, or look
//!    like UTF-16 (even length, every other octet zero);
//! 3. otherwise take the octets as UTF-8 if they are valid UTF-8;
//! 4. otherwise as ISO-8859-1 (each octet is the code point of the same
//!    number): without the printer's prtLocalization charset the other
//!    ISO-8859 parts cannot be told apart, and Latin-1 is by far the most
//!    common;
//! 5. drop trailing NULs and whitespace, and replace other control
//!    characters (but tab and newline) by spaces.
//!
//! Only the text is kept: nothing reads the octets afterwards, and keeping
//! them doubled the size of every snapshot, which a device with 128 KiB of
//! RAM cannot pay for.

use heapless::String;

/// Where a string came from, when that changes how it is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Standard,
    /// HP's enterprise tree (1.3.6.1.4.1.11): may carry a symbol-set prefix.
    HpPrivate,
}

/// A device string decoded to text of at most `N` octets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Text<const N: usize> {
    text: String<N>,
    /// The device sent more than `N` octets, or the text needed more room.
    truncated: bool,
}

impl<const N: usize> Text<N> {
    pub fn new(raw: &[u8], origin: Origin) -> Self {
        let mut t = Self::default();
        let body = match origin {
            Origin::HpPrivate => strip_hp_prefix(raw),
            Origin::Standard => strip_utf8_prefix(raw),
        };
        decode_into(body, &mut t.text, &mut t.truncated);
        t
    }

    /// The decoded text.
    pub fn as_str(&self) -> &str {
        self.text.as_str()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.truncated = false;
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// A derived text (a description without its part number, say) that
    /// stays marked truncated when its source was.
    pub fn with_text(&self, text: &str) -> Self {
        let mut t = Self::from_str_lossy(text);
        t.truncated |= self.truncated;
        t
    }

    /// Text for values the agent derives itself.
    pub fn from_str_lossy(s: &str) -> Self {
        Self::new(s.as_bytes(), Origin::Standard)
    }
}

fn strip_hp_prefix(raw: &[u8]) -> &[u8] {
    match raw {
        [0x01, 0x15, rest @ ..] | [0xfd, 0xe8, rest @ ..] => rest,
        _ => raw,
    }
}

/// HP's "UTF-8 follows" prefix, on a standard string: stripped when what
/// follows is UTF-8 (else the octets may be Latin-1 text after all).
fn strip_utf8_prefix(raw: &[u8]) -> &[u8] {
    match raw {
        [0xfd, 0xe8, rest @ ..] if core::str::from_utf8(trim_trailing_nuls(rest)).is_ok() => rest,
        _ => raw,
    }
}

fn push_char<const N: usize>(out: &mut String<N>, c: char, truncated: &mut bool) {
    let c = match c {
        '\t' | '\n' => c,
        c if c.is_control() => ' ',
        c => c,
    };
    if out.push(c).is_err() {
        *truncated = true;
    }
}

fn decode_into<const N: usize>(raw: &[u8], out: &mut String<N>, truncated: &mut bool) {
    if let Some((big_endian, body)) = utf16_layout(raw) {
        let units = body.chunks_exact(2).map(|p| match p {
            [a, b] if big_endian => u16::from_be_bytes([*a, *b]),
            [a, b] => u16::from_le_bytes([*a, *b]),
            _ => 0,
        });
        for c in char::decode_utf16(units) {
            push_char(out, c.unwrap_or(char::REPLACEMENT_CHARACTER), truncated);
        }
    } else if let Ok(s) = core::str::from_utf8(trim_trailing_nuls(raw)) {
        for c in s.chars() {
            push_char(out, c, truncated);
        }
    } else {
        for &b in trim_trailing_nuls(raw) {
            push_char(out, char::from(b), truncated);
        }
    }
    // Trailing spaces (often padding, or NULs turned into spaces) go too.
    while out.ends_with([' ', '\0', '\t', '\n', '\r']) {
        out.pop();
    }
}

fn trim_trailing_nuls(mut raw: &[u8]) -> &[u8] {
    while let [rest @ .., 0] = raw {
        raw = rest;
    }
    raw
}

/// Whether the octets are UTF-16, and in which byte order.
fn utf16_layout(mut raw: &[u8]) -> Option<(bool, &[u8])> {
    // A trailing NUL code unit is padding, not a sign against UTF-16.
    while raw.len().is_multiple_of(2)
        && let [rest @ .., 0, 0] = raw
    {
        raw = rest;
    }
    match raw {
        [0xfe, 0xff, rest @ ..] => return Some((true, rest)),
        [0xff, 0xfe, rest @ ..] => return Some((false, rest)),
        _ => {}
    }
    // Without a mark: at least two characters, even length, and every high
    // octet zero (Latin text in UTF-16), on the same side throughout.
    if raw.len() < 4 || !raw.len().is_multiple_of(2) {
        return None;
    }
    let pairs = || raw.chunks_exact(2);
    let be = pairs().all(|p| matches!(p, [0, b] if *b != 0));
    let le = pairs().all(|p| matches!(p, [a, 0] if *a != 0));
    match (be, le) {
        (true, false) => Some((true, raw)),
        (false, true) => Some((false, raw)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(raw: &[u8]) -> Text<64> {
        Text::new(raw, Origin::Standard)
    }

    #[test]
    fn strategy_in_order() {
        assert_eq!(text(b"Black Toner\0\0").as_str(), "Black Toner");
        assert_eq!(text("トナー黒".as_bytes()).as_str(), "トナー黒");
        // ISO-8859-1 when not UTF-8.
        assert_eq!(text(b"Magenta Tr\xe4ger").as_str(), "Magenta Träger");
        // UTF-16 with and without a byte-order mark.
        assert_eq!(text(&[0xfe, 0xff, 0, b'H', 0, b'P']).as_str(), "HP");
        assert_eq!(text(&[b'T', 0, b'o', 0, b'n', 0]).as_str(), "Ton");
        assert_eq!(text(&[0, b'T', 0, b'o']).as_str(), "To");
        assert_eq!(text(&[b'T', 0, b'o', 0, b'n', 0, 0, 0]).as_str(), "Ton");
        // Control characters become spaces, trailing ones go.
        assert_eq!(text(b"A\x01B \r\n").as_str(), "A B");
    }

    #[test]
    fn hp_symbol_set_prefix_only_from_hp_private_strings() {
        let raw = b"\x01\x15VNCRC48198";
        assert_eq!(
            Text::<32>::new(raw, Origin::HpPrivate).as_str(),
            "VNCRC48198"
        );
        assert_eq!(
            Text::<32>::new(b"\xfd\xe8Tray 1", Origin::HpPrivate).as_str(),
            "Tray 1"
        );
        assert_eq!(
            Text::<32>::new(raw, Origin::Standard).as_str(),
            "  VNCRC48198"
        );
    }

    /// HP's "UTF-8 follows" prefix on a standard string (a supply's
    /// description), which read as Latin-1 gave "ýèBlack Cartridge HP 58A".
    #[test]
    fn hp_utf8_prefix_is_stripped_from_standard_strings() {
        assert_eq!(
            Text::<64>::new(b"\xfd\xe8Black Cartridge HP 58A\0\0", Origin::Standard).as_str(),
            "Black Cartridge HP 58A"
        );
        assert_eq!(
            Text::<64>::new("\u{fd}\u{e8}".as_bytes(), Origin::Standard).as_str(),
            "ýè"
        );
        // Not followed by UTF-8: the octets are Latin-1 text.
        assert_eq!(
            Text::<64>::new(b"\xfd\xe8\xe9t\xe9", Origin::Standard).as_str(),
            "ýèété"
        );
    }

    #[test]
    fn long_strings_are_truncated_and_say_so() {
        let t = Text::<4>::new(b"abcdef", Origin::Standard);
        assert_eq!((t.as_str(), t.is_truncated()), ("abcd", true));
        // A multi-octet character that does not fit is dropped whole.
        let t = Text::<4>::new("abcé".as_bytes(), Origin::Standard);
        assert_eq!((t.as_str(), t.is_truncated()), ("abc", true));
    }
}
