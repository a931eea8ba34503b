//! The bad-input corpus, `tests/fixtures/bad/`: each directory there is one bad input
//! and the exact outcome promptgate must give for it (its README says how a case is
//! written). Every case runs the real binary on a temporary copy; none may panic, crash,
//! hang or take memory without bound, and a report built from model output must be
//! inert, whatever the answers held.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Repo, Server};
use nix::sys::resource::{UsageWho, getrusage};
use promptgate_stub::{Reply, StubConfig};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bad");
/// A case still running after this hangs.
const TIMEOUT: Duration = Duration::from_secs(120);
/// Peak memory any one run may reach: the ceiling docs/RELIABILITY.md documents.
const MAX_RSS_KIB: i64 = 512 << 10;
/// Address space each run gets: an allocation past it fails and aborts the process, so
/// memory a run does not bound shows as a crash rather than as a slow machine.
const ADDRESS_SPACE: u64 = 2 << 30;
/// What the stub answers a prompt containing `REFUSE`; anything else gets its last user
/// message back, so a case's variables are what "the model" says.
const REFUSAL: &str = "Sorry, I can only help with Acme orders.";

/// A case's `expected` file.
#[derive(Debug, Default)]
struct Expected {
    exit: i32,
    stdout: Option<String>,
    stdout_contains: Vec<String>,
    stderr: Option<String>,
}

/// `exit N`, then sections headed `== stdout ==`, `== stdout contains ==` (may repeat)
/// and `== stderr ==`, each holding the text up to the next header, verbatim.
fn parse_expected(text: &str) -> Result<Expected, String> {
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or_default().trim_end();
    let exit = first
        .strip_prefix("exit ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("the first line must be `exit N`, not `{first}`"))?;
    let mut expected = Expected {
        exit,
        ..Expected::default()
    };
    let mut section: Option<(String, String)> = None;
    let close = |section: Option<(String, String)>, e: &mut Expected| {
        if let Some((name, body)) = section {
            match name.as_str() {
                "stdout" => e.stdout = Some(body),
                "stdout contains" => e.stdout_contains.push(body),
                "stderr" => e.stderr = Some(body),
                other => return Err(format!("unknown section `== {other} ==`")),
            }
        }
        Ok(())
    };
    for line in lines {
        let header = line
            .trim_end()
            .strip_prefix("== ")
            .and_then(|l| l.strip_suffix(" =="));
        match (header, section.as_mut()) {
            (Some(name), _) => {
                close(section.take(), &mut expected)?;
                section = Some((name.to_string(), String::new()));
            }
            (None, Some((_, body))) => body.push_str(line),
            (None, None) if line.trim().is_empty() => {}
            (None, None) => return Err(format!("text outside a section: {line:?}")),
        }
    }
    close(section, &mut expected)?;
    Ok(expected)
}

/// Copy `from` into `to`, with `{stub}` in text files replaced by the stub's URL.
fn copy_tree(from: &Path, to: &Path, stub: &dyn Fn() -> String) -> std::io::Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_tree(&entry.path(), &target, stub)?;
            continue;
        }
        let bytes = std::fs::read(entry.path())?;
        let bytes = match String::from_utf8(bytes) {
            Ok(text) if text.contains("{stub}") => text.replace("{stub}", &stub()).into_bytes(),
            Ok(text) => text.into_bytes(),
            Err(e) => e.into_bytes(),
        };
        std::fs::write(target, bytes)?;
    }
    Ok(())
}

/// Inputs too big to commit, written at run time. Each line of `generate` is one of
///
/// - `pad PATH BYTES`: comment lines appended to PATH until it is BYTES long;
/// - `repeat PATH COUNT TEXT`: COUNT lines of TEXT appended to PATH, `{i}` in TEXT
///   replaced by the line's number (from 0);
/// - `line PATH COUNT TEXT`: one line of TEXT written COUNT times appended to PATH;
/// - `append PATH TEXT`: one line of TEXT appended to PATH.
fn generate(spec: &str, repo: &Path) -> Result<(), String> {
    use std::io::Write;
    for line in spec.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.splitn(4, ' ').collect();
        let open = |path: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(repo.join(path))
                .map(std::io::BufWriter::new)
                .map_err(|e| format!("{path}: {e}"))
        };
        let io = |e: std::io::Error| e.to_string();
        match fields.as_slice() {
            ["pad", path, bytes] => {
                let bytes: u64 = bytes.parse().map_err(|_| format!("bad size in `{line}`"))?;
                let size = std::fs::metadata(repo.join(path)).map_or(0, |m| m.len());
                let mut file = open(path)?;
                let filler = format!("#{}\n", " padding".repeat(12));
                let mut left = bytes.saturating_sub(size);
                while left > 0 {
                    let n = left.min(filler.len() as u64) as usize;
                    let chunk = if n == filler.len() {
                        filler.clone()
                    } else {
                        format!("{}\n", "#".repeat(n - 1))
                    };
                    file.write_all(chunk.as_bytes()).map_err(io)?;
                    left -= n as u64;
                }
                file.flush().map_err(io)?;
            }
            ["repeat", path, count, text] => {
                let count: usize = count
                    .parse()
                    .map_err(|_| format!("bad count in `{line}`"))?;
                let mut file = open(path)?;
                for i in 0..count {
                    writeln!(file, "{}", text.replace("{i}", &i.to_string())).map_err(io)?;
                }
                file.flush().map_err(io)?;
            }
            ["line", path, count, text] => {
                let count: usize = count
                    .parse()
                    .map_err(|_| format!("bad count in `{line}`"))?;
                let mut file = open(path)?;
                for _ in 0..count {
                    file.write_all(text.as_bytes()).map_err(io)?;
                }
                writeln!(file).map_err(io)?;
                file.flush().map_err(io)?;
            }
            ["append", path, rest @ ..] => {
                let mut file = open(path)?;
                writeln!(file, "{}", rest.join(" ")).map_err(io)?;
                file.flush().map_err(io)?;
            }
            _ => return Err(format!("unknown generator line `{line}`")),
        }
    }
    Ok(())
}

/// `symlinks`: one `LINK -> TARGET` a line, LINK inside the repository.
fn make_symlinks(spec: &str, repo: &Path) -> Result<(), String> {
    for line in spec.lines().filter(|l| !l.trim().is_empty()) {
        let (link, target) = line
            .split_once(" -> ")
            .ok_or_else(|| format!("not `LINK -> TARGET`: {line}"))?;
        let link = repo.join(link);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::os::unix::fs::symlink(target, &link).map_err(|e| format!("{line}: {e}"))?;
    }
    Ok(())
}

/// `special`: one `fifo PATH` or `dir PATH` a line, made in the repository after the
/// symlinks: what git cannot commit (a named pipe, an empty directory).
fn make_special(spec: &str, repo: &Path) -> Result<(), String> {
    for line in spec.lines().filter(|l| !l.trim().is_empty()) {
        let (kind, path) = line
            .split_once(' ')
            .ok_or_else(|| format!("not `KIND PATH`: {line}"))?;
        let path = repo.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        match kind {
            "fifo" => {
                let made = std::process::Command::new("mkfifo").arg(&path).status();
                if !made.is_ok_and(|s| s.success()) {
                    return Err(format!("{line}: mkfifo failed"));
                }
            }
            "dir" => std::fs::create_dir(&path).map_err(|e| format!("{line}: {e}"))?,
            _ => return Err(format!("unknown special file `{line}`")),
        }
    }
    Ok(())
}

/// What every report must keep, whatever the model said: no mention that pings, no
/// HTML but the template's, every block closed by its own fence, no terminal escapes,
/// and no HTML comment but the approvals markers, so the comment's marker and hidden
/// record cannot be forged.
fn check_inert(report: &str) -> Result<(), String> {
    if let Some(c) = report.chars().find(|&c| c.is_control() && c != '\n') {
        return Err(format!("the report holds the control character {c:?}"));
    }
    let comments = report.matches("<!--").count();
    if comments != 2 {
        return Err(format!(
            "{comments} HTML comments; only the approvals markers may be there"
        ));
    }
    let prose = common::outside_code(report)?;
    let mut rest = prose.as_str();
    while let Some(i) = rest.find('<') {
        let tag = &rest[i..];
        // `<` before a letter, `/`, `!` or `?` opens a tag; `p < 0.05` does not.
        let opens = tag[1..].starts_with(|c: char| c.is_ascii_alphabetic() || "/!?".contains(c));
        if opens && !common::TEMPLATE_HTML.iter().any(|t| tag.starts_with(t)) {
            return Err(format!(
                "raw HTML outside code: {:?}",
                tag.chars().take(40).collect::<String>()
            ));
        }
        rest = &rest[i + 1..];
    }
    if prose.matches("<details>").count() != prose.matches("</details>").count() {
        return Err("`<details>` and `</details>` do not pair up".into());
    }
    let mut rest = prose.as_str();
    while let Some(i) = rest.find('@') {
        let after = &rest[i + 1..];
        if after.starts_with(|c: char| c.is_alphanumeric()) {
            return Err(format!(
                "a live mention: {:?}",
                rest[i..].chars().take(40).collect::<String>()
            ));
        }
        rest = after;
    }
    Ok(())
}

/// Run the case in `dir`; `Err` says how the outcome differs from the expected one.
fn run_case(dir: &Path, stub: &dyn Fn() -> String) -> Result<(), String> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
    let expected = parse_expected(&read("expected").ok_or("no `expected` file")?)?;
    let args_line = read("args").ok_or("no `args` file")?;
    let args: Vec<&str> = args_line.split_whitespace().collect();

    let mut repo = Repo::nested();
    let io = |e: std::io::Error| e.to_string();
    if dir.join("repo").is_dir() {
        copy_tree(&dir.join("repo"), repo.path(), stub).map_err(io)?;
    }
    if dir.join("outside").is_dir() {
        let outside = repo.outside().join("outside");
        std::fs::create_dir(&outside).map_err(io)?;
        copy_tree(&dir.join("outside"), &outside, stub).map_err(io)?;
    }
    if let Some(spec) = read("symlinks") {
        make_symlinks(&spec, repo.path())?;
    }
    if let Some(spec) = read("special") {
        make_special(&spec, repo.path())?;
    }
    if let Some(spec) = read("generate") {
        generate(&spec, repo.path())?;
    }
    repo.commit("base");
    if dir.join("pr").is_dir() {
        repo.branch("pr");
        copy_tree(&dir.join("pr"), repo.path(), stub).map_err(io)?;
        if let Some(spec) = read("generate-pr") {
            generate(&spec, repo.path())?;
        }
        repo.commit("pull request");
    }

    let started = Instant::now();
    let out = common::promptgate_within(ADDRESS_SPACE)
        .current_dir(repo.path())
        .arg("-C")
        .arg(repo.path())
        .env("PROMPTGATE_CACHE_DIR", repo.outside().join("cache"))
        .args(&args)
        .timeout(TIMEOUT)
        .output()
        .map_err(io)?;
    let elapsed = started.elapsed();
    let (code, stdout, stderr) = common::outcome(out);
    // Paths promptgate names in full (the default runtime config) as written in `expected`.
    let here = repo.path().to_string_lossy().into_owned();
    let (stdout, stderr) = (
        stdout.replace(&here, "{repo}"),
        stderr.replace(&here, "{repo}"),
    );

    let mut problems = Vec::new();
    if code == -1 {
        problems.push(format!(
            "killed by a signal or the {TIMEOUT:?} timeout after {elapsed:.1?}"
        ));
    }
    if code == 101 || stderr.contains("panicked at") {
        problems.push("panicked".to_string());
    }
    if code != expected.exit {
        problems.push(format!("exit {code}, expected {}", expected.exit));
    }
    if let Some(want) = &expected.stdout
        && &stdout != want
    {
        problems.push(format!("stdout differs; expected:\n{want}"));
    }
    for fragment in &expected.stdout_contains {
        if !stdout.contains(fragment.as_str()) {
            problems.push(format!("stdout lacks:\n{fragment}"));
        }
    }
    if let Some(want) = &expected.stderr
        && &stderr != want
    {
        problems.push(format!("stderr differs; expected:\n{want}"));
    }
    if args.first() == Some(&"gate")
        && let Err(e) = check_inert(&stdout)
    {
        problems.push(format!("the report is not inert: {e}"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{}\n--- stdout:\n{}\n--- stderr:\n{}",
            problems.join("\n"),
            cut(&stdout),
            cut(&stderr)
        ))
    }
}

/// Output as shown in a failure: long outputs by their start and end.
fn cut(text: &str) -> String {
    const KEEP: usize = 4000;
    if text.len() <= 2 * KEEP {
        return text.to_string();
    }
    let start = text.char_indices().nth(KEEP).map_or(0, |(i, _)| i);
    let end = text
        .char_indices()
        .rev()
        .nth(KEEP)
        .map_or(text.len(), |(i, _)| i);
    format!(
        "{}\n[… {} bytes …]\n{}",
        &text[..start],
        end - start,
        &text[end..]
    )
}

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("the corpus directory")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// Peak memory of the largest child process waited for so far, in KiB.
fn children_peak_kib() -> i64 {
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0, |u| u.max_rss())
}

#[test]
fn every_bad_input_gives_its_expected_outcome() {
    let server: std::sync::OnceLock<Server> = std::sync::OnceLock::new();
    let stub = || {
        server
            .get_or_init(|| {
                Server::start(StubConfig {
                    rules: vec![common::rule("REFUSE", Reply::Text(REFUSAL.into()))],
                    default_reply: Reply::Echo,
                    ..StubConfig::default()
                })
            })
            .stub
            .base_url()
    };
    let cases = cases();
    assert!(cases.len() >= 20, "the corpus is missing: {CORPUS}");
    let mut failures = Vec::new();
    // The peak so far and the case that reached it: runs go one after the other, so a
    // rise of the children's peak is the last run's.
    let mut peak = (0, String::new());
    for dir in &cases {
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let mut result = run_case(dir, &stub);
        let kib = children_peak_kib();
        if kib > peak.0 {
            peak = (kib, name.to_string());
            if kib > MAX_RSS_KIB {
                result = result.and(Err(format!("the run took {} MiB of memory", kib >> 10)));
            }
        }
        if let Err(e) = result {
            failures.push(format!("=== {name}: {e}"));
        }
    }
    eprintln!("peak memory of a run: {} MiB ({})", peak.0 >> 10, peak.1);
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_report_checks_catch_what_they_look_for() {
    let ok = "## r, p < 0.05\n\n<details><summary>x</summary>\n\n````text\n@team <img>\n```\n````\n\n</details>\n<!-- promptgate:approvals -->\n<!-- /promptgate:approvals -->\n`@x`\n";
    assert_eq!(check_inert(ok), Ok(()));
    let broken = [
        (ok.replace("`@x`", "@x"), "a live mention: \"@x\\n\""),
        (
            ok.replace("`@x`", "<img src=x>"),
            "raw HTML outside code: \"<img src=x>\\n\"",
        ),
        (
            ok.replace("\n````\n", "\n"),
            "a `````` block is never closed",
        ),
        (
            ok.replace("@team", "\u{1b}[2J"),
            "the report holds the control character '\\u{1b}'",
        ),
        (
            ok.replace("`@x`", "&lt;<!-- promptgate:report -->"),
            "3 HTML comments; only the approvals markers may be there",
        ),
        (
            ok.replace("</details>", ""),
            "`<details>` and `</details>` do not pair up",
        ),
    ];
    for (report, problem) in broken {
        assert_eq!(check_inert(&report), Err(problem.to_string()), "{report}");
    }
}

#[test]
fn expected_files_parse_into_their_sections() {
    let e = parse_expected("exit 3\n== stdout ==\na\n\nb\n== stdout contains ==\nx\n== stdout contains ==\ny\n== stderr ==\n")
        .expect("parses");
    assert_eq!(e.exit, 3);
    assert_eq!(e.stdout.as_deref(), Some("a\n\nb\n"));
    assert_eq!(
        e.stdout_contains,
        vec!["x\n".to_string(), "y\n".to_string()]
    );
    assert_eq!(e.stderr.as_deref(), Some(""));
    assert!(parse_expected("exit x\n").is_err());
    assert!(parse_expected("exit 0\nstray\n").is_err());
    assert!(parse_expected("exit 0\n== stdin ==\n").is_err());
}
