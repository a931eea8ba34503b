//! A request reduced to what the stub's answer depends on, whichever API it
//! came through, and the answer worked out from it. Pure: no I/O.

use serde_json::{Value, json};

use crate::{Fault, KeyEcho, Reply, StubConfig, UsageMode};

/// What `openai::parse` and `anthropic::parse` extract from a valid request.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Conversation {
    pub model: String,
    /// Every message's text, in order: system prompt, user and assistant
    /// text, tool results.
    pub texts: Vec<String>,
    /// The text of the last user message, tool results excluded.
    pub last_user_text: String,
    pub ends_with_tool_result: bool,
    /// The request's `tools` array, when it has a non-empty one.
    pub tools: Option<Value>,
    /// The API key the request carried, for [`Reply::EchoKey`].
    pub key: Option<String>,
}

/// A request the real API would reject with 400.
#[derive(Debug, PartialEq)]
pub(crate) struct Invalid {
    pub message: String,
    /// The offending field, as OpenAI names it in `error.param`.
    pub param: Option<String>,
    /// OpenAI's `error.code`.
    pub code: Option<&'static str>,
}

impl Invalid {
    pub fn new(message: impl Into<String>) -> Self {
        Invalid {
            message: message.into(),
            param: None,
            code: None,
        }
    }

    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }
}

/// What the assistant says, once rules and the request's tools are applied.
#[derive(Debug, PartialEq)]
pub(crate) enum Answer {
    Text(String),
    /// Text in several blocks (Anthropic) or content parts (OpenAI).
    Parts(Vec<String>),
    ToolCalls(Vec<(String, Value)>),
    Nothing,
    Refusal(Option<String>),
}

/// The answer's token counts, `None` when usage is omitted.
#[derive(Debug, PartialEq)]
pub(crate) struct Usage {
    pub input: u64,
    pub output: u64,
}

/// What a valid request gets: an answer, and the fault of the rule that
/// chose it, if any (a fault that slows or cuts the answer still needs it).
pub(crate) struct Decision {
    pub answer: Answer,
    pub usage: Option<Usage>,
    pub fault: Option<Fault>,
    /// Text to write `\u`-escaped wherever it appears in the JSON body.
    pub escape: Option<String>,
}

pub(crate) fn decide(config: &StubConfig, conversation: &Conversation) -> Decision {
    let rule = config
        .rules
        .iter()
        .find(|rule| matches(&rule.when, conversation));
    let reply = rule.map_or(&config.default_reply, |rule| &rule.reply);
    let answer = answer(reply, conversation);
    let usage = usage(&config.usage, conversation, &answer);
    let escape = match reply {
        Reply::EchoKey(KeyEcho::Escaped) => conversation.key.clone(),
        _ => None,
    };
    Decision {
        answer,
        usage,
        fault: rule.and_then(|rule| rule.fault.clone()),
        escape,
    }
}

fn matches(when: &crate::Match, conversation: &Conversation) -> bool {
    let contains = when.contains.as_ref().is_none_or(|needle| {
        conversation
            .texts
            .iter()
            .any(|text| text.contains(needle.as_str()))
    });
    let after_tool_result = when
        .after_tool_result
        .is_none_or(|wanted| wanted == conversation.ends_with_tool_result);
    contains && after_tool_result
}

/// The next draw of a process-wide sequence from a fixed seed: answers vary from
/// request to request like a sampling model's, the same way in every run.
fn draw(n: usize) -> usize {
    use std::sync::{Mutex, OnceLock};
    static RNG: OnceLock<Mutex<fastrand::Rng>> = OnceLock::new();
    let rng = RNG.get_or_init(|| Mutex::new(fastrand::Rng::with_seed(0x5eed)));
    rng.lock().map_or(0, |mut r| r.usize(..n))
}

fn answer(reply: &Reply, conversation: &Conversation) -> Answer {
    match reply {
        Reply::Text(text) => Answer::Text(text.clone()),
        Reply::OneOf(texts) if !texts.is_empty() => Answer::Text(texts[draw(texts.len())].clone()),
        Reply::OneOf(_) => Answer::Text(String::new()),
        Reply::ToolCalls(calls) if conversation.tools.is_some() => Answer::ToolCalls(calls.clone()),
        Reply::EchoKey(how) => match (&conversation.key, how) {
            (Some(key), KeyEcho::Text | KeyEcho::Escaped) => {
                Answer::Text(format!("Your key is {key}."))
            }
            (Some(key), KeyEcho::Split) => {
                let mid = (0..=key.len() / 2)
                    .rev()
                    .find(|&i| key.is_char_boundary(i))
                    .unwrap_or(0);
                Answer::Parts(vec![
                    format!("Your key is {}", &key[..mid]),
                    format!("{}.", &key[mid..]),
                ])
            }
            (Some(key), KeyEcho::ToolArguments) if conversation.tools.is_some() => {
                Answer::ToolCalls(vec![("echo_key".into(), json!({"api_key": key}))])
            }
            _ => Answer::Text(conversation.last_user_text.clone()),
        },
        Reply::Echo | Reply::ToolCalls(_) => Answer::Text(conversation.last_user_text.clone()),
        Reply::Nothing => Answer::Nothing,
        Reply::Refusal(text) => Answer::Refusal(text.clone()),
    }
}

fn usage(mode: &UsageMode, conversation: &Conversation, answer: &Answer) -> Option<Usage> {
    match mode {
        UsageMode::Omitted => None,
        UsageMode::Fixed { input, output } => Some(Usage {
            input: *input,
            output: *output,
        }),
        UsageMode::Counted => {
            let tools = conversation
                .tools
                .as_ref()
                .map_or(0, |tools| words(&tools.to_string()));
            let input = conversation
                .texts
                .iter()
                .map(|text| words(text))
                .sum::<u64>()
                + tools;
            let output = match answer {
                Answer::Text(text) | Answer::Refusal(Some(text)) => words(text),
                Answer::Nothing | Answer::Refusal(None) => 0,
                Answer::Parts(parts) => parts.iter().map(|text| words(text)).sum(),
                Answer::ToolCalls(calls) => calls
                    .iter()
                    .map(|(name, arguments)| words(name) + words(&arguments.to_string()))
                    .sum(),
            };
            Some(Usage {
                input,
                output: output.max(1),
            })
        }
    }
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The text of a content value: a string, or an array of blocks whose
/// `type: "text"` ones are joined (OpenAI parts and Anthropic blocks alike).
pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Match, Rule};

    fn conversation() -> Conversation {
        Conversation {
            model: "m".into(),
            texts: vec!["be brief".into(), "what is two plus two".into()],
            last_user_text: "what is two plus two".into(),
            ends_with_tool_result: false,
            tools: None,
            key: None,
        }
    }

    fn answer_of(decision: Decision) -> (Answer, Option<Usage>) {
        assert!(
            decision.fault.is_none(),
            "unexpected fault {:?}",
            decision.fault
        );
        (decision.answer, decision.usage)
    }

    #[test]
    fn echo_counts_words_of_messages_and_reply() {
        let (answer, usage) = answer_of(decide(&StubConfig::default(), &conversation()));
        assert_eq!(answer, Answer::Text("what is two plus two".into()));
        assert_eq!(
            usage,
            Some(Usage {
                input: 7,
                output: 5
            })
        );
    }

    #[test]
    fn first_matching_rule_wins() {
        let rule = |contains: &str, text: &str| Rule {
            when: Match {
                contains: Some(contains.into()),
                after_tool_result: None,
            },
            reply: Reply::Text(text.into()),
            fault: None,
        };
        let config = StubConfig {
            rules: vec![
                rule("absent", "no"),
                rule("two", "four"),
                rule("plus", "later"),
            ],
            ..StubConfig::default()
        };
        let (answer, _) = answer_of(decide(&config, &conversation()));
        assert_eq!(answer, Answer::Text("four".into()));
    }

    #[test]
    fn rule_fault_replaces_the_reply() {
        let config = StubConfig {
            rules: vec![Rule {
                when: Match {
                    contains: Some("brief".into()),
                    after_tool_result: Some(false),
                },
                reply: Reply::Echo,
                fault: Some(Fault::Status(500)),
            }],
            ..StubConfig::default()
        };
        assert!(matches!(
            decide(&config, &conversation()).fault,
            Some(Fault::Status(500))
        ));
    }

    #[test]
    fn tool_calls_need_tools_in_the_request() {
        let calls = Reply::ToolCalls(vec![("get_weather".into(), json!({"city": "Paris"}))]);
        let config = StubConfig {
            default_reply: calls,
            ..StubConfig::default()
        };
        let (answer, _) = answer_of(decide(&config, &conversation()));
        assert_eq!(answer, Answer::Text("what is two plus two".into()));

        let with_tools = Conversation {
            tools: Some(json!([{"name": "get_weather", "description": "Weather in a city"}])),
            ..conversation()
        };
        let (answer, usage) = answer_of(decide(&config, &with_tools));
        assert!(matches!(answer, Answer::ToolCalls(calls) if calls.len() == 1));
        // 7 message words + 4 in the tools JSON; 1 name + 1 for `{"city":"Paris"}`.
        assert_eq!(
            usage,
            Some(Usage {
                input: 11,
                output: 2
            })
        );
    }

    #[test]
    fn usage_modes() {
        let fixed = StubConfig {
            usage: UsageMode::Fixed {
                input: 3,
                output: 9,
            },
            ..StubConfig::default()
        };
        assert_eq!(
            answer_of(decide(&fixed, &conversation())).1,
            Some(Usage {
                input: 3,
                output: 9
            })
        );
        let omitted = StubConfig {
            usage: UsageMode::Omitted,
            ..StubConfig::default()
        };
        assert_eq!(answer_of(decide(&omitted, &conversation())).1, None);
        let empty = Conversation {
            last_user_text: String::new(),
            ..conversation()
        };
        assert_eq!(
            answer_of(decide(&StubConfig::default(), &empty))
                .1
                .map(|u| u.output),
            Some(1)
        );
    }

    #[test]
    fn content_text_joins_text_blocks_only() {
        assert_eq!(content_text(Some(&json!("plain"))), "plain");
        let blocks = json!([{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}]);
        assert_eq!(content_text(Some(&blocks)), "a\nb");
        assert_eq!(content_text(None), "");
    }
}
