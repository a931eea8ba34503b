//! Running eval sets and judging the answers. So far: judging one answer against one
//! assertion ([`assertions`]); providers and the runner come next.

pub mod assertions;
