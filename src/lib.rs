//! promptgate: prompt changes under release discipline.
//!
//! The tree follows the pipeline, and dependencies point one way, down it
//! (`tests/architecture.rs` fails on a cycle between top-level modules):
//!
//! | layer | modules |
//! | --- | --- |
//! | front ends | [`app`] (the command line: clap, dispatch, stdout, exit codes) and [`action`] (the GitHub Action). Nothing imports them. |
//! | release | [`rollout`] (staged canaries, freeze, rollback), [`learn`] (incidents into regression cases), through [`store`] (locked, atomic, audited writes) |
//! | on GitHub | [`approval`] (two roles by label, the status; pure), [`github`] (the REST client) |
//! | the gate | [`gate`] (both commits of a pull request, evaluated and judged into [`evidence`]) → [`report`] (markdown, JUnit) |
//! | judging | [`policy`] (the verdict) over [`compare`] (base vs head by segment, per-artifact evidence) |
//! | evaluating | [`eval`] (plan selection and running: providers, cache, retries, tool loop, assertions, results) |
//! | reading | [`changes`] (what a pull request changed), [`validate`], [`repo`] (a tree with its config), [`artifact`] (prompts, suites, assertions), [`format`] (YAML to typed models, located problems), [`source`] (working tree, git, memory), [`config`] |
//! | leaves | [`env`] (the one reader of the process environment), [`secret`], [`diag`], [`schemas`], [`markup`], [`status`], [`atomic`], [`read`], [`retry`] |
//!
//! The core takes plain request and option structs and returns values (evidence,
//! reports, decisions); only the front ends print them or turn them into exit codes.

pub mod action;
pub mod app;
pub mod approval;
pub mod artifact;
pub mod atomic;
pub mod changes;
pub mod compare;
pub mod config;
pub mod diag;
pub mod env;
pub mod eval;
pub mod evidence;
pub mod format;
pub mod gate;
pub mod github;
pub mod learn;
pub mod markup;
pub mod policy;
pub mod read;
pub mod repo;
pub mod report;
pub mod retry;
pub mod rollout;
pub mod schemas;
pub mod secret;
pub mod source;
pub mod status;
pub mod store;
pub mod validate;
