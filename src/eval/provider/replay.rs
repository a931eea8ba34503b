//! Answers from recorded exchanges: offline and deterministic. A recording is a JSON
//! file named by the request's key (model, parameters, conversation, tools, sample), so
//! it is found again whichever provider recorded it.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Completion, Provider, ProviderError};
use crate::eval::request::ChatRequest;

/// Identifies the recording file format.
pub const FORMAT: &str = "promptgate.recording/v1";

/// One recorded exchange, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recording {
    pub format: String,
    pub sample: u32,
    pub request: ChatRequest,
    /// The answer, with the latency measured when it was recorded.
    pub completion: Completion,
}

pub fn path_of(dir: &Path, request: &ChatRequest, sample: u32) -> PathBuf {
    dir.join(format!("{}.json", request.key(sample)))
}

/// Store `completion` as the answer to `request`.
pub async fn record(
    dir: &Path,
    request: &ChatRequest,
    sample: u32,
    completion: &Completion,
) -> std::io::Result<()> {
    let recording = Recording {
        format: FORMAT.into(),
        sample,
        request: request.clone(),
        completion: completion.clone(),
    };
    let text = serde_json::to_vec_pretty(&recording).map_err(std::io::Error::other)?;
    crate::atomic::write_creating_dir(&path_of(dir, request, sample), text).await
}

pub struct Replay {
    dir: PathBuf,
}

impl Replay {
    pub fn new(dir: PathBuf) -> Self {
        Replay { dir }
    }
}

impl Provider for Replay {
    fn identity(&self) -> String {
        format!("replay {}", self.dir.display())
    }

    fn live(&self) -> bool {
        false
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        sample: u32,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let path = path_of(&self.dir, request, sample);
            let text = match tokio::fs::read(&path).await {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ProviderError::Unavailable(format!(
                        "no recording of this request (model `{}`, sample {sample}) in {}: \
                         record it with `--record {}` against a live provider",
                        request.model,
                        self.dir.display(),
                        self.dir.display()
                    )));
                }
                Err(e) => {
                    return Err(ProviderError::Unavailable(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )));
                }
            };
            let recording: Recording = serde_json::from_slice(&text).map_err(|e| {
                ProviderError::Unavailable(format!("{}: not a recording: {e}", path.display()))
            })?;
            if recording.format != FORMAT {
                return Err(ProviderError::Unavailable(format!(
                    "{}: format `{}`, expected `{FORMAT}`",
                    path.display(),
                    recording.format
                )));
            }
            Ok(recording.completion)
        })
    }
}
