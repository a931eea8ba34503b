//! The JSON Schemas of the files promptgate reads, shipped in `schemas/` (editors use
//! them too) and compiled in. The formats validate against them;
//! a test keeps every file equal to what `schemars` derives from its serde model. A leaf:
//! the models read their schema here, nothing here reads the models.

use std::sync::OnceLock;

use serde_json::Value;

/// One shipped schema, parsed on first use: deriving it at run time costs more than the
/// rest of a small `changes`.
pub struct Shipped {
    cell: OnceLock<Value>,
    /// Repository path of the shipped file.
    pub file: &'static str,
    text: &'static str,
}

impl Shipped {
    const fn new(file: &'static str, text: &'static str) -> Self {
        Shipped {
            cell: OnceLock::new(),
            file,
            text,
        }
    }

    /// The schema. The test below proves every shipped text parses, so the fallback (a
    /// schema that accepts anything, leaving the checks to serde) is never taken.
    pub fn get(&self) -> &Value {
        self.cell
            .get_or_init(|| serde_json::from_str(self.text).unwrap_or(Value::Bool(true)))
    }
}

/// `.promptgate.yaml`.
pub static CONFIG: Shipped = Shipped::new(
    "schemas/config.schema.json",
    include_str!("../schemas/config.schema.json"),
);
/// A native `*.prompt.yaml`.
pub static PROMPT: Shipped = Shipped::new(
    "schemas/prompt.schema.json",
    include_str!("../schemas/prompt.schema.json"),
);
/// A GitHub Models `*.prompt.yml`.
pub static GITHUB_MODELS_PROMPT: Shipped = Shipped::new(
    "schemas/github-models-prompt.schema.json",
    include_str!("../schemas/github-models-prompt.schema.json"),
);
/// An eval suite, `*.eval.yaml`.
pub static SUITE: Shipped = Shipped::new(
    "schemas/eval.schema.json",
    include_str!("../schemas/eval.schema.json"),
);
/// One case of a suite or a cases file.
pub static CASE: Shipped = Shipped::new(
    "schemas/eval-case.schema.json",
    include_str!("../schemas/eval-case.schema.json"),
);
/// The runtime config, `deploy/prompts.runtime.yaml`.
pub static RUNTIME: Shipped = Shipped::new(
    "schemas/runtime.schema.json",
    include_str!("../schemas/runtime.schema.json"),
);
/// What `promptgate bundle` writes (it reads none: shipped for applications).
pub static BUNDLE: Shipped = Shipped::new(
    "schemas/bundle.schema.json",
    include_str!("../schemas/bundle.schema.json"),
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::schema_of;

    /// A shipped schema and how to derive it from its model.
    type Pair = (&'static Shipped, fn() -> Value);

    #[test]
    fn shipped_schemas_match_the_models() {
        let models: [Pair; 7] = [
            (&RUNTIME, schema_of::<crate::rollout::Runtime>),
            (&BUNDLE, schema_of::<crate::rollout::bundle::Bundle>),
            (&CONFIG, schema_of::<crate::config::Config>),
            (&PROMPT, schema_of::<crate::artifact::native::NativeFile>),
            (
                &GITHUB_MODELS_PROMPT,
                schema_of::<crate::artifact::github_models::GithubModelsFile>,
            ),
            (&SUITE, schema_of::<crate::artifact::suite::SuiteFile>),
            (&CASE, schema_of::<crate::artifact::suite::CaseSpec>),
        ];
        let mut stale = Vec::new();
        for (schema, derive) in models {
            let derived = derive();
            let shipped: Value = serde_json::from_str(schema.text).unwrap_or(Value::Null);
            if shipped != derived {
                let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(schema.file);
                let text = serde_json::to_string_pretty(&derived).unwrap_or_default() + "\n";
                std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                stale.push(schema.file);
            }
        }
        assert!(
            stale.is_empty(),
            "regenerated {stale:?} from the models: review and commit them"
        );
    }
}
