//! Answers from recorded exchanges: offline and deterministic. A recording is a JSON
//! file named by the request's key (model, parameters, conversation, tools, sample), so
//! it is found again whichever provider recorded it.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{Completion, Provider, ProviderError};
use crate::eval::request::ChatRequest;
use crate::read::ReadError;

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
    crate::atomic::write_creating_dir(
        &path_of(dir, request, sample),
        text,
        crate::atomic::Durability::Synced,
    )
    .await
}

pub struct Replay {
    dir: PathBuf,
    /// The repository the recordings belong to: symlinks among them must stay inside.
    root: PathBuf,
    canonical_root: PathBuf,
}

impl Replay {
    /// Recordings in `dir`, a directory of the repository at `root`.
    pub fn new(root: &Path, dir: PathBuf) -> std::io::Result<Self> {
        Ok(Replay {
            dir,
            root: root.to_path_buf(),
            canonical_root: root.canonicalize()?,
        })
    }

    /// The recording's bytes ([`crate::read::file`]), if it stays inside the repository.
    async fn read(&self, path: &Path) -> Result<Vec<u8>, ReadError> {
        let (root, canonical_root) = (self.root.clone(), self.canonical_root.clone());
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let file = crate::read::inside(&root, &canonical_root, &path)?;
            crate::read::file(&file, crate::read::MAX_FILE_BYTES)
        })
        .await
        .map_err(|e| ReadError::Io(e.to_string()))?
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
            let text = match self.read(&path).await {
                Ok(text) => text,
                Err(ReadError::Missing) => {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::request::{Format, Params, Turn};

    #[cfg(unix)]
    #[tokio::test]
    async fn a_recording_that_leads_outside_the_repository_is_not_read() {
        let request = ChatRequest {
            model: "m".into(),
            params: Params::default(),
            format: Format::Text,
            messages: vec![Turn::User {
                content: "hi".into(),
            }],
            tools: vec![],
        };
        let outside = tempfile::tempdir().expect("tempdir");
        let answer = Completion {
            text: "from outside".into(),
            ..Completion::default()
        };
        record(outside.path(), &request, 0, &answer)
            .await
            .expect("record");
        let repo = tempfile::tempdir().expect("tempdir");
        let dir = repo.path().join("recordings");
        std::fs::create_dir(&dir).expect("mkdir");
        std::os::unix::fs::symlink(
            path_of(outside.path(), &request, 0),
            path_of(&dir, &request, 0),
        )
        .expect("symlink");
        let replay = Replay::new(repo.path(), dir).expect("replay");
        match replay.complete(&request, 0).await {
            Err(ProviderError::Unavailable(e)) => {
                assert!(e.contains("leads outside the repository"), "{e}")
            }
            other => panic!("read a recording outside the repository: {other:?}"),
        }
    }
}
