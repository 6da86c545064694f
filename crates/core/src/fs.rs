//! Crash-safe file writes: every file of run data, fixtures or checkpoints is written to a
//! temporary file in the same directory, synced, then renamed over its destination, so a
//! reader sees either the old file or the whole new one, never a torn write.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A write that failed, naming the destination file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct WriteError {
    /// The file that was being written.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: std::io::Error,
}

/// The temporary file beside `path` that an atomic write goes through.
fn temp_path(path: &Path) -> PathBuf {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let dir: PathBuf = dir.map(Path::to_path_buf).unwrap_or_else(|| ".".into());
    let file_name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{file_name}.tmp{}", std::process::id()))
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, synced, then
/// renamed over `path`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    replace_with(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)
    })
}

/// Atomically replaces `path` with what `write` puts into the temporary path it is given (for
/// writers that insist on a path of their own, such as safetensors). The temporary file is
/// synced before the rename and removed if anything fails.
pub fn replace_with(
    path: &Path,
    write: impl FnOnce(&Path) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    let tmp = temp_path(path);
    let res = (|| -> std::io::Result<()> {
        write(&tmp)?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(|source| WriteError {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two, longer").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two, longer");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.bin");
        write_atomic(&p, b"old").unwrap();
        let err = replace_with(&p, |_| Err(std::io::Error::other("disk full"))).unwrap_err();
        assert!(err.to_string().contains("b.bin"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("no/such/dir/c.txt");
        let err = write_atomic(&p, b"x").unwrap_err();
        assert!(err.to_string().contains("c.txt"), "{err}");
    }
}
