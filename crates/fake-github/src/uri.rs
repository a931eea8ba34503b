//! Percent-encoding of path segments and query strings.

/// Decodes `%XX` escapes; invalid escapes stay as they are, and invalid UTF-8
/// is replaced.
pub(crate) fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = match bytes.get(at..at + 3) {
            Some([b'%', high, low]) => hex(*high).zip(hex(*low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                out.push(high << 4 | low);
                at += 3;
            }
            None => {
                out.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encodes everything but RFC 3986's unreserved characters, as GitHub does
/// for logins in URLs (`github-actions%5Bbot%5D`).
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The decoded `name=value` pairs of a query string, in order (`+` is a
/// space).
pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

/// A query string component's decoded form.
pub(crate) fn form_decode(text: &str) -> String {
    decode(&text.replace('+', " "))
}

fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_bot_logins_and_keeps_bad_escapes() {
        assert_eq!(decode("github-actions%5Bbot%5D"), "github-actions[bot]");
        assert_eq!(decode("a%5bb%5d"), "a[b]");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%2"), "%zz%2");
        assert_eq!(decode("caf%C3%A9"), "café");
    }

    #[test]
    fn encodes_what_is_not_unreserved() {
        assert_eq!(encode("dependabot[bot]"), "dependabot%5Bbot%5D");
        assert_eq!(encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(decode(&encode("x y/é")), "x y/é");
    }

    #[test]
    fn splits_queries() {
        assert_eq!(
            query_pairs("per_page=100&page=2&q=a+b%2Bc&flag"),
            [
                ("per_page".into(), "100".into()),
                ("page".into(), "2".into()),
                ("q".into(), "a b+c".into()),
                ("flag".into(), String::new()),
            ]
        );
    }
}
