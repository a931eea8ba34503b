//! The answer cache on disk: content-addressed by everything that determines an answer
//! (provider, endpoint, model, parameters, conversation, tools, sample number), so a
//! re-run of an unchanged side makes no provider calls. Only answers are stored, never
//! errors. Writes are atomic (a temporary file renamed into place), so concurrent runs
//! can share a cache: the worst case is the same answer written twice.

use std::path::PathBuf;

use serde_json::json;

use super::provider::Completion;
use super::request::ChatRequest;
use crate::artifact::fingerprint::canonical_digest;

/// Bumped when the entry format changes; old entries are then ignored.
const LAYOUT: &str = "v1";

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache {
            dir: dir.into().join(LAYOUT),
        }
    }

    fn path(&self, identity: &str, request: &ChatRequest, sample: u32) -> PathBuf {
        let key = canonical_digest(&json!({
            "provider": identity,
            "request": request.key(sample),
        }));
        self.dir.join(&key[..2]).join(format!("{key}.json"))
    }

    /// The stored answer, if any. An unreadable entry, or one with nothing in it,
    /// counts as missing (and is replaced by the next answer).
    pub async fn get(
        &self,
        identity: &str,
        request: &ChatRequest,
        sample: u32,
    ) -> Option<Completion> {
        let path = self.path(identity, request, sample);
        let file = path.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            crate::read::file(&file, crate::read::MAX_FILE_BYTES)
        })
        .await
        .ok()?
        .ok()?;
        match serde_json::from_slice::<Completion>(&bytes) {
            Ok(c) if c.is_answer() => Some(c),
            // Written before empty answers were refused: no answer to replay.
            Ok(c) => {
                tracing::warn!("ignoring cache entry {}: {}", path.display(), c.emptiness());
                None
            }
            Err(e) => {
                tracing::warn!("ignoring damaged cache entry {}: {e}", path.display());
                None
            }
        }
    }

    pub async fn put(
        &self,
        identity: &str,
        request: &ChatRequest,
        sample: u32,
        completion: &Completion,
    ) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(completion).map_err(std::io::Error::other)?;
        crate::atomic::write_creating_dir(&self.path(identity, request, sample), bytes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::request::{Format, Params, Turn};

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            params: Params::default(),
            format: Format::Text,
            messages: vec![Turn::User {
                content: text.into(),
            }],
            tools: vec![],
        }
    }

    #[tokio::test]
    async fn stores_and_finds_answers_by_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path());
        let answer = Completion {
            text: "hello".into(),
            latency_ms: Some(12.0),
            ..Completion::default()
        };
        assert_eq!(cache.get("p", &request("hi"), 0).await, None);
        cache
            .put("p", &request("hi"), 0, &answer)
            .await
            .expect("put");
        assert_eq!(cache.get("p", &request("hi"), 0).await, Some(answer));
        assert_eq!(cache.get("p", &request("hi"), 1).await, None);
        assert_eq!(cache.get("q", &request("hi"), 0).await, None);
        assert_eq!(cache.get("p", &request("ho"), 0).await, None);
    }

    #[tokio::test]
    async fn a_damaged_entry_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path());
        let path = cache.path("p", &request("hi"), 0);
        crate::atomic::write_creating_dir(&path, b"{trunc".to_vec())
            .await
            .expect("write");
        assert_eq!(cache.get("p", &request("hi"), 0).await, None);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_named_pipe_as_an_entry_is_a_miss_without_waiting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path());
        let path = cache.path("p", &request("hi"), 0);
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let got = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            cache.get("p", &request("hi"), 0),
        )
        .await;
        if got.is_err() {
            // Let the stuck read go (it gets end of file), so the runtime can stop.
            drop(std::fs::OpenOptions::new().write(true).open(&path));
            panic!("the read waited on the named pipe");
        }
        assert_eq!(got.ok().flatten(), None);
        // The next answer takes its place.
        let answer = Completion {
            text: "hello".into(),
            ..Completion::default()
        };
        cache
            .put("p", &request("hi"), 0, &answer)
            .await
            .expect("put");
        assert_eq!(cache.get("p", &request("hi"), 0).await, Some(answer));
    }

    #[tokio::test]
    async fn an_entry_with_nothing_in_it_is_a_miss_and_a_refusal_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path());
        // As an earlier version cached a `content: null` answer.
        let path = cache.path("p", &request("hi"), 0);
        crate::atomic::write_creating_dir(
            &path,
            br#"{"text":"","usage":null,"finish_reason":"stop"}"#.to_vec(),
        )
        .await
        .expect("write");
        assert_eq!(cache.get("p", &request("hi"), 0).await, None);
        let refusal = Completion {
            text: "I can't help with that.".into(),
            refusal: true,
            ..Completion::default()
        };
        cache
            .put("p", &request("hi"), 0, &refusal)
            .await
            .expect("put");
        let stored = std::fs::read_to_string(&path).expect("read");
        assert!(stored.contains(r#""refusal":true"#), "{stored}");
        assert_eq!(cache.get("p", &request("hi"), 0).await, Some(refusal));
    }

    #[tokio::test]
    async fn concurrent_writers_leave_one_whole_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path());
        let answer = Completion {
            text: "x".repeat(100_000),
            ..Completion::default()
        };
        let writes = (0..8).map(|_| {
            let (cache, answer) = (cache.clone(), answer.clone());
            tokio::spawn(async move { cache.put("p", &request("hi"), 0, &answer).await })
        });
        for w in writes {
            w.await.expect("join").expect("put");
        }
        assert_eq!(cache.get("p", &request("hi"), 0).await, Some(answer));
        let leftovers =
            std::fs::read_dir(cache.path("p", &request("hi"), 0).parent().expect("dir"))
                .expect("read dir")
                .count();
        assert_eq!(leftovers, 1);
    }
}
