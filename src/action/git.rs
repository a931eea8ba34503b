//! The checkout, through the git command line: what a ref names, and fetching what a
//! shallow clone lacks.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The commit id `rev` names in the checkout.
pub fn rev_parse(root: &Path, rev: &str) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--verify", "--quiet", "--end-of-options"])
        .arg(format!("{rev}^{{commit}}"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Make sure both commits and their merge-base are in the checkout. A shallow clone
/// (actions/checkout's default `fetch-depth: 1`) is deepened from `origin`; if that
/// cannot work, the error says what to change.
pub fn ensure_commits(root: &Path, base: &str, head: &str) -> Result<()> {
    let git = |args: &[&str]| -> Result<(bool, String)> {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .context("cannot run git: is it installed?")?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).trim().to_string()
                + &String::from_utf8_lossy(&out.stderr),
        ))
    };
    for rev in [base, head] {
        if rev.starts_with('-') {
            bail!("`{rev}` is not a git revision");
        }
    }
    let has = |rev: &str| -> Result<bool> {
        Ok(git(&["cat-file", "-e", &format!("{rev}^{{commit}}")])?.0)
    };
    for rev in [base, head] {
        if !has(rev)? {
            let (ok, out) = git(&["fetch", "--no-tags", "--quiet", "origin", rev])?;
            if !ok && !has(rev)? {
                bail!(
                    "commit {rev} is not in the checkout and fetching it failed: {}\nfix: check out with `fetch-depth: 0` (actions/checkout)",
                    out.trim()
                );
            }
        }
    }
    let shallow = git(&["rev-parse", "--is-shallow-repository"])?
        .1
        .starts_with("true");
    let mut deepen = 0;
    while !git(&["merge-base", base, head])?.0 {
        if !shallow || deepen >= 5 {
            let (ok, out) = if shallow {
                git(&["fetch", "--no-tags", "--quiet", "--unshallow", "origin"])?
            } else {
                (false, String::from("no common history"))
            };
            if ok && git(&["merge-base", base, head])?.0 {
                break;
            }
            bail!(
                "no merge-base of {base} and {head} in the checkout ({}); fix: check out with `fetch-depth: 0` (actions/checkout)",
                out.trim()
            );
        }
        deepen += 1;
        let (ok, out) = git(&[
            "fetch",
            "--no-tags",
            "--quiet",
            "--deepen=100",
            "origin",
            base,
            head,
        ])?;
        if !ok {
            bail!(
                "the checkout is shallow and deepening it failed: {}\nfix: check out with `fetch-depth: 0` (actions/checkout)",
                out.trim()
            );
        }
    }
    Ok(())
}
