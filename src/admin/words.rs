//! Word escaping on the admin socket. A request is one line of tab-separated words
//! (`crate::admin`), so `ctl` escapes backslash, tab, newline and carriage return in each word
//! (`encode_word`) and the daemon undoes it (`decode_word`): a parameter or a database value
//! may hold any character, and is stored verbatim.

/// A word as `ctl` sends it: backslash, tab, newline and carriage return escaped, so any
/// value fits the admin request's one line of tab-separated words.
pub fn encode_word(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for character in word.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out
}

/// Undoes `encode_word`; refuses what it never writes.
pub fn decode_word(word: &str) -> Result<String, String> {
    let mut out = String::with_capacity(word.len());
    let mut characters = word.chars();
    while let Some(character) = characters.next() {
        if character != '\\' {
            out.push(character);
            continue;
        }
        match characters.next() {
            Some('\\') => out.push('\\'),
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            _ => return Err(format!("bad escape in the request word {word:?}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_travel_escaped_and_come_back_verbatim() {
        let words = [
            "plain",
            "a\tb",
            "line\nbreak\r\n",
            r"a literal \t and \\ stay",
            "\\",
            "é ; $(x) | `y` 'q' \"d\" * ~",
        ];
        for word in words {
            let encoded = encode_word(word);
            assert!(!encoded.contains(['\t', '\n', '\r']), "{encoded:?}");
            assert_eq!(decode_word(&encoded).as_deref(), Ok(word));
        }
        let every: String = (0u8..128).map(char::from).collect();
        assert_eq!(decode_word(&encode_word(&every)), Ok(every));
        for never_written in [r"a\qb", r"trailing\", r"\x41"] {
            let error = decode_word(never_written).expect_err(never_written);
            assert!(error.contains("bad escape"), "{error}");
        }
    }
}
