//! The answer cache on disk: content-addressed by everything that determines an answer
//! (provider, endpoint, model, parameters, conversation, tools, sample number), so a
//! re-run of an unchanged side makes no provider calls. Only answers are stored, never
//! errors.
//!
//! A run appends its new answers to one segment file of its own (`v2/*.seg`, a unique
//! name), so concurrent runs sharing a cache never write to the same file; a file per
//! answer made ext4 spend more time creating files than the run spent on anything else.
//! Each record holds its key and a checksum; when the run ends it appends an index of
//! its records (key, offset, length) to the segment, then flushes the filesystem once.
//! A run loads the indexes when it first looks an answer up (one read per segment; a
//! segment without one, cut short by a crash or still being written, is scanned record
//! header by record header) and reads an answer only on a hit. Nothing is flushed
//! record by record: after a crash a segment may be cut short or end in zeros; what
//! was written before still reads back, and a record whose key or checksum does not
//! match is a miss, never another answer.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::provider::Completion;
use super::request::ChatRequest;
use crate::artifact::fingerprint::canonical_digest;
use crate::read::MAX_FILE_BYTES;

/// Bumped when the format changes; files of older layouts (`v1`: a file per answer)
/// are then never read, and pruned first.
const LAYOUT: &str = "v2";
const SEGMENT: &str = "seg";

/// A record: `RECORD` | payload length (u32 LE) | key | SHA-256 of key, length and
/// payload | payload (the answer's JSON).
const RECORD: [u8; 4] = *b"PGA2";
const HEADER: usize = 4 + 4 + 32 + 32;
/// An index entry: key | offset of its record (u64 LE) | payload length (u32 LE).
const ENTRY: usize = 32 + 8 + 4;
/// The end of a segment with an index: offset of the index (u64 LE) | entries (u32 LE)
/// | SHA-256 of the index, its offset and count | `INDEX`.
const INDEX: [u8; 8] = *b"PGIDX2\0\0";
const TRAILER: usize = 8 + 4 + 32 + 8;

type Key = [u8; 32];

/// What [`prune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Entries and bytes left.
    pub kept: u64,
    pub kept_bytes: u64,
    /// Entries and bytes removed (a file of an older layout counts as one entry).
    pub removed: u64,
    pub removed_bytes: u64,
}

/// Keep the cache under `dir` (as given to [`Cache::new`]) within `max_bytes`: while it
/// holds more, remove the file used longest ago, a whole segment at a time (a run that
/// reads a hit from a segment marks it used, so the base side every pull request
/// shares stays). Files of older layouts (a file per answer) and anything else that is
/// not a segment go first. Files it cannot stat or remove are skipped: a cache that
/// cannot be pruned is still a cache.
pub fn prune(dir: &Path, max_bytes: u64) -> Pruned {
    let mut segments = Vec::new();
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
            let when = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            if d == dir.join(LAYOUT) && is_segment(&e) {
                segments.push((when, meta.len(), path));
            } else {
                stale.push((when, meta.len(), path));
            }
        }
    }
    // Oldest first; stale files before any segment.
    segments.sort();
    stale.sort();
    let entries = |path: &Path, stale: bool| {
        if stale {
            1
        } else {
            entries_of(path).len() as u64
        }
    };
    let mut total: u64 = segments.iter().chain(&stale).map(|(_, len, _)| len).sum();
    let mut done = Pruned::default();
    let all = stale.iter().map(|s| (s, true));
    for ((_, len, path), is_stale) in all.chain(segments.iter().map(|s| (s, false))) {
        let n = entries(path, is_stale);
        if total > max_bytes && std::fs::remove_file(path).is_ok() {
            total -= len;
            done.removed += n;
            done.removed_bytes += len;
        } else {
            done.kept += n;
        }
    }
    done.kept_bytes = total;
    done
}

/// A regular file (not followed through a symlink) named `*.seg`.
fn is_segment(e: &std::fs::DirEntry) -> bool {
    let path = e.path();
    e.file_type().is_ok_and(|t| t.is_file())
        && path.extension().is_some_and(|x| x == SEGMENT)
        && !e.file_name().to_string_lossy().starts_with('.')
}

#[derive(Debug, Clone)]
pub struct Cache {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    /// The segments on disk, loaded at the first lookup.
    index: tokio::sync::OnceCell<Index>,
    /// This run's own segment, created at the first answer written.
    writer: Mutex<Option<Writer>>,
}

/// Where every answer of the segments on disk is.
#[derive(Debug, Default)]
struct Index {
    segments: Vec<Segment>,
    entries: HashMap<Key, Entry>,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    /// Marked used by this run already (see [`prune`]).
    touched: AtomicBool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    segment: usize,
    offset: u64,
    len: u32,
}

/// Records are written to the segment this many bytes at a time.
const WRITE_BYTES: usize = 64 * 1024;

#[derive(Debug)]
struct Writer {
    path: PathBuf,
    file: File,
    /// Bytes in the file.
    written: u64,
    /// Records not yet written to it: one write for many records, each small.
    pending: Vec<u8>,
    /// Its records, in order, for the index at its end.
    records: Vec<(Key, u64, u32)>,
    /// The same, by key, for lookups later in the run.
    by_key: HashMap<Key, (u64, u32)>,
}

impl Drop for Shared {
    /// Close this run's segment with its index, and flush the filesystem once.
    fn drop(&mut self) {
        let writer = self.writer.get_mut().map(Option::take);
        if let Ok(Some(mut w)) = writer {
            // Without an index the segment is still read, by scanning it.
            if w.write().is_ok() {
                let _ = w.file.write_all(&index_bytes(&w.records, w.written));
            }
            crate::atomic::sync_filesystem(&self.dir);
        }
    }
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache {
            shared: Arc::new(Shared {
                dir: dir.into().join(LAYOUT),
                index: tokio::sync::OnceCell::new(),
                writer: Mutex::new(None),
            }),
        }
    }

    fn key(identity: &str, request: &ChatRequest, sample: u32) -> Key {
        let hex = canonical_digest(&json!({
            "provider": identity,
            "request": request.key(sample),
        }));
        let mut key = [0u8; 32];
        for (k, pair) in key.iter_mut().zip(hex.as_bytes().chunks(2)) {
            let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            *k = digit(pair[0]) << 4 | digit(pair[1]);
        }
        key
    }

    async fn index(&self) -> &Index {
        self.shared
            .index
            .get_or_init(|| async {
                let dir = self.shared.dir.clone();
                tokio::task::spawn_blocking(move || Index::load(&dir))
                    .await
                    .unwrap_or_default()
            })
            .await
    }

    /// The stored answer, if any. A record that cannot be read, whose key or checksum
    /// does not match, or with nothing in it, counts as missing (and the next answer
    /// is written anew).
    pub async fn get(
        &self,
        identity: &str,
        request: &ChatRequest,
        sample: u32,
    ) -> Option<Completion> {
        let key = Self::key(identity, request, sample);
        let index = self.index().await;
        let (path, offset, len, segment) = match index.entries.get(&key) {
            Some(e) => (
                index.segments[e.segment].path.clone(),
                e.offset,
                e.len,
                Some(e.segment),
            ),
            // Written earlier in this run.
            None => {
                let writer = self.shared.writer.lock().ok()?;
                let w = writer.as_ref()?;
                let &(offset, len) = w.by_key.get(&key)?;
                if let Some(payload) = w.pending(offset, len) {
                    return serde_json::from_slice::<Completion>(payload)
                        .ok()
                        .filter(Completion::is_answer);
                }
                (w.path.clone(), offset, len, None)
            }
        };
        let shared = self.shared.clone();
        let (path, bytes) = tokio::task::spawn_blocking(move || {
            if let Some(segment) = segment.and_then(|s| shared.index.get()?.segments.get(s))
                && !segment.touched.swap(true, Ordering::Relaxed)
            {
                touch(&segment.path);
            }
            let bytes = read_record(&path, offset, len, &key);
            (path, bytes)
        })
        .await
        .ok()?;
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("ignoring damaged cache entry in {}: {e}", path.display());
                return None;
            }
        };
        match serde_json::from_slice::<Completion>(&bytes) {
            Ok(c) if c.is_answer() => Some(c),
            // Written before empty answers were refused: no answer to replay.
            Ok(c) => {
                tracing::warn!(
                    "ignoring cache entry in {}: {}",
                    path.display(),
                    c.emptiness()
                );
                None
            }
            Err(e) => {
                tracing::warn!("ignoring damaged cache entry in {}: {e}", path.display());
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
        let payload = serde_json::to_vec(completion).map_err(std::io::Error::other)?;
        let key = Self::key(identity, request, sample);
        let record = record_bytes(&key, &payload)?;
        // Not on the blocking pool: handing each answer to a thread cost more than
        // copying it into memory, and the write that follows every 64 KiB of answers
        // only copies them into the page cache.
        let mut writer = self
            .shared
            .writer
            .lock()
            .map_err(|_| std::io::Error::other("the cache writer panicked"))?;
        let w = match &mut *writer {
            Some(w) => w,
            None => writer.insert(Writer::create(&self.shared.dir)?),
        };
        w.append(key, &record)
    }
}

impl Writer {
    /// A new segment of its own in `dir`: a name no other run, on this machine or
    /// another sharing the directory, takes.
    fn create(dir: &Path) -> std::io::Result<Writer> {
        std::fs::create_dir_all(dir)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let path = dir.join(format!(
            "{}-{}-{:016x}.{SEGMENT}",
            now.as_millis(),
            std::process::id(),
            fastrand::u64(..)
        ));
        let file = File::options().write(true).create_new(true).open(&path)?;
        Ok(Writer {
            path,
            file,
            written: 0,
            pending: Vec::with_capacity(WRITE_BYTES * 2),
            records: Vec::new(),
            by_key: HashMap::new(),
        })
    }

    fn append(&mut self, key: Key, record: &[u8]) -> std::io::Result<()> {
        let offset = self.written + self.pending.len() as u64;
        let len = (record.len() - HEADER) as u32;
        self.pending.extend_from_slice(record);
        self.records.push((key, offset, len));
        self.by_key.insert(key, (offset, len));
        if self.pending.len() >= WRITE_BYTES {
            self.write()?;
        }
        Ok(())
    }

    /// Write the pending records to the file. On an error they are dropped, and no
    /// part of them stays in the file.
    fn write(&mut self) -> std::io::Result<()> {
        if let Err(e) = self.file.write_all(&self.pending) {
            let _ = self.file.set_len(self.written);
            let _ = self.file.seek(SeekFrom::Start(self.written));
            let written = self.written;
            self.records.retain(|&(_, offset, _)| offset < written);
            self.by_key.retain(|_, &mut (offset, _)| offset < written);
            self.pending.clear();
            return Err(e);
        }
        self.written += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// The payload of a record not yet written to the file.
    fn pending(&self, offset: u64, len: u32) -> Option<&[u8]> {
        let at = usize::try_from(offset.checked_sub(self.written)?).ok()? + HEADER;
        self.pending.get(at..at + len as usize)
    }
}

fn record_bytes(key: &Key, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| u64::from(l) <= MAX_FILE_BYTES)
        .ok_or_else(|| std::io::Error::other("the answer is over 32 MiB"))?;
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&RECORD);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&checksum(key, len, payload));
    out.extend_from_slice(payload);
    Ok(out)
}

fn checksum(key: &Key, len: u32, payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(key);
    h.update(len.to_le_bytes());
    h.update(payload);
    h.finalize().into()
}

/// The index appended to a segment whose records end at `end`.
fn index_bytes(records: &[(Key, u64, u32)], end: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * ENTRY + TRAILER);
    for (key, offset, len) in records {
        out.extend_from_slice(key);
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
    }
    let count = records.len() as u32;
    let sum = index_checksum(&out, end, count);
    out.extend_from_slice(&end.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&sum);
    out.extend_from_slice(&INDEX);
    out
}

fn index_checksum(entries: &[u8], at: u64, count: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(entries);
    h.update(at.to_le_bytes());
    h.update(count.to_le_bytes());
    h.finalize().into()
}

impl Index {
    /// The index of every segment in `dir`; a missing directory is an empty cache.
    fn load(dir: &Path) -> Index {
        let mut index = Index::default();
        let Ok(list) = std::fs::read_dir(dir) else {
            return index;
        };
        // By name, which starts with the time it was made: for a key written by two
        // runs, the later answer is found.
        let mut paths: Vec<PathBuf> = list
            .flatten()
            .filter(is_segment)
            .map(|e| e.path())
            .collect();
        paths.sort();
        for path in paths {
            let segment = index.segments.len();
            for (key, offset, len) in entries_of(&path) {
                index.entries.insert(
                    key,
                    Entry {
                        segment,
                        offset,
                        len,
                    },
                );
            }
            index.segments.push(Segment {
                path,
                touched: AtomicBool::new(false),
            });
        }
        index
    }
}

/// Opened for reading without waiting, and only if it is a regular file (a named pipe
/// in its place would otherwise hold the open).
fn open(path: &Path) -> std::io::Result<File> {
    let mut options = File::options();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// The records of the segment at `path`: from its index, else by scanning it up to
/// the first record that is not whole (a crash, or a run still writing it).
fn entries_of(path: &Path) -> Vec<(Key, u64, u32)> {
    let Ok(mut file) = open(path) else {
        return Vec::new();
    };
    let Ok(size) = file.metadata().map(|m| m.len()) else {
        return Vec::new();
    };
    indexed(&mut file, size).unwrap_or_else(|| scanned(file, size))
}

fn indexed(file: &mut File, size: u64) -> Option<Vec<(Key, u64, u32)>> {
    let mut trailer = [0u8; TRAILER];
    file.seek(SeekFrom::Start(size.checked_sub(TRAILER as u64)?))
        .ok()?;
    file.read_exact(&mut trailer).ok()?;
    let (at, rest) = trailer.split_at(8);
    let (count, rest) = rest.split_at(4);
    let (sum, magic) = rest.split_at(32);
    let at = u64::from_le_bytes(at.try_into().ok()?);
    let count = u32::from_le_bytes(count.try_into().ok()?);
    let bytes = u64::from(count) * ENTRY as u64;
    if magic != INDEX || at.checked_add(bytes)?.checked_add(TRAILER as u64)? != size {
        return None;
    }
    let mut entries = vec![0u8; usize::try_from(bytes).ok()?];
    file.seek(SeekFrom::Start(at)).ok()?;
    file.read_exact(&mut entries).ok()?;
    if index_checksum(&entries, at, count) != sum {
        return None;
    }
    Some(
        entries
            .chunks_exact(ENTRY)
            .filter_map(|e| {
                let key: Key = e[..32].try_into().ok()?;
                let offset = u64::from_le_bytes(e[32..40].try_into().ok()?);
                let len = u32::from_le_bytes(e[40..].try_into().ok()?);
                Some((key, offset, len))
            })
            .collect(),
    )
}

fn scanned(mut file: File, size: u64) -> Vec<(Key, u64, u32)> {
    let mut found = Vec::new();
    if file.rewind().is_err() {
        return found;
    }
    let mut reader = BufReader::new(file);
    let mut at = 0u64;
    let mut header = [0u8; HEADER];
    while at + HEADER as u64 <= size && reader.read_exact(&mut header).is_ok() {
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let end = at + (HEADER as u64) + u64::from(len);
        if header[..4] != RECORD || u64::from(len) > MAX_FILE_BYTES || end > size {
            break;
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&header[8..40]);
        found.push((key, at, len));
        if reader.seek_relative(i64::from(len)).is_err() {
            break;
        }
        at = end;
    }
    found
}

/// The payload of the record at `offset` in `path`, if it is whole, holds `key` and
/// matches its checksum.
fn read_record(path: &Path, offset: u64, len: u32, key: &Key) -> std::io::Result<Vec<u8>> {
    let damaged = |what: &str| std::io::Error::other(format!("record at {offset}: {what}"));
    if u64::from(len) > MAX_FILE_BYTES {
        return Err(damaged("too long"));
    }
    let mut file = open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = vec![0u8; HEADER + len as usize];
    file.read_exact(&mut bytes)?;
    let (header, payload) = bytes.split_at(HEADER);
    if header[..4] != RECORD || header[4..8] != len.to_le_bytes() {
        return Err(damaged("no record there"));
    }
    if header[8..40] != key[..] {
        return Err(damaged("another key"));
    }
    if header[40..] != checksum(key, len, payload) {
        return Err(damaged("checksum does not match"));
    }
    bytes.drain(..HEADER);
    Ok(bytes)
}

/// Mark a segment used now, for [`prune`]; best effort.
fn touch(path: &Path) {
    if let Ok(f) = File::options().append(true).open(path) {
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

    fn answer(text: &str) -> Completion {
        Completion {
            text: text.into(),
            latency_ms: Some(12.0),
            ..Completion::default()
        }
    }

    /// The segment files in the cache under `dir`.
    fn segments(dir: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join(LAYOUT))
            .map(|l| l.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        found.sort();
        found
    }

    /// One run writing `texts`, one answer each to requests of the same text, in order;
    /// its segment, closed when the run ends.
    async fn run_writing(dir: &Path, texts: &[&str]) -> PathBuf {
        let before = segments(dir);
        let cache = Cache::new(dir);
        for t in texts {
            cache
                .put("p", &request(t), 0, &answer(t))
                .await
                .expect("put");
        }
        drop(cache);
        let mut new: Vec<PathBuf> = segments(dir)
            .into_iter()
            .filter(|s| !before.contains(s))
            .collect();
        assert_eq!(new.len(), 1, "one segment per run");
        new.remove(0)
    }

    #[tokio::test]
    async fn stores_and_finds_answers_by_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::new(dir.path());
        assert_eq!(cache.get("p", &request("hi"), 0).await, None);
        cache
            .put("p", &request("hi"), 0, &answer("hello"))
            .await
            .expect("put");
        let long = answer(&"x".repeat(WRITE_BYTES));
        cache
            .put("p", &request("long"), 0, &long)
            .await
            .expect("put");
        // Later in the same run (in the file and still in memory), and in the next one.
        assert_eq!(
            cache.get("p", &request("hi"), 0).await,
            Some(answer("hello"))
        );
        cache
            .put("p", &request("ho"), 0, &answer("hey"))
            .await
            .expect("put");
        assert_eq!(cache.get("p", &request("ho"), 0).await, Some(answer("hey")));
        assert_eq!(cache.get("p", &request("long"), 0).await, Some(long));
        drop(cache);
        let cache = Cache::new(dir.path());
        assert_eq!(
            cache.get("p", &request("hi"), 0).await,
            Some(answer("hello"))
        );
        assert_eq!(cache.get("p", &request("hi"), 1).await, None);
        assert_eq!(cache.get("q", &request("hi"), 0).await, None);
        assert_eq!(cache.get("p", &request("hu"), 0).await, None);
        assert_eq!(cache.get("p", &request("ho"), 0).await, Some(answer("hey")));
    }

    #[tokio::test]
    async fn a_run_reads_the_index_at_the_end_of_a_segment_not_its_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = run_writing(dir.path(), &["a", "b"]).await;
        // Records no scan would find: the index alone says where the answers are.
        let mut bytes = std::fs::read(&segment).expect("read");
        bytes[..4].copy_from_slice(b"XXXX");
        std::fs::write(&segment, &bytes).expect("write");
        let index = Index::load(&dir.path().join(LAYOUT));
        assert_eq!(index.entries.len(), 2);
        let cache = Cache::new(dir.path());
        assert_eq!(cache.get("p", &request("a"), 0).await, None, "damaged");
        assert_eq!(cache.get("p", &request("b"), 0).await, Some(answer("b")));
    }

    /// Records are not synced one by one: after a crash a segment may be cut anywhere,
    /// or end in zeros. What was whole before the cut reads back; nothing after it is
    /// a hit, and none reads as another answer.
    #[tokio::test]
    async fn a_segment_a_crash_cut_short_anywhere_loses_only_its_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let texts = ["one", "two", "three"];
        let segment = run_writing(dir.path(), &texts).await;
        let whole = std::fs::read(&segment).expect("read");
        let mut ends = Vec::new();
        let mut end = 0;
        for t in texts {
            end += HEADER + serde_json::to_vec(&answer(t)).expect("json").len();
            ends.push(end);
        }
        for cut in 0..whole.len() {
            for zeroed in [false, true] {
                let mut bytes = whole.clone();
                if zeroed {
                    bytes[cut..].fill(0);
                } else {
                    bytes.truncate(cut);
                }
                std::fs::write(&segment, &bytes).expect("write");
                let cache = Cache::new(dir.path());
                for (t, end) in texts.iter().zip(&ends) {
                    let want = (*end <= cut).then(|| answer(t));
                    let got = cache.get("p", &request(t), 0).await;
                    assert_eq!(got, want, "{t}, cut at {cut}, zeroed {zeroed}");
                }
            }
        }
    }

    /// A record damaged in place, with its segment's index whole: that one is a miss,
    /// the others still hit.
    #[tokio::test]
    async fn a_damaged_record_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = run_writing(dir.path(), &["one", "two"]).await;
        let whole = std::fs::read(&segment).expect("read");
        let first = HEADER + serde_json::to_vec(&answer("one")).expect("json").len();
        for at in 0..first {
            let mut bytes = whole.clone();
            bytes[at] ^= 0x20;
            std::fs::write(&segment, &bytes).expect("write");
            let cache = Cache::new(dir.path());
            assert_eq!(cache.get("p", &request("one"), 0).await, None, "at {at}");
            assert_eq!(
                cache.get("p", &request("two"), 0).await,
                Some(answer("two"))
            );
        }
    }

    /// An index (or a poisoned cache) that sends a key to another key's record: the
    /// record's own key decides, so a changed prompt never meets an old answer.
    #[tokio::test]
    async fn a_record_under_another_key_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = run_writing(dir.path(), &["old prompt", "other"]).await;
        let whole = std::fs::read(&segment).expect("read");
        let first = HEADER
            + serde_json::to_vec(&answer("old prompt"))
                .expect("json")
                .len();
        let second = HEADER + serde_json::to_vec(&answer("other")).expect("json").len();
        let records = &whole[..first + second];
        let key = |t: &str| Cache::key("p", &request(t), 0);
        // The new prompt's key pointing at the old prompt's answer, the other key at
        // a record whose checksum was made for another key.
        let mut forged = records.to_vec();
        forged[first + 8..first + 40].copy_from_slice(&key("new prompt"));
        forged.extend(index_bytes(
            &[
                (key("new prompt"), 0, (first - HEADER) as u32),
                (key("other"), first as u64, (second - HEADER) as u32),
            ],
            (first + second) as u64,
        ));
        std::fs::write(&segment, &forged).expect("write");
        let cache = Cache::new(dir.path());
        assert_eq!(cache.get("p", &request("new prompt"), 0).await, None);
        assert_eq!(cache.get("p", &request("other"), 0).await, None);
        assert_eq!(cache.get("p", &request("old prompt"), 0).await, None);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_named_pipe_as_a_segment_is_skipped_without_waiting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pipe = dir.path().join(LAYOUT).join("1-1-0.seg");
        std::fs::create_dir_all(pipe.parent().expect("dir")).expect("mkdir");
        let made = std::process::Command::new("mkfifo").arg(&pipe).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let cache = Cache::new(dir.path());
        let got = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            cache.get("p", &request("hi"), 0),
        )
        .await;
        if got.is_err() {
            // Let the stuck open go, so the runtime can stop.
            drop(std::fs::OpenOptions::new().write(true).open(&pipe));
            panic!("the lookup waited on the named pipe");
        }
        assert_eq!(got.ok().flatten(), None);
        cache
            .put("p", &request("hi"), 0, &answer("hello"))
            .await
            .expect("put");
        drop(cache);
        let cache = Cache::new(dir.path());
        assert_eq!(
            cache.get("p", &request("hi"), 0).await,
            Some(answer("hello"))
        );
    }

    #[tokio::test]
    async fn an_entry_with_nothing_in_it_is_a_miss_and_a_refusal_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        // As an earlier version cached a `content: null` answer.
        let empty = br#"{"text":"","usage":null,"finish_reason":"stop"}"#;
        let key = Cache::key("p", &request("hi"), 0);
        let mut segment = record_bytes(&key, empty).expect("record");
        let end = segment.len() as u64;
        segment.extend(index_bytes(&[(key, 0, empty.len() as u32)], end));
        std::fs::create_dir_all(dir.path().join(LAYOUT)).expect("mkdir");
        std::fs::write(dir.path().join(LAYOUT).join("0-0-0.seg"), segment).expect("write");
        let cache = Cache::new(dir.path());
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
        drop(cache);
        let stored: Vec<String> = segments(dir.path())
            .iter()
            .map(|s| String::from_utf8_lossy(&std::fs::read(s).expect("read")).into_owned())
            .collect();
        assert!(
            stored.iter().any(|s| s.contains(r#""refusal":true"#)),
            "{stored:?}"
        );
        let cache = Cache::new(dir.path());
        assert_eq!(cache.get("p", &request("hi"), 0).await, Some(refusal));
    }

    /// Two runs sharing a cache directory, writing at the same time (the same answer
    /// too): each appends to a segment of its own, and every answer of both reads back.
    #[tokio::test]
    async fn two_runs_writing_one_cache_each_keep_every_answer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (Cache::new(dir.path()), Cache::new(dir.path()));
        let long = answer(&"x".repeat(100_000));
        let mut writes = Vec::new();
        for i in 0..16 {
            for (run, cache) in [("a", &a), ("b", &b)] {
                let cache = cache.clone();
                let (text, long) = (format!("{run}{i}"), long.clone());
                writes.push(tokio::spawn(async move {
                    cache.put("p", &request(&text), 0, &answer(&text)).await?;
                    cache.put("p", &request("shared"), 0, &long).await
                }));
            }
        }
        for w in writes {
            w.await.expect("join").expect("put");
        }
        drop((a, b));
        assert_eq!(segments(dir.path()).len(), 2, "one segment per run");
        let cache = Cache::new(dir.path());
        for i in 0..16 {
            for run in ["a", "b"] {
                let text = format!("{run}{i}");
                assert_eq!(
                    cache.get("p", &request(&text), 0).await,
                    Some(answer(&text))
                );
            }
        }
        assert_eq!(cache.get("p", &request("shared"), 0).await, Some(long));
    }

    fn age(path: &Path, age_s: u64) {
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(age_s);
        File::options()
            .append(true)
            .open(path)
            .and_then(|f| f.set_modified(when))
            .expect("set mtime");
    }

    fn mtime(path: &Path) -> std::time::SystemTime {
        std::fs::metadata(path)
            .and_then(|m| m.modified())
            .expect("mtime")
    }

    /// A file of an older layout (or anything else) under `dir`, `age_s` seconds old.
    fn stale(dir: &Path, name: &str, len: usize, age_s: u64) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, vec![b'x'; len]).expect("write");
        age(&path, age_s);
        path
    }

    #[tokio::test]
    async fn pruning_removes_whole_segments_used_longest_ago_down_to_the_cap() {
        let dir = tempfile::tempdir().expect("tempdir");
        let old = run_writing(dir.path(), &["a", "b"]).await;
        let older = run_writing(dir.path(), &["c"]).await;
        let recent = run_writing(dir.path(), &["d", "e", "f"]).await;
        age(&old, 300);
        age(&older, 400);
        age(&recent, 10);
        let v1 = stale(dir.path(), "v1/aa/aa01.json", 100, 1);
        let left = stale(dir.path(), "v1/aa/.aa03.json.1.2.tmp", 100, 1);
        let size = |p: &Path| std::fs::metadata(p).expect("stat").len();
        let (old_len, older_len, recent_len) = (size(&old), size(&older), size(&recent));
        let all = old_len + older_len + recent_len + 200;
        // Under the cap: nothing goes.
        assert_eq!(
            prune(dir.path(), all),
            Pruned {
                kept: 8,
                kept_bytes: all,
                removed: 0,
                removed_bytes: 0
            }
        );
        let done = prune(dir.path(), recent_len + old_len);
        assert!(!v1.exists() && !left.exists(), "older layouts first");
        assert!(!older.exists(), "then the segment used longest ago");
        assert!(old.exists() && recent.exists());
        assert_eq!(
            done,
            Pruned {
                kept: 5,
                kept_bytes: recent_len + old_len,
                removed: 3,
                removed_bytes: older_len + 200
            }
        );
        let cache = Cache::new(dir.path());
        assert_eq!(cache.get("p", &request("c"), 0).await, None);
        assert_eq!(cache.get("p", &request("a"), 0).await, Some(answer("a")));
        // A missing directory is an empty cache.
        assert_eq!(prune(&dir.path().join("none"), 0), Pruned::default());
    }

    /// A hit marks its segment used (once a run), so pruning keeps it over a segment
    /// written later but not read since.
    #[tokio::test]
    async fn a_hit_marks_its_segment_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let read = run_writing(dir.path(), &["base"]).await;
        let unread = run_writing(dir.path(), &["head"]).await;
        age(&read, 3600);
        age(&unread, 1800);
        let cache = Cache::new(dir.path());
        assert!(cache.get("p", &request("base"), 0).await.is_some());
        let touched = mtime(&read);
        assert!(
            touched > mtime(&unread),
            "the hit did not touch its segment"
        );
        // Once a run: the next hit from it does not write again.
        age(&read, 3600);
        assert!(cache.get("p", &request("base"), 0).await.is_some());
        assert!(mtime(&read) < mtime(&unread), "touched twice in one run");
        drop(cache);
        let cache = Cache::new(dir.path());
        assert!(cache.get("p", &request("base"), 0).await.is_some());
        prune(dir.path(), std::fs::metadata(&read).expect("stat").len());
        assert!(read.exists() && !unread.exists());
    }
}
