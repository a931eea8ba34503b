//! Objects read straight from a repository's pack files, keeping every delta base
//! inflated on the way.
//!
//! gitoxide caches the objects it is asked for, not the bases it inflates to build
//! them. In a packed clone an artifact sits at the end of a delta chain through other,
//! similar files (git allows 50 links), and the artifacts of one pull request share most
//! of those links: in the `changes` benchmark the 100 artifact versions of a pull
//! request take 111 inflations this way against 335 through gitoxide's cache. Whatever
//! this reader does not handle (loose objects, alternates, a base outside the pack, an
//! entry it cannot read) it declines, and the caller asks gitoxide.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use gix::ObjectId;
use gix::odb::pack::Bundle;
use gix::odb::pack::data::entry::Header;

/// Bytes of inflated objects kept; past it the cache starts over.
const CACHE_BYTES: usize = 64 << 20;
/// Longer chains are left to gitoxide (git writes at most 4095).
const MAX_CHAIN: usize = 4096;

thread_local! {
    /// Setting up an inflater (about 15,000 instructions, most of it zeroing its state)
    /// costs more than inflating a small object, so each thread keeps one.
    static ZLIB: RefCell<gix::zlib::Inflate> = RefCell::new(gix::zlib::Inflate::default());
}

/// The pack files of one repository and the objects inflated from them so far.
pub(super) struct Packs {
    bundles: Vec<Bundle>,
    kept: Mutex<Kept>,
}

/// An object's kind and content.
type Inflated = (gix::object::Kind, Arc<[u8]>);

#[derive(Default)]
struct Kept {
    /// By (bundle, pack offset of the entry).
    objects: HashMap<(usize, u64), Inflated>,
    bytes: usize,
}

/// What [`Packs::find`] found.
pub(super) enum Found {
    Object(gix::object::Kind, Arc<[u8]>),
    /// An object of this many bytes, over the limit it was looked for with.
    TooLarge(u64),
}

impl Packs {
    /// The packs under `objects/pack`; none when there are none or they do not open.
    pub(super) fn open(objects: &Path, hash: gix::hash::Kind) -> Packs {
        let bundles = std::fs::read_dir(objects.join("pack"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "idx"))
            .filter_map(|idx| Bundle::at(&idx, hash).ok())
            .collect();
        Packs {
            bundles,
            kept: Mutex::default(),
        }
    }

    /// The object `id`, or `None` when this reader cannot take it from the packs. An
    /// object over `limit` bytes is measured, not built; one built from a larger base is
    /// left to gitoxide.
    pub(super) fn find(&self, id: &ObjectId, limit: u64) -> Option<Found> {
        let (index, bundle, offset) =
            self.bundles
                .iter()
                .enumerate()
                .find_map(|(index, bundle)| {
                    let entry = bundle.index.lookup(id)?;
                    Some((index, bundle, bundle.index.pack_offset_at_index(entry)))
                })?;
        self.object(index, bundle, offset, limit)
    }

    fn object(&self, index: usize, bundle: &Bundle, offset: u64, limit: u64) -> Option<Found> {
        if let Some((kind, data)) = self.kept(index, offset) {
            return Some(match data.len() as u64 {
                size if size > limit => Found::TooLarge(size),
                _ => Found::Object(kind, data),
            });
        }
        ZLIB.with_borrow_mut(|zlib| self.build(index, bundle, offset, limit, zlib))
    }

    fn build(
        &self,
        index: usize,
        bundle: &Bundle,
        offset: u64,
        limit: u64,
        zlib: &mut gix::zlib::Inflate,
    ) -> Option<Found> {
        let pack = &bundle.pack;
        let mut inflate = |entry: &gix::odb::pack::data::Entry| inflate(bundle, entry, zlib, limit);
        let requested = pack.entry(offset).ok()?;
        // The size of the object is known before any of it is built: a whole object's
        // from its entry, a delta's from the delta's first bytes.
        let mut first_delta = None;
        if requested.header.is_delta() {
            let delta = inflate(&requested)?;
            let size = result_size(&delta)?;
            if size > limit {
                return Some(Found::TooLarge(size));
            }
            first_delta = Some(delta);
        } else if requested.decompressed_size > limit {
            return Some(Found::TooLarge(requested.decompressed_size));
        }
        // Down the chain to an object already inflated or stored whole.
        let mut deltas = Vec::new();
        let mut at = offset;
        let (kind, mut data) = loop {
            if let Some(hit) = self.kept(index, at) {
                break hit;
            }
            let entry = pack.entry(at).ok()?;
            let next = match entry.header {
                Header::OfsDelta { base_distance } => {
                    entry.checked_base_pack_offset(base_distance)?
                }
                Header::RefDelta { base_id } => bundle
                    .index
                    .pack_offset_at_index(bundle.index.lookup(base_id)?),
                whole => {
                    let kind = whole.as_kind()?;
                    let data: Arc<[u8]> = inflate(&entry)?.into();
                    self.keep(index, at, kind, &data);
                    break (kind, data);
                }
            };
            deltas.push(entry);
            if deltas.len() > MAX_CHAIN {
                return None;
            }
            at = next;
        };
        // Back up, applying each delta to the object below it.
        for entry in deltas.iter().rev() {
            let delta = match entry.pack_offset() == offset {
                true => first_delta.take()?,
                false => inflate(entry)?,
            };
            if result_size(&delta)? > limit {
                return None;
            }
            data = apply(&data, &delta)?.into();
            self.keep(index, entry.pack_offset(), kind, &data);
        }
        Some(Found::Object(kind, data))
    }

    fn kept(&self, index: usize, offset: u64) -> Option<Inflated> {
        let kept = self.kept.lock().ok()?;
        kept.objects.get(&(index, offset)).cloned()
    }

    fn keep(&self, index: usize, offset: u64, kind: gix::object::Kind, data: &Arc<[u8]>) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        if kept.bytes + data.len() > CACHE_BYTES {
            *kept = Kept::default();
        }
        if data.len() <= CACHE_BYTES {
            kept.bytes += data.len();
            kept.objects.insert((index, offset), (kind, data.clone()));
        }
    }
}

/// An entry's data as stored (a whole object or a delta), if not over `limit` bytes.
fn inflate(
    bundle: &Bundle,
    entry: &gix::odb::pack::data::Entry,
    zlib: &mut gix::zlib::Inflate,
    limit: u64,
) -> Option<Vec<u8>> {
    if entry.decompressed_size > limit {
        return None;
    }
    let mut out = vec![0; usize::try_from(entry.decompressed_size).ok()?];
    bundle.pack.decompress_entry(entry, zlib, &mut out).ok()?;
    Some(out)
}

/// A size at the start of a delta: seven bits a byte, low bits first.
fn size(delta: &[u8], at: &mut usize) -> Option<u64> {
    let mut size = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *delta.get(*at)?;
        *at += 1;
        size |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(size);
        }
    }
    None
}

/// The size of the object a delta builds.
fn result_size(delta: &[u8]) -> Option<u64> {
    let mut at = 0;
    size(delta, &mut at)?;
    size(delta, &mut at)
}

/// The object `delta` builds from `base`: git's delta format, a base size and a result
/// size, then instructions that copy a range of the base or insert the bytes that follow.
/// `None` for a delta that does not fit its base.
fn apply(base: &[u8], delta: &[u8]) -> Option<Vec<u8>> {
    let mut at = 0;
    if usize::try_from(size(delta, &mut at)?).ok()? != base.len() {
        return None;
    }
    let expected = usize::try_from(size(delta, &mut at)?).ok()?;
    let mut out = Vec::with_capacity(expected);
    while let Some(&op) = delta.get(at) {
        at += 1;
        if op & 0x80 != 0 {
            let mut field = |bits: u8, shifts: &[u32]| -> Option<usize> {
                let mut value = 0usize;
                for (bit, shift) in shifts.iter().enumerate() {
                    if bits & (1 << bit) != 0 {
                        value |= usize::from(*delta.get(at)?) << shift;
                        at += 1;
                    }
                }
                Some(value)
            };
            let offset = field(op & 0x0f, &[0, 8, 16, 24])?;
            let len = match field((op >> 4) & 0x07, &[0, 8, 16])? {
                0 => 0x10000,
                len => len,
            };
            out.extend_from_slice(base.get(offset..offset.checked_add(len)?)?);
        } else if op != 0 {
            let len = usize::from(op);
            out.extend_from_slice(delta.get(at..at + len)?);
            at += len;
        } else {
            return None;
        }
        if out.len() > expected {
            return None;
        }
    }
    (out.len() == expected).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_copies_and_inserts() {
        let base = b"hello, world";
        // Sizes 12 and 15; copy 7 bytes from 0, insert "you", copy 5 bytes from 7.
        let delta = [12, 15, 0x90, 7, 3, b'y', b'o', b'u', 0x91, 7, 5];
        assert_eq!(
            apply(base, &delta).as_deref(),
            Some(&b"hello, youworld"[..])
        );
    }

    #[test]
    fn refuses_deltas_that_do_not_fit() {
        let base = b"hello";
        // Wrong base size.
        assert_eq!(apply(base, &[4, 1, 1, b'x']), None);
        // A copy past the end of the base.
        assert_eq!(apply(base, &[5, 3, 0x91, 4, 3]), None);
        // An insert past the end of the delta.
        assert_eq!(apply(base, &[5, 3, 3, b'a']), None);
        // The reserved instruction 0.
        assert_eq!(apply(base, &[5, 1, 0]), None);
        // More than the result size says, or less.
        assert_eq!(apply(base, &[5, 1, 2, b'a', b'b']), None);
        assert_eq!(apply(base, &[5, 3, 1, b'a']), None);
        // A size that never ends.
        assert_eq!(result_size(&[0x80; 12]), None);
    }

    #[test]
    fn a_copy_of_size_zero_means_64_kib() {
        let base = vec![7u8; 0x10000];
        let delta = [0x80, 0x80, 0x04, 0x80, 0x80, 0x04, 0x80];
        assert_eq!(apply(&base, &delta), Some(base.clone()));
    }
}

#[cfg(test)]
mod packed_repository {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Every blob of a repository packed into long delta chains reads the same here as
    /// through gitoxide, in any order, and an object over the limit is only measured.
    #[test]
    fn reads_every_blob_as_gitoxide_does() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dir = dir.path();
        git(dir, &["init", "-q", "-b", "main"]);
        for round in 0..6 {
            for i in 0..30 {
                // Similar files, each version different: long chains of small deltas.
                let lines: String = (0..40)
                    .map(|l| match l == (i + round) % 40 {
                        true => format!("file {i}, round {round}\n"),
                        false => format!("line {l}: the same text in every file\n"),
                    })
                    .collect();
                std::fs::write(dir.join(format!("f{i:02}.txt")), lines).expect("write");
            }
            git(dir, &["add", "-A"]);
            git(dir, &["commit", "-q", "-m", &format!("round {round}")]);
        }
        git(dir, &["repack", "-adfq", "--depth=50", "--window=250"]);
        let listed = git(dir, &["cat-file", "--batch-all-objects", "--batch-check"]);
        let blobs: Vec<ObjectId> = listed
            .lines()
            .filter(|l| l.contains(" blob "))
            .map(|l| ObjectId::from_hex(&l.as_bytes()[..40]).expect("object id"))
            .collect();
        assert!(blobs.len() > 100, "{}", blobs.len());

        let repo = gix::open(dir).expect("repository");
        let open = || Packs::open(repo.objects.store_ref().path(), repo.object_hash());
        let read = open();
        for order in [blobs.clone(), blobs.iter().rev().copied().collect()] {
            let packs = open();
            for id in &order {
                let expected = repo.find_blob(*id).expect("gitoxide reads it").data.clone();
                for packs in [&packs, &read] {
                    match packs.find(id, MAX_FILE) {
                        Some(Found::Object(gix::object::Kind::Blob, data)) => {
                            assert_eq!(*data, *expected, "{id}")
                        }
                        _ => panic!("{id} not read from the pack"),
                    }
                }
            }
        }
        // Over the limit, whether already kept or not.
        let mut deltified = 0;
        for id in &blobs {
            let header = repo.find_header(*id).expect("header");
            deltified += usize::from(header.num_deltas().unwrap_or(0) > 0);
            for packs in [&open(), &read] {
                match packs.find(id, 100) {
                    Some(Found::TooLarge(size)) => assert_eq!(size, header.size(), "{id}"),
                    _ => panic!("{id} is over 100 bytes"),
                }
            }
        }
        assert!(
            deltified > blobs.len() / 2,
            "{deltified} of {}",
            blobs.len()
        );
        // Other kinds come with their kind.
        let commit = repo.head_id().expect("head").detach();
        assert!(matches!(
            read.find(&commit, MAX_FILE),
            Some(Found::Object(gix::object::Kind::Commit, _))
        ));
        // Not in the packs: declined.
        assert!(
            read.find(&ObjectId::null(gix::hash::Kind::Sha1), MAX_FILE)
                .is_none()
        );
    }

    const MAX_FILE: u64 = 1 << 20;
}
