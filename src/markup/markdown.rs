//! Making untrusted text (model output, anything from the pull request) inert in a
//! GitHub comment: it cannot ping people, inject HTML, leave its code block, move a
//! table cell, print terminal escapes, reorder the text around it (bidirectional
//! overrides) or forge the comment's hidden marker.

/// Zero-width space: breaks the `<!--` pattern without a visible change.
const ZWSP: char = '\u{200B}';

/// Shown as U+FFFD: control characters (terminal escapes), line and paragraph
/// separators, and bidirectional formatting characters, which would reorder the text.
fn is_unprintable(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}')
        || super::is_bidi_control(c)
}

/// Text for inline markdown (a sentence, a table cell): one line, markdown and HTML
/// characters escaped, mentions broken.
pub fn text(input: &str) -> String {
    let mut out = String::with_capacity(input.len() + 8);
    for c in input.chars() {
        match c {
            '\n' | '\t' | '\r' => out.push(' '),
            c if is_unprintable(c) => out.push('\u{FFFD}'),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str("@&#8203;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// What code spans and blocks share: no terminal escapes, no `<!--`. (GitHub does not
/// turn `@name` inside code into a mention.)
fn inert(input: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(input.len() + 8);
    let mut prev = '\0';
    for c in input.chars() {
        match c {
            '\n' | '\r' | '\t' if !keep_newlines => out.push(' '),
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if is_unprintable(c) => out.push('\u{FFFD}'),
            '!' if prev == '<' => {
                out.push(ZWSP);
                out.push('!');
            }
            c => out.push(c),
        }
        prev = c;
    }
    out
}

/// The longest run of backticks in `text`.
fn longest_backtick_run(text: &str) -> usize {
    let (mut longest, mut run) = (0, 0);
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest
}

/// A fence longer than any backtick run in `body`, so the body cannot close it.
pub fn fence(body: &str) -> String {
    "`".repeat((longest_backtick_run(body) + 1).max(3))
}

/// Inline code that stays inline code whatever `text` holds; `|` is escaped so it
/// cannot split a table cell.
pub fn code(input: &str) -> String {
    let body = inert(input, false).replace('|', "\\|");
    let ticks = "`".repeat(longest_backtick_run(&body) + 1);
    if body.starts_with('`') || body.ends_with('`') || body.is_empty() {
        format!("{ticks} {body} {ticks}")
    } else {
        format!("{ticks}{body}{ticks}")
    }
}

/// A message written with backtick-quoted names (``unknown field `x` ``), as inline
/// markdown: what the backticks quote becomes a code span (fenced by [`code`], so a name
/// holding backticks stays one span), the rest is escaped as [`text`]. Spans are found as
/// GitHub finds them, a backtick run up to the next run of the same length; a run with
/// none is shown as it is. Either way every character goes through `code` or `text`, so
/// model output quoted in a message stays inert wherever its own backticks fall.
pub fn prose(input: &str) -> String {
    let ticks_at = |i: usize| input[i..].bytes().take_while(|&b| b == b'`').count();
    let mut out = String::with_capacity(input.len() + 8);
    let (mut plain, mut i) = (0, 0);
    while let Some(found) = input[i..].find('`') {
        let open = i + found;
        let n = ticks_at(open);
        let mut close = None;
        let mut j = open + n;
        while let Some(next) = input[j..].find('`') {
            let at = j + next;
            let m = ticks_at(at);
            if m == n {
                close = Some(at);
                break;
            }
            j = at + m;
        }
        let Some(close) = close else {
            i = open + n;
            continue;
        };
        out.push_str(&text(&input[plain..open]));
        let body = input[open + n..close].replace(['\n', '\r'], " ");
        let body = match body.strip_prefix(' ').and_then(|b| b.strip_suffix(' ')) {
            Some(inner) if !body.trim().is_empty() => inner.to_string(),
            _ => body,
        };
        out.push_str(&code(&body));
        i = close + n;
        plain = i;
    }
    out.push_str(&text(&input[plain..]));
    out
}

/// A fenced code block holding `body` verbatim (but inert), in `lang`.
pub fn block(body: &str, lang: &str) -> String {
    let mut body = inert(body, true);
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let fence = fence(&body);
    let lang: String = lang
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    format!("{fence}{lang}\n{body}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_neutralizes_mentions_html_and_markdown() {
        assert_eq!(text("@org/team"), "@&#8203;org/team");
        assert_eq!(
            text("<img src=x onerror=alert(1)>"),
            "&lt;img src=x onerror=alert(1)&gt;"
        );
        assert_eq!(text("a|b\n**c**"), "a\\|b \\*\\*c\\*\\*");
        assert_eq!(text("<!-- promptgate -->"), "&lt;\\!-- promptgate --&gt;");
        assert_eq!(text("\u{1b}[31mred"), "\u{FFFD}\\[31mred");
        assert_eq!(text("ok\u{202e}cod.exe"), "ok\u{FFFD}cod.exe");
    }

    #[test]
    fn code_spans_and_blocks_cannot_be_left() {
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(code("@bob"), "`@bob`");
        let b = block("```\n<!-- promptgate:report -->\n", "text");
        assert!(b.starts_with("````text\n"), "{b}");
        assert!(b.ends_with("\n````"), "{b}");
        assert!(!b.contains("<!--"), "{b}");
    }

    #[test]
    fn prose_quotes_become_code_spans() {
        assert_eq!(
            prose("unknown field `max_drp`, did you mean `max_drop`?"),
            "unknown field `max_drp`, did you mean `max_drop`?"
        );
        // A quoted answer holding backticks: the longer run quotes it, and it is
        // fenced again longer than the backticks inside.
        assert_eq!(prose("got ``a`b``"), "got ``a`b``");
        assert_eq!(prose("got `` `x` ``"), "got `` `x` ``");
        // Backticks nothing closes are text; markup outside quotes is escaped.
        assert_eq!(prose("a ` b <i>*"), "a \\` b &lt;i&gt;\\*");
        assert_eq!(prose("`a`` b"), "\\`a\\`\\` b");
        // What a quote holds cannot leave it, nor ping anyone outside it.
        assert_eq!(
            prose("got `x` <img> `y` @bob"),
            "got `x` &lt;img&gt; `y` @&#8203;bob"
        );
    }

    /// The inverse of [`text`], for checking that nothing is lost.
    fn unescape(escaped: &str) -> String {
        let escaped = escaped
            .replace("@&#8203;", "@")
            .replace("&lt;", "<")
            .replace("&gt;", ">");
        let mut out = String::new();
        let mut chars = escaped.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
        // `&amp;` last: `&amp;lt;` is the text `&lt;`.
        out.replace("&amp;", "&")
    }

    proptest! {
        #[test]
        fn text_output_is_inert(s in "\\PC*|[@<>&|`\\n!-]{0,40}") {
            let t = text(&s);
            prop_assert!(!t.contains('<') && !t.contains('>') && !t.contains('\n'));
            prop_assert!(!t.contains("<!--"));
            // Every `@` is followed by the zero-width-space entity.
            prop_assert_eq!(t.matches('@').count(), t.matches("@&#8203;").count());
            // Every `|` is escaped.
            prop_assert_eq!(t.matches('|').count(), t.matches("\\|").count());
        }

        #[test]
        fn blocks_are_never_closed_early(s in "(`{0,6}|[a-z@<!-]{0,5}|\\n){0,30}") {
            let b = block(&s, "text");
            let fence = b.lines().next().unwrap_or_default().trim_end_matches("text").to_string();
            prop_assert!(fence.len() >= 3);
            // Only the last line is the closing fence.
            let closing = b.lines().skip(1).filter(|l| l.trim_start().starts_with(&fence)).count();
            prop_assert_eq!(closing, 1);
            prop_assert!(!b.contains("<!--"));
        }

        /// Nothing is lost: unescaping gives the input back, with line breaks as spaces
        /// and unprintable characters as U+FFFD.
        #[test]
        fn text_round_trips(s in any::<String>()) {
            let shown: String = s
                .chars()
                .map(|c| match c {
                    '\n' | '\t' | '\r' => ' ',
                    c if is_unprintable(c) => '\u{FFFD}',
                    c => c,
                })
                .collect();
            prop_assert_eq!(unescape(&text(&s)), shown);
        }

        /// Any characters at all, control characters included, and text thick with
        /// bidirectional controls (which `any` hardly ever draws).
        #[test]
        fn nothing_unprintable_gets_through(
            s in prop_oneof![
                any::<String>(),
                "[\u{202a}-\u{202e}\u{2066}-\u{2069}\u{200e}\u{200f}\u{61c}\u{1b}a-z`@<!\n-]{0,40}",
            ]
        ) {
            let shown = |c: char| !c.is_control() && !crate::markup::is_bidi_control(c);
            let t = text(&s);
            prop_assert!(t.chars().all(shown), "{:?}", t);
            let c = code(&s);
            prop_assert!(c.chars().all(shown), "{:?}", c);
            prop_assert!(!c.contains("<!--"));
            let b = block(&s, "te`xt\n");
            prop_assert!(b.chars().all(|c| shown(c) || c == '\n' || c == '\t'), "{:?}", b);
            prop_assert!(!b.contains("<!--"));
            // The language cannot carry anything either.
            let first = b.lines().next().unwrap_or_default();
            prop_assert!(first.starts_with("```"));
            prop_assert_eq!(first.trim_start_matches('`'), "text");
        }

        /// A block shows its body as it is, but for `<!` and unprintable characters
        /// (U+2028 and U+2029 here: the strategy makes no control characters).
        #[test]
        fn block_bodies_are_verbatim(s in "(\\PC|\n|`){0,60}") {
            prop_assume!(!s.contains("<!"));
            let b = block(&s, "text");
            let body = b.split_once('\n').map(|(_, rest)| rest).unwrap_or_default();
            let body = body.rsplit_once('\n').map(|(body, _)| body).unwrap_or_default();
            let mut want: String = s
                .chars()
                .map(|c| if is_unprintable(c) { '\u{FFFD}' } else { c })
                .collect();
            if !want.ends_with('\n') {
                want.push('\n');
            }
            prop_assert_eq!(format!("{body}\n"), want);
        }

        /// Whatever a message holds, GitHub reads its prose as one paragraph of plain
        /// text and code spans: no HTML, link, emphasis or line break gets through.
        #[test]
        fn prose_is_text_and_code_spans(s in "([a-z`@<>|*_!#&\\[\\]() \n]|<img src=x>|</details>){0,30}") {
            use comrak::nodes::NodeValue;
            let mut options = comrak::Options::default();
            options.extension.table = true;
            options.extension.strikethrough = true;
            options.extension.autolink = true;
            let arena = comrak::Arena::new();
            let p = prose(&s);
            let root = comrak::parse_document(&arena, &p, &options);
            let mut paragraphs = 0;
            for node in root.descendants().skip(1) {
                match &node.data.borrow().value {
                    NodeValue::Paragraph => paragraphs += 1,
                    // A mention outside code is broken by a zero-width space.
                    NodeValue::Text(t) => prop_assert_eq!(
                        t.matches('@').count(),
                        t.matches("@\u{200B}").count()
                    ),
                    NodeValue::Code(_) => {}
                    other => prop_assert!(false, "{:?} in {:?} from {:?}", other, p, s),
                }
            }
            prop_assert!(paragraphs <= 1, "{:?}", p);
        }

        #[test]
        fn code_spans_stay_one_span(s in "[a-z`@| \\n]{0,30}") {
            let c = code(&s);
            prop_assert!(!c.contains('\n'));
            let ticks = c.chars().take_while(|&ch| ch == '`').count();
            let inner = &c[ticks..c.len() - ticks];
            prop_assert!(!inner.contains(&"`".repeat(ticks)));
        }
    }
}
