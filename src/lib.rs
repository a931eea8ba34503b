//! promptgate: prompt changes under release discipline.
//!
//! The modules follow the pipeline: [`source`] and [`format`] read the repository,
//! [`artifact`] models prompts and their eval sets, [`changes`] finds what a pull request
//! changed, and [`validate`] checks a working tree.

pub mod action;
pub mod approval;
pub mod artifact;
pub mod changes;
pub mod cli;
pub mod compare;
pub mod config;
pub mod diag;
pub mod env;
pub mod eval;
pub mod evidence;
pub mod exit;
pub mod format;
pub mod gate;
pub mod github;
pub mod learn;
pub mod policy;
pub mod repo;
pub mod report;
pub mod retry;
pub mod rollout;
pub mod secret;
pub mod source;
pub mod store;
pub mod validate;
