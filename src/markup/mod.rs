//! Making untrusted text inert in the formats promptgate writes: markdown for GitHub
//! comments and reports ([`markdown`]), XML for JUnit ([`xml`]). A leaf: it knows text,
//! not the pipeline.

pub mod markdown;
pub mod xml;
