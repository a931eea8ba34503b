//! A tree held in memory: for tests and for generated content.

use std::collections::BTreeMap;

use super::{ReadError, Tree};

#[derive(Debug, Clone, Default)]
pub struct MemTree {
    files: BTreeMap<String, Vec<u8>>,
}

impl MemTree {
    pub fn new() -> Self {
        MemTree::default()
    }

    pub fn with(mut self, path: &str, content: impl Into<Vec<u8>>) -> Self {
        self.insert(path, content);
        self
    }

    pub fn insert(&mut self, path: &str, content: impl Into<Vec<u8>>) {
        self.files.insert(path.to_string(), content.into());
    }
}

impl Tree for MemTree {
    fn read(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        if let Some(bytes) = self.files.get(path) {
            return Ok(bytes.clone());
        }
        let dir = format!("{path}/");
        if self.files.keys().any(|k| k.starts_with(&dir)) {
            return Err(ReadError::NotAFile(super::Special::Directory));
        }
        Err(ReadError::Missing)
    }

    fn list(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.files.keys().cloned().collect())
    }
}

/// A tree with one file's content replaced (or added): the repository as it would be
/// after a write, to check it before writing.
pub struct Overlay<'t> {
    base: &'t dyn Tree,
    path: String,
    content: Vec<u8>,
}

impl<'t> Overlay<'t> {
    pub fn new(base: &'t dyn Tree, path: &str, content: impl Into<Vec<u8>>) -> Self {
        Overlay {
            base,
            path: path.to_string(),
            content: content.into(),
        }
    }
}

impl Tree for Overlay<'_> {
    fn read(&self, path: &str) -> Result<Vec<u8>, ReadError> {
        if path == self.path {
            return Ok(self.content.clone());
        }
        self.base.read(path)
    }

    fn list(&self) -> anyhow::Result<Vec<String>> {
        let mut paths = self.base.list()?;
        if !paths.contains(&self.path) {
            paths.push(self.path.clone());
        }
        Ok(paths)
    }

    fn resolve(&self, path: &str) -> Option<String> {
        if path == self.path {
            return Some(path.to_string());
        }
        self.base.resolve(path)
    }
}
