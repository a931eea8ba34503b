//! The answer cache on disk: content-addressed by everything that determines an answer
//! (provider, endpoint, model, parameters, conversation, tools, sample number), so a
//! re-run of an unchanged side makes no provider calls. Only answers are stored, never
//! errors. Writes are atomic (a temporary file renamed into place), so concurrent runs
//! can share a cache: the worst case is the same answer written twice. An entry is not
//! flushed to disk on its own (an fsync per answer made a cold-cache run 27% slower):
//! after a crash it may be empty or cut short, which reads as a miss, and the run's
//! entries are flushed together, once, when the last handle on the cache is dropped.

use std::path::PathBuf;

use serde_json::json;

use super::provider::Completion;
use super::request::ChatRequest;
use crate::artifact::fingerprint::canonical_digest;

/// Bumped when the entry format changes; old entries are then ignored.
const LAYOUT: &str = "v1";

/// What [`prune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Entries and bytes left.
    pub kept: u64,
    pub kept_bytes: u64,
    /// Entries and bytes removed.
    pub removed: u64,
    pub removed_bytes: u64,
}

/// Keep the cache under `dir` (as given to [`Cache::new`]) within `max_bytes`: while it
/// holds more, remove the entry used longest ago (a hit touches its entry, so the
/// base side every pull request shares stays). Entries of older layouts, and
/// temporary files a killed writer left, go first. Files it cannot stat or remove
/// are skipped: a cache that cannot be pruned is still a cache.
pub fn prune(dir: &std::path::Path, max_bytes: u64) -> Pruned {
    let mut entries = Vec::new();
    let mut stale = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        let Ok(list) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in list.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            let path = e.path();
            if meta.is_dir() {
                pending.push(path);
                continue;
            }
            let current = path.strip_prefix(dir).is_ok_and(|p| p.starts_with(LAYOUT))
                && path.extension().is_some_and(|x| x == "json")
                && !e.file_name().to_string_lossy().starts_with('.');
            let when = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            if current {
                entries.push((when, meta.len(), path));
            } else {
                stale.push((when, meta.len(), path));
            }
        }
    }
    // Oldest first; stale files before any entry.
    entries.sort();
    stale.sort();
    let mut total: u64 = entries.iter().chain(&stale).map(|(_, len, _)| len).sum();
    let mut done = Pruned::default();
    for (_, len, path) in stale.iter().chain(&entries) {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(path).is_ok() {
            total -= len;
            done.removed += 1;
            done.removed_bytes += len;
        }
    }
    done.kept_bytes = total;
    done.kept = (entries.len() + stale.len()) as u64 - done.removed;
    done
}

#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    flush: std::sync::Arc<Flush>,
}

/// Flushes the cache's filesystem when the last [`Cache`] handle goes, if anything was
/// written.
#[derive(Debug)]
struct Flush {
    dir: PathBuf,
    wrote: std::sync::atomic::AtomicBool,
}

impl Drop for Flush {
    fn drop(&mut self) {
        if self.wrote.load(std::sync::atomic::Ordering::Relaxed) {
            crate::atomic::sync_filesystem(&self.dir);
        }
    }
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into().join(LAYOUT);
        Cache {
            flush: std::sync::Arc::new(Flush {
                dir: dir.clone(),
                wrote: false.into(),
            }),
            dir,
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
            let bytes = crate::read::file(&file, crate::read::MAX_FILE_BYTES);
            if bytes.is_ok() {
                touch(&file);
            }
            bytes
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
        self.flush
            .wrote
            .store(true, std::sync::atomic::Ordering::Relaxed);
        crate::atomic::write_creating_dir(
            &self.path(identity, request, sample),
            bytes,
            crate::atomic::Durability::Unsynced,
        )
        .await
    }
}

/// Mark an entry used now, for [`prune`]; best effort.
fn touch(path: &std::path::Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
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
        crate::atomic::write_creating_dir(
            &path,
            b"{trunc".to_vec(),
            crate::atomic::Durability::Synced,
        )
        .await
        .expect("write");
        assert_eq!(cache.get("p", &request("hi"), 0).await, None);
    }

    /// Entries are not synced one by one: after a crash one may be empty or cut
    /// anywhere. Each of those reads as a miss, never as another answer.
    #[tokio::test]
    async fn an_entry_a_crash_cut_short_anywhere_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path());
        let answer = Completion {
            text: "hello".into(),
            latency_ms: Some(12.0),
            ..Completion::default()
        };
        cache
            .put("p", &request("hi"), 0, &answer)
            .await
            .expect("put");
        let path = cache.path("p", &request("hi"), 0);
        let whole = std::fs::read(&path).expect("read");
        for cut in 0..whole.len() {
            std::fs::write(&path, &whole[..cut]).expect("write");
            assert_eq!(
                cache.get("p", &request("hi"), 0).await,
                None,
                "cut at {cut}"
            );
        }
        std::fs::write(&path, vec![0u8; whole.len()]).expect("write");
        assert_eq!(cache.get("p", &request("hi"), 0).await, None, "zeroed");
        std::fs::write(&path, &whole).expect("write");
        assert_eq!(cache.get("p", &request("hi"), 0).await, Some(answer));
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
            crate::atomic::Durability::Synced,
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

    /// Files under `dir` with their mtime set `age_s` seconds ago.
    fn aged(dir: &std::path::Path, name: &str, len: usize, age_s: u64) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, vec![b'x'; len]).expect("write");
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age_s);
        std::fs::File::options()
            .append(true)
            .open(&path)
            .and_then(|f| f.set_modified(when))
            .expect("set mtime");
        path
    }

    #[test]
    fn pruning_removes_the_least_recently_used_entries_down_to_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = aged(dir.path(), "v1/aa/aa01.json", 400, 300);
        let older = aged(dir.path(), "v1/bb/bb01.json", 400, 400);
        let recent = aged(dir.path(), "v1/aa/aa02.json", 400, 10);
        let left = aged(dir.path(), "v1/aa/.aa03.json.1.2.tmp", 100, 1);
        let layout = aged(dir.path(), "v0/cc/cc01.json", 100, 1);
        // Under the cap: nothing goes.
        assert_eq!(prune(dir.path(), 10_000).removed, 0);
        let done = prune(dir.path(), 500);
        assert!(!left.exists() && !layout.exists(), "stale files first");
        assert!(!older.exists() && !old.exists(), "then the oldest entries");
        assert!(recent.exists());
        assert_eq!(
            done,
            Pruned {
                kept: 1,
                kept_bytes: 400,
                removed: 4,
                removed_bytes: 1_000
            }
        );
        // A missing directory is an empty cache.
        assert_eq!(prune(&dir.path().join("none"), 0), Pruned::default());
    }

    #[tokio::test]
    async fn a_hit_marks_its_entry_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path());
        let answer = Completion {
            text: "hello".into(),
            ..Completion::default()
        };
        cache
            .put("p", &request("hi"), 0, &answer)
            .await
            .expect("put");
        let path = cache.path("p", &request("hi"), 0);
        let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .append(true)
            .open(&path)
            .and_then(|f| f.set_modified(long_ago))
            .expect("set mtime");
        assert!(cache.get("p", &request("hi"), 0).await.is_some());
        let mtime = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        let fresh = mtime > long_ago + std::time::Duration::from_secs(60);
        assert!(fresh, "the hit did not touch its entry");
    }
}
