//! `promptgate validate` reports every problem of a repository in one run.

mod common;

use common::{Repo, seed_support};

#[test]
fn a_valid_repository_passes() {
    let repo = Repo::new();
    seed_support(&repo);
    let (code, out, err) = repo.run(&["validate"]);
    assert_eq!(
        out,
        "prompts/support/refund.prompt.yaml:17:8: warning: 2 segment(s) too small to rule out a 5-point drop (`gate.max_segment_drop`), so changes read inconclusive there: `hard-negative/adversarial` (1 case(s): only 95+ points), `intent/refund` (1 case(s): only 95+ points); 59 cases a segment would rule it out\n\
              checked 1 artifact(s), 1 suite(s), 2 case(s): 0 error(s), 1 warning(s)\n",
        "{err}"
    );
    assert_eq!(code, 0);
}

/// One repository with a problem of every kind; all of them come out of one run.
#[test]
fn reports_all_problems_with_positions() {
    let repo = Repo::new();
    seed_support(&repo);
    repo.write(".promptgate.yaml", "providers:\n  local: {kind: openai, base_url: 'http://127.0.0.1:8080/v1'}\ngate:\n  max_segment_drp: 0.1\n");
    repo.write(
        "prompts/typo.prompt.yaml",
        "id: typo\nversion: 1\nmodel: {provider: opneai, name: gpt-4o-mini, temprature: 0.2}\nmessages:\n  - {role: system, content: 'Hi {{ name '}\n",
    );
    repo.write(
        "prompts/refs.prompt.yaml",
        "id: refs\nversion: 1\nmodel: {provider: local, name: m}\nresponse_format: {json_schema: /etc/schema.json}\nmessages: [{role: user, content: hi}]\ntools: {definitions: ../tools/missing.json}\nevals: [../../../outside.eval.yaml]\n",
    );
    repo.write(
        "prompts/dup-a.prompt.yaml",
        "id: same\nversion: 1\nmodel: {provider: local, name: m}\nmessages: [{role: user, content: '{{ q }}'}]\nevals: [../evals/dup.eval.yaml]\n",
    );
    repo.write(
        "prompts/dup-b.prompt.yaml",
        "id: same\nversion: one\nmodel: {provider: local, name: m, max_tokens: many}\nmessages: {role: user}\n",
    );
    repo.write(
        "evals/dup.eval.yaml",
        "cases:\n  - id: c1\n    vars: {q: hello}\n    assert:\n      - {type: contians, value: x}\n      - {type: max-words, value: ten}\n  - id: c1\n    vars: {q: again}\n  - id: c2\n    vars: {other: 1}\n    assert: [{type: tool-called, value: lookup}]\ncases_file: dup.cases.jsonl\n",
    );
    repo.write(
        "evals/dup.cases.jsonl",
        "{\"id\": \"j1\", \"vars\": {\"q\": 1}}\n{\"id\": \"j2\", \"segmnts\": [\"a\"]}\nnot json\n\n{\"id\": \"c2\", \"vars\": {\"q\": 2}}\n",
    );
    repo.write(
        "prompts/broken.prompt.yaml",
        "id: broken\nversion: 1\nmessages: [unclosed\n",
    );
    #[cfg(unix)]
    {
        let outside = tempfile::tempdir().expect("tmp");
        std::fs::write(outside.path().join("t.json"), "[]").expect("write");
        std::os::unix::fs::symlink(
            outside.path().join("t.json"),
            repo.path().join("tools/out.json"),
        )
        .expect("symlink");
        repo.write(
            "prompts/link.prompt.yaml",
            "id: link\nversion: 1\nmodel: {provider: local, name: m}\nmessages: [{role: user, content: hi}]\ntools: {definitions: ../tools/out.json}\n",
        );
    }
    let (code, out, err) = repo.run(&["validate"]);
    assert_eq!(code, 3, "{err}");
    let out = out
        .lines()
        .map(|l| {
            // The symlink target is a temporary path.
            match l.find("(to `") {
                Some(i) => format!("{}(to `<outside>`)", &l[..i]),
                None => l.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(out);
}

#[test]
fn json_output_lists_problems_with_severity() {
    let repo = Repo::new();
    repo.write(
        "prompts/a.prompt.yaml",
        "version: 1\nmodel: {provider: openai, name: gpt-4o-mini}\nmessages: [{role: user, content: hi}]\n",
    );
    let (code, out, _) = repo.run(&["validate", "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["artifacts"], 1);
    assert_eq!(v["problems"][0]["severity"], "warning");
    assert_eq!(v["problems"][0]["file"], "prompts/a.prompt.yaml");
    assert_eq!(
        v["problems"][0]["message"],
        "no eval cases: the gate cannot tell whether a change to this artifact regresses"
    );
}

#[test]
fn github_models_files_are_artifacts_with_their_test_data() {
    let repo = Repo::new();
    repo.write(
        ".github/prompts/summarize.prompt.yml",
        r#"name: Text Summarizer
description: Summarizes input text concisely
model: openai/gpt-4o-mini
modelParameters:
  temperature: 0.5
  maxTokens: 200
messages:
  - role: system
    content: You are a text summarizer.
  - role: user
    content: |
      Summarize, beginning with "Summary -":
      {{input}}
testData:
  - input: The fox jumped over the dog.
    expected: Summary - A fox jumped.
  - input: Rain today.
    expected: Summary - Rain.
evaluators:
  - name: starts right
    string:
      startsWith: 'Summary -'
  - name: similar
    uses: github/similarity
"#,
    );
    let (code, out, _) = repo.run(&["validate"]);
    assert_eq!(
        out,
        ".github/prompts/summarize.prompt.yml:1:1: warning: 1 segment(s) too small to rule out a 5-point drop (`gate.max_segment_drop`), so changes read inconclusive there: `all` (2 case(s): only 78+ points); 59 cases a segment would rule it out\n\
         .github/prompts/summarize.prompt.yml:23:5: warning: evaluator `similar` is model-graded and no `judge:` is configured: its cases cannot be judged (errors, never passes)\n\
         checked 1 artifact(s), 0 suite(s), 2 case(s): 0 error(s), 2 warning(s)\n"
    );
    assert_eq!(code, 0);

    // GitHub ignores fields it does not read: so does promptgate, saying where they are.
    repo.write(
        ".github/prompts/summarize.prompt.yml",
        "name: x\nmodel: openai/gpt-4o-mini\nmodelParameters: {temprature: 1}\nmessages: [{role: user, content: '{{input}}'}]\ntestData: [{input: a}]\nevaluators: [{name: e, string: {contains: a}}]\n",
    );
    let (code, out, _) = repo.run(&["validate"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(".github/prompts/summarize.prompt.yml:3:19: warning: unknown field `temprature` is ignored, as GitHub Models ignores it, did you mean `temperature`?\n"),
        "{out}"
    );
}

/// The corpus in `tests/fixtures/github-models`: each file alone in a repository, its
/// `validate` output and exit code as its `.expected` file says.
#[test]
fn github_models_corpus_loads_as_expected() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github-models");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("the corpus")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".prompt.yml") || n.ends_with(".prompt.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "{files:?}");
    for name in files {
        let text = std::fs::read_to_string(dir.join(&name)).expect("readable");
        let stem = name.split(".prompt.").next().unwrap_or(&name);
        let expected = std::fs::read_to_string(dir.join(format!("{stem}.expected")))
            .unwrap_or_else(|e| panic!("{stem}.expected: {e}"));
        let repo = Repo::new();
        repo.write(&format!(".github/prompts/{name}"), &text);
        let (code, out, _) = repo.run(&["validate"]);
        assert_eq!(format!("exit {code}\n{out}"), expected, "{name}");
    }
}

#[test]
fn every_bad_case_and_every_bad_reference_is_reported() {
    let repo = Repo::new();
    seed_support(&repo);
    repo.write(
        "evals/refund.eval.yaml",
        "cases:\n  - {id: c1, segments: hard-negative, vars: {question: q, company: A}, assert: [{type: max-words, value: lots}]}\n  - {id: c2, vars: {question: q, company: A}, assert: [{type: contians, value: x}]}\n  - {id: c3, vars: {question: q, company: A}}\n  - {id: c3, vars: {question: q, company: A}}\ncases_file: data/cases.jsonl\n",
    );
    repo.write("evals/data/schemas/x.json", "{\"type\": \"object\"}");
    repo.write(
        "evals/data/cases.jsonl",
        "{\"id\": \"j1\", \"vars\": {\"question\": \"q\", \"company\": \"A\"}, \"assert\": [{\"type\": \"json-schema\", \"value\": \"schemas/x.json\"}]}\n\
         {\"id\": \"j2\", \"segmnts\": [], \"assert\": [{\"type\": \"json-schema\", \"value\": \"schemas/y.json\"}, {\"type\": \"refusal\", \"valu\": 1}]}\n",
    );
    repo.write(
        "prompts/other.prompt.yaml",
        "version: 1\nmodel: {provider: openai, name: m, temprature: 0.1}\nmessages: [{role: user, content: hi}]\ntools: {definitions: ../../outside.json}\nevals: [missing.eval.yaml]\n",
    );
    let (code, out, _) = repo.run(&["validate"]);
    assert_eq!(code, 3);
    assert_eq!(
        out,
        "evals/data/cases.jsonl:2:1: `json-schema` `schemas/y.json`: file not found\n\
         evals/data/cases.jsonl:2:1: unknown field `segmnts`, did you mean `segments`?\n\
         evals/data/cases.jsonl:2:1: unknown field `valu`, did you mean `value`?\n\
         evals/refund.eval.yaml:2:24: `segments` must be a list, found `hard-negative`\n\
         evals/refund.eval.yaml:2:81: `max-words` needs a whole number ≥ 0 as `value`\n\
         evals/refund.eval.yaml:3:56: unknown assertion type `contians`, did you mean `contains`?\n\
         evals/refund.eval.yaml:5:5: duplicate case id `c3` (first at evals/refund.eval.yaml:4)\n\
         prompts/other.prompt.yaml:2:36: unknown field `temprature`, did you mean `temperature`?\n\
         prompts/other.prompt.yaml:4:22: `tools.definitions`: `../../outside.json` leads outside the repository\n\
         prompts/other.prompt.yaml:5:9: `evals` `missing.eval.yaml`: file not found\n\
         prompts/support/refund.prompt.yaml:17:8: warning: 1 segment(s) too small to rule out a 5-point drop (`gate.max_segment_drop`), so changes read inconclusive there: `all` (2 case(s): only 78+ points); 59 cases a segment would rule it out\n\
         checked 2 artifact(s), 1 suite(s), 2 case(s): 10 error(s), 1 warning(s)\n"
    );
}

#[test]
fn templates_that_fail_only_when_rendered_are_reported() {
    let repo = Repo::new();
    seed_support(&repo);
    let art = "prompts/support/refund.prompt.yaml";
    let text = repo.read(art);
    repo.write(
        art,
        &text.replace("{{ question }}", "{{ question | upperr }}"),
    );
    let (code, out, _) = repo.run(&["validate"]);
    assert_eq!(code, 3);
    assert_eq!(
        out,
        "prompts/support/refund.prompt.yaml:12:27: `messages[1].content` does not render for case `refund-late-delivery` (evals/refund.eval.yaml:6) (and 1 more cases): filter upperr is unknown (template line 1)\n\
         prompts/support/refund.prompt.yaml:17:8: warning: 2 segment(s) too small to rule out a 5-point drop (`gate.max_segment_drop`), so changes read inconclusive there: `hard-negative/adversarial` (1 case(s): only 95+ points), `intent/refund` (1 case(s): only 95+ points); 59 cases a segment would rule it out\n\
         checked 1 artifact(s), 1 suite(s), 2 case(s): 1 error(s), 1 warning(s)\n"
    );
}
