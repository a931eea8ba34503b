//! Making untrusted text inert in the formats promptgate writes: markdown for GitHub
//! comments and reports ([`markdown`]), XML for JUnit ([`xml`]). A leaf: it knows text,
//! not the pipeline.

pub mod markdown;
pub mod xml;

/// Whether `c` is a bidirectional formatting character: an embedding, override or
/// isolate (U+202A–U+202E, U+2066–U+2069) or a mark (U+200E, U+200F, U+061C). Such a
/// character shows nothing; it reorders the text around it, so that text can display
/// otherwise than it reads ("Trojan Source"). Every output for people shows them as
/// something visible, as it does control characters.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}
