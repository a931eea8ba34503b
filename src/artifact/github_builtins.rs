//! GitHub's built-in model-graded evaluators (`uses: github/similarity`…), with
//! promptgate's own judge prompts on GitHub's scales.
//!
//! What follows gh-models (`cmd/eval/builtins.go`, run by `runPluginEvaluator` in
//! `cmd/eval/eval.go`): the five names, the data each reads from the test-data row
//! (`{{input}}`, `{{expected}}`, and the answer as `{{completion}}`), the judge model
//! `openai/gpt-4o`, a rating from 1 to 5 scored 0, 0.25, 0.5, 0.75 and 1, and the pass
//! rule (a score above 0: two stars or more). The prompts are written here: each asks
//! for the rating alone, so that the first choice the answer contains is the rating.

use super::assertion::{Choice, ModelGraded};

/// The built-ins, as `uses:` names them.
pub const NAMES: [&str; 5] = [
    "github/similarity",
    "github/coherence",
    "github/fluency",
    "github/relevance",
    "github/groundedness",
];

/// The model GitHub's built-ins ask, mapped through `judge.models` like any `modelId`.
pub const MODEL: &str = "openai/gpt-4o";

const SYSTEM: &str = "You rate one quality of an AI assistant's answer on a scale from 1 to 5, \
following the definition you are given. Reply with the rating alone: a single digit from 1 \
to 5, with no other text.";

const SIMILARITY: &str = "Rate how similar the ANSWER is in meaning to the REFERENCE answer \
to the QUESTION: the same facts and conclusions, whatever the wording.

5: says everything the reference says, and nothing that contradicts it
4: mostly the same, with a small omission or a minor difference
3: partly the same: some of the reference's points are missing or different
2: mostly different, with only a little in common
1: unrelated to the reference, or contradicting it

QUESTION: {{input}}
REFERENCE: {{expected}}
ANSWER: {{completion}}

Rating (1-5):";

const COHERENCE: &str = "Rate the coherence of the ANSWER to the QUESTION: whether its \
ideas follow in a logical order, its sentences connect, and a reader can follow its train \
of thought.

5: clear and well organised throughout, with smooth connections between ideas
4: logically organised and easy to follow, with small rough spots
3: on topic, but the order of ideas or the links between sentences are unclear in places
2: fragments and loosely related statements, hard to follow
1: incoherent: disconnected words or sentences with no logical thread

QUESTION: {{input}}
ANSWER: {{completion}}

Rating (1-5):";

const FLUENCY: &str = "Rate the fluency of the ANSWER as written language: grammar, choice \
of words, sentence construction and how easily it reads. Judge the language only, not \
whether the content is right.

5: flawless and natural, varied and precise
4: well written, with at most minor slips that do not hinder reading
3: understandable, with noticeable errors or awkward sentences
2: frequent errors and broken sentences; the meaning is only partly clear
1: barely readable

ANSWER: {{completion}}

Rating (1-5):";

const RELEVANCE: &str = "Rate how well the ANSWER addresses the QUESTION: whether it answers \
what was asked, correctly and completely, without drifting to other topics.

5: answers the question fully and accurately, with useful relevant detail
4: answers the question fully and accurately
3: answers the question only in part, leaving out something essential
2: attempts the question but gets it wrong
1: does not address the question at all

QUESTION: {{input}}
ANSWER: {{completion}}

Rating (1-5):";

const GROUNDEDNESS: &str = "Rate how well the ANSWER to the QUESTION is grounded in the \
CONTEXT: whether everything it states is supported by the context, and it uses what the \
context says to answer.

5: fully supported by the context, and complete
4: supported by the context, but leaves out some of what the context says on the question
3: answers, but states something the context does not support or contradicts
2: on the context's topic, but does not answer the question
1: unrelated to the context and the question

CONTEXT: {{expected}}
QUESTION: {{input}}
ANSWER: {{completion}}

Rating (1-5):";

/// The built-in `uses` names, or `None` for a name GitHub has no built-in for.
pub fn builtin(uses: &str) -> Option<ModelGraded> {
    let prompt = match uses {
        "github/similarity" => SIMILARITY,
        "github/coherence" => COHERENCE,
        "github/fluency" => FLUENCY,
        "github/relevance" => RELEVANCE,
        "github/groundedness" => GROUNDEDNESS,
        _ => return None,
    };
    Some(ModelGraded {
        model_id: Some(MODEL.to_string()),
        system_prompt: Some(SYSTEM.to_string()),
        prompt: prompt.to_string(),
        choices: ["1", "2", "3", "4", "5"]
            .into_iter()
            .zip([0.0, 0.25, 0.5, 0.75, 1.0])
            .map(|(choice, score)| Choice {
                choice: choice.to_string(),
                score,
            })
            .collect(),
        builtin: Some(uses.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_on_githubs_scale() {
        for name in NAMES {
            let b = builtin(name).unwrap_or_else(|| panic!("{name}"));
            let scale: Vec<(&str, f64)> = b
                .choices
                .iter()
                .map(|c| (c.choice.as_str(), c.score))
                .collect();
            assert_eq!(
                scale,
                [("1", 0.0), ("2", 0.25), ("3", 0.5), ("4", 0.75), ("5", 1.0)],
                "{name}"
            );
            assert!(b.prompt.contains("{{completion}}"), "{name}");
            assert_eq!(b.model_id.as_deref(), Some(MODEL));
        }
        // The data each reads, as GitHub's do.
        let reads = |name: &str, var: &str| {
            builtin(name).is_some_and(|b| b.prompt.contains(&format!("{{{{{var}}}}}")))
        };
        assert!(reads("github/similarity", "expected") && reads("github/similarity", "input"));
        assert!(reads("github/groundedness", "expected"));
        assert!(reads("github/relevance", "input") && !reads("github/relevance", "expected"));
        assert!(!reads("github/fluency", "input"));
        assert!(builtin("github/toxicity").is_none());
    }
}
