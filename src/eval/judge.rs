//! Judging one sample: every assertion of the case on the conversation's answer, the
//! `llm-rubric` ones and GitHub Models' model-graded evaluators by the judge model, and
//! the outcome. A sample that could not be judged is an error, never a pass.

use serde_json::Value;

use super::assertions::{self, Judgement, parse_json, short};
use super::conversation::{Conversation, MAX_TOOL_STEPS};
use super::request::{ChatRequest, Format, Params, Turn};
use super::result::{Judged, Outcome, Sample};
use super::runner::Engine;
use crate::artifact::assertion::{Check, ModelGraded};
use crate::artifact::github_models;
use crate::artifact::suite::Case;

/// What the judge is told; it must answer JSON so the verdict is read, not guessed.
const JUDGE_INSTRUCTIONS: &str = "You grade an AI assistant's answer against a rubric. \
Judge only what the rubric asks. Reply with JSON only: \
{\"pass\": true or false, \"reason\": \"one short sentence\"}.";

impl Engine {
    /// The sample `conversation` makes of `case`, judged.
    pub(super) async fn judge(&self, case: &Case, conversation: Conversation) -> Sample {
        let Conversation {
            answer,
            looped,
            input_tokens,
            tokens_estimated,
            requests,
            retries,
            source,
        } = conversation;
        let mut judged = Vec::new();
        for a in &case.assertions {
            let graded = match &a.check {
                Check::LlmRubric { rubric } => {
                    self.grade(rubric, &answer.text).await.map(|v| (v, None))
                }
                Check::ModelGraded(g) => self.choose(&a.name, g, case, &answer.text).await,
                _ => Ok((assertions::judge(a, &answer), None)),
            };
            let (verdict, score) = match graded {
                Ok(v) => v,
                Err(e) => {
                    return Sample {
                        requests,
                        retries,
                        ..Sample::error(format!("judging `{}`: {e}", a.name))
                    };
                }
            };
            judged.push(Judged {
                name: a.name.clone(),
                weight: a.weight,
                verdict,
                score,
            });
        }
        if looped {
            judged.push(Judged {
                name: "tool-loop".into(),
                weight: 1.0,
                score: None,
                verdict: Judgement::Fail {
                    reason: format!("tool-loop: still calling tools after {MAX_TOOL_STEPS} steps"),
                },
            });
        }
        // A definite fail fails the case; otherwise an assertion that could not be
        // judged leaves it undecided: an error, never a pass.
        let failed = judged
            .iter()
            .any(|j| matches!(j.verdict, Judgement::Fail { .. }));
        let unjudged: Vec<&str> = judged
            .iter()
            .filter_map(|j| match &j.verdict {
                Judgement::Unjudged { reason } => Some(reason.as_str()),
                _ => None,
            })
            .collect();
        let (outcome, error) = match (failed, unjudged.is_empty()) {
            (true, _) => (Outcome::Fail, None),
            (false, true) => (Outcome::Pass, None),
            (false, false) => (
                Outcome::Error,
                Some(format!("could not judge: {}", unjudged.join("; "))),
            ),
        };
        Sample {
            outcome,
            error,
            text: answer.text,
            refusal: answer.refusal,
            tool_calls: answer.tool_calls,
            assertions: judged,
            latency_ms: Some(answer.latency_ms),
            input_tokens,
            output_tokens: answer.output_tokens,
            tokens_estimated,
            cost_usd: answer.cost_usd,
            requests,
            retries,
            source,
        }
    }

    /// Grade `text` against `rubric` with the judge; unjudged when none is configured.
    async fn grade(&self, rubric: &str, text: &str) -> Result<Judgement, String> {
        let Some((lane, model)) = &self.judge else {
            return Ok(Judgement::Unjudged {
                reason: "llm-rubric: no judge configured (`judge:` in the config)".into(),
            });
        };
        let request = ChatRequest {
            model: model.clone(),
            params: Params {
                temperature: Some(0.0),
                ..Params::default()
            },
            format: Format::JsonObject,
            messages: vec![
                Turn::System {
                    content: JUDGE_INSTRUCTIONS.into(),
                },
                Turn::User {
                    content: format!("Rubric:\n{rubric}\n\nAnswer:\n<<<\n{text}\n>>>"),
                },
            ],
            tools: Vec::new(),
        };
        let got = self
            .call(lane, &request, 0)
            .await
            .map_err(|e| format!("provider `{}`: {}", lane.name, e.0))?;
        let grade = parse_json(&got.completion.text);
        let pass = grade.as_ref().and_then(|g| g.get("pass")?.as_bool());
        let why = grade
            .as_ref()
            .and_then(|g| g.get("reason")?.as_str().map(str::to_string))
            .unwrap_or_default();
        Ok(match pass {
            Some(true) => Judgement::Pass,
            Some(false) => Judgement::Fail {
                reason: format!("llm-rubric: {}", short(&why, 120)),
            },
            None => Judgement::Unjudged {
                reason: format!(
                    "llm-rubric: the judge did not answer {{\"pass\": …}}: `{}`",
                    short(&got.completion.text, 80)
                ),
            },
        })
    }

    /// A GitHub Models model-graded evaluator (`name`), as gh models eval's
    /// `runLLMEvaluator` (`cmd/eval/eval.go`) runs it: its prompt with the row's
    /// variables and the trimmed answer as `{{completion}}` filled in, after its system
    /// prompt, to its `modelId` (mapped through `judge.models`); the first choice the
    /// judge's answer contains is its pick, and a score above 0 passes. Unjudged when no
    /// judge is configured. The judge is asked at temperature 0, for verdicts that
    /// repeat.
    async fn choose(
        &self,
        name: &str,
        graded: &ModelGraded,
        case: &Case,
        text: &str,
    ) -> Result<(Judgement, Option<f64>), String> {
        let Some((lane, judge_model)) = &self.judge else {
            return Ok((
                Judgement::Unjudged {
                    reason: format!(
                        "{name}: model-graded, and no judge is configured (`judge:` in the config)"
                    ),
                },
                None,
            ));
        };
        let model = match &graded.model_id {
            Some(id) => self
                .judge_models
                .get(id)
                .cloned()
                .unwrap_or_else(|| id.clone()),
            None => judge_model.clone(),
        };
        let mut vars = case.vars.clone();
        vars.insert("completion".into(), Value::String(text.trim().to_string()));
        let mut messages = Vec::new();
        if let Some(system) = &graded.system_prompt {
            messages.push(Turn::System {
                content: system.clone(),
            });
        }
        messages.push(Turn::User {
            content: github_models::substitute(&graded.prompt, &vars)?,
        });
        let request = ChatRequest {
            model,
            params: Params {
                temperature: Some(0.0),
                ..Params::default()
            },
            format: Format::Text,
            messages,
            tools: Vec::new(),
        };
        let got = self
            .call(lane, &request, 0)
            .await
            .map_err(|e| format!("provider `{}`: {}", lane.name, e.0))?;
        let said = &got.completion.text;
        Ok(match github_models::pick(&graded.choices, said) {
            Some(c) if c.score > 0.0 => (Judgement::Pass, Some(c.score)),
            Some(c) => (
                Judgement::Fail {
                    reason: format!(
                        "{name}: the judge chose `{}`, score {} (above 0 passes)",
                        short(&c.choice, 40),
                        c.score
                    ),
                },
                Some(c.score),
            ),
            None => (
                Judgement::Fail {
                    reason: format!(
                        "{name}: the judge answered `{}`, which is none of the choices ({})",
                        short(said, 80),
                        graded
                            .choices
                            .iter()
                            .map(|c| format!("`{}`", short(&c.choice, 20)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
                Some(0.0),
            ),
        })
    }
}
