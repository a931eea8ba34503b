//! Running eval sets and judging the answers: [`plan`] selects what to run and runs it
//! ([`select`], [`run`]); the provider-neutral [`request`], the [`provider`]s, the
//! [`runner`] with its [`cache`] and [`progress`], [`assertions`] to judge each answer,
//! and the [`result`] with its figures, written by [`render`]. Beside
//! the runner, which schedules, are each provider's lane (limits and retries), the
//! tool-call loop (`conversation`) and the judging (`judge`).

pub mod assertions;
pub mod cache;
pub mod plan;
pub mod progress;
pub mod provider;
pub mod render;
pub mod request;
pub mod result;
pub mod runner;

mod conversation;
mod judge;
mod lane;

pub use plan::{RunOptions, Selected, Selection, run, select};
