//! Judging one sample: every assertion of the case on the conversation's answer, the
//! `llm-rubric` ones by the judge model, and the outcome. A sample that could not be
//! judged is an error, never a pass.

use super::assertions::{self, Judgement, parse_json, short};
use super::conversation::{Conversation, MAX_TOOL_STEPS};
use super::request::{ChatRequest, Format, Params, Turn};
use super::result::{Judged, Outcome, Sample};
use super::runner::Engine;
use crate::artifact::assertion::Check;
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
            let verdict = match &a.check {
                Check::LlmRubric { rubric } => match self.grade(rubric, &answer.text).await {
                    Ok(v) => v,
                    Err(e) => {
                        return Sample {
                            requests,
                            retries,
                            ..Sample::error(format!("judging `{}`: {e}", a.name))
                        };
                    }
                },
                _ => assertions::judge(a, &answer),
            };
            judged.push(Judged {
                name: a.name.clone(),
                weight: a.weight,
                verdict,
            });
        }
        if looped {
            judged.push(Judged {
                name: "tool-loop".into(),
                weight: 1.0,
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
}
