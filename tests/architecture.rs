//! The shape of the crate, enforced: no import cycles between top-level modules, and
//! only the front ends (the command layer `src/app/`, the action `src/action/`, and
//! `src/main.rs`) name clap, exit codes, stdout or the terminal. Reads the sources as
//! text: `crate::NAME` paths (also inside `use crate::{…}` groups) outside comments and
//! outside `#[cfg(test)]` modules, where a test may reach up the pipeline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What only the front ends may name, and why each is on the list.
const FRONT_END_ONLY: &[(&str, &str)] = &[
    ("clap", "argument parsing"),
    ("crate::app", "the command layer"),
    ("crate::action", "the action front end"),
    ("stdout", "standard output"),
    ("println!", "standard output"),
    ("print!", "standard output"),
    ("is_terminal", "terminal detection"),
    ("IsTerminal", "terminal detection"),
    ("ExitCode", "exit codes"),
    ("process::exit", "exit codes"),
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its path relative to `src/`.
fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source is UTF-8");
            let rel = path.strip_prefix(src()).expect("under src");
            out.push((rel.to_string_lossy().replace('\\', "/"), text));
        }
    }
}

/// The code of a file: comments dropped, `#[cfg(test)]` modules cut off (by the house
/// convention they close the file).
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|line| match line.trim_start().starts_with("//") {
            true => "",
            false => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level module a file belongs to (`None` for the crate root and `main.rs`).
fn module_of(rel: &str) -> Option<String> {
    let first = rel.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The top-level modules `code` names through `crate::`.
fn uses(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.insert(ident(rest));
            continue;
        };
        // `use crate::{a::{b, c}, d}`: the first name of each item at the outer level.
        let mut depth = 0;
        let mut item_start = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    found.insert(ident(&group[item_start..i]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    found.insert(ident(&group[item_start..i]));
                    item_start = i + 1;
                }
                _ => {}
            }
        }
    }
    found.remove("");
    found
}

/// The module graph: each top-level module to the others it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let modules: BTreeSet<String> = files.iter().filter_map(|(r, _)| module_of(r)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in &files {
        let Some(from) = module_of(rel) else { continue };
        let targets = graph.entry(from.clone()).or_default();
        for to in uses(&code(text)) {
            if to != from && modules.contains(&to) {
                targets.insert(to);
            }
        }
    }
    graph
}

/// Strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let low = self.low[v].min(self.low[w]);
                    self.low.insert(v, low);
                } else if self.on_stack.contains(w) {
                    let low = self.low[v].min(self.index[w]);
                    self.low.insert(v, low);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

#[test]
fn no_import_cycles_between_top_level_modules() {
    let graph = graph();
    assert!(graph.len() > 10, "the walk found the modules: {graph:?}");
    let found = cycles(&graph);
    let edges = |c: &Vec<String>| {
        c.iter()
            .flat_map(|from| {
                graph[from]
                    .iter()
                    .filter(|to| c.contains(to))
                    .map(move |to| format!("{from} -> {to}"))
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    assert!(
        found.is_empty(),
        "import cycles between top-level modules (a type two layers share belongs in the lower one, or in a leaf module):\n{}",
        found
            .iter()
            .map(|c| format!("  {}: {}", c.join(", "), edges(c)))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Whether `code` has `name` as a whole word (`crate::app` is not in `crate::approval`,
/// `println!` not in `eprintln!`).
fn names(code: &str, name: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + name.len()..].chars().next();
        let starts = !name.starts_with(word) || !before.is_some_and(word);
        let ends = !name.ends_with(word) || !after.is_some_and(word);
        starts && ends
    })
}

#[test]
fn only_the_front_ends_name_clap_exit_codes_stdout_or_the_terminal() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut offences = Vec::new();
    for (rel, text) in &files {
        let front_end = rel == "main.rs" || rel.starts_with("app/") || rel == "app.rs";
        let action = rel.starts_with("action/") || rel == "action.rs";
        let code = code(text);
        for (name, what) in FRONT_END_ONLY {
            // The action is a front end, but the command layer is not its to import.
            let allowed = front_end || (action && *name != "crate::app");
            if !allowed && names(&code, name) {
                offences.push(format!("src/{rel} names `{name}` ({what})"));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "only src/app (the command layer), src/action and src/main.rs may do this; return a value and let the front end print it or map it to an exit code:\n  {}",
        offences.join("\n  ")
    );
}

/// Ways to read a whole file that skip the limit and the file-type check.
const WHOLE_FILE_READS: &[&str] = &[
    "fs::read(",
    "fs::read_to_string(",
    "read_to_end(",
    "read_to_string(",
];

/// Whole files are read only by `src/read.rs`, the one reader that refuses what is not a
/// regular file (a named pipe would block) and stops at a size limit.
#[test]
fn whole_files_are_read_only_through_the_bounded_reader() {
    let mut files = Vec::new();
    sources(&src(), &mut files);
    let mut offences = Vec::new();
    for (rel, text) in &files {
        let code = code(text);
        for call in WHOLE_FILE_READS {
            if rel != "read.rs" && code.contains(call) {
                offences.push(format!("src/{rel} calls `{call}…)`"));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "read files with crate::read::file (or crate::format::file_text), which has a size limit and refuses pipes and devices:\n  {}",
        offences.join("\n  ")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    let sample = "use crate::{eval::{self, run}, policy};\n// use crate::app;\nfn f() { crate::report::x(); }\n#[cfg(test)]\nmod tests { use crate::gate; }\n";
    let found = uses(&code(sample));
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["eval", "policy", "report"]
    );
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    assert!(names("use crate::app::Exit;", "crate::app"));
    assert!(!names("use crate::approval;", "crate::app"));
    assert!(names("println!(\"x\")", "println!"));
    assert!(!names("eprintln!(\"x\")", "println!"));
    assert!(names("std::io::stdout().lock()", "stdout"));
}
