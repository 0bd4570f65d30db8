//! Tells a live store instance from a dead one, so that opening a store marks
//! as interrupted only the runs whose writer is really gone.
//!
//! Each open `Store` holds an exclusive OS lock (`flock`) on its own file
//! `<dir>/store-instances/<id>.lock` and stamps the runs it creates with that id.
//! The kernel drops the lock when the process dies, however it dies, so a
//! later open that can take the lock knows the owner is gone. A second
//! process reading the same store (say `sandbar runs list` beside a running
//! `sandbar run`) finds the lock held and leaves the live runs alone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

/// The lock held by this store instance for as long as it is open.
#[derive(Debug)]
pub struct InstanceLock {
    id: String,
    path: PathBuf,
    // Kept open to hold the lock; closing it releases the lock.
    _file: File,
}

/// What a lock file says about the instance that made it.
#[derive(Debug, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead,
    /// The lock file could not be examined; the owner is assumed alive so
    /// that a live run is never marked interrupted by mistake.
    Unknown,
}

pub(crate) fn instances_dir(dir: &Path) -> PathBuf {
    dir.join("store-instances")
}

/// Owner ids come from the database, so they are checked before being used
/// in a path: only the characters of a UUID are accepted.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

impl InstanceLock {
    /// Creates and locks this instance's lock file.
    ///
    /// The file is created and locked under a temporary name and only then
    /// renamed into place, so another instance scanning for dead owners can
    /// never find a `.lock` file that is not yet locked.
    pub fn acquire(dir: &Path) -> io::Result<InstanceLock> {
        let id = uuid::Uuid::new_v4().to_string();
        let instances = instances_dir(dir);
        std::fs::create_dir_all(&instances)?;
        let tmp = instances.join(format!("{id}.tmp"));
        let path = instances.join(format!("{id}.lock"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => {
                io::Error::other("a fresh lock file is locked by someone else")
            }
        })?;
        std::fs::rename(&tmp, &path)?;
        Ok(InstanceLock {
            id,
            path,
            _file: file,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Removes the lock file on a clean close. The lock itself goes when the
    /// file handle is dropped.
    pub fn remove(&self) {
        // Another process may already have swept the file between our unlock
        // and this removal; that is the outcome we wanted.
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %e, "could not remove the store instance lock file");
        }
    }
}

/// Finds out whether the instance `id` still holds its lock. A dead
/// instance's lock file is removed once it has been examined.
pub fn liveness(dir: &Path, id: &str) -> Liveness {
    if !valid_id(id) {
        // Not written by this code, so no live instance can hold it.
        return Liveness::Dead;
    }
    let path = instances_dir(dir).join(format!("{id}.lock"));
    let file = match OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => file,
        // A clean close removes the file; a missing file means the owner is gone.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Liveness::Dead,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "could not open a store instance lock file");
            return Liveness::Unknown;
        }
    };
    match file.try_lock() {
        Ok(()) => {
            // Removing the file while holding its lock is safe: its owner is
            // dead, and no new instance ever reuses an id.
            let _ = std::fs::remove_file(&path);
            Liveness::Dead
        }
        Err(TryLockError::WouldBlock) => Liveness::Alive,
        Err(TryLockError::Error(e)) => {
            tracing::warn!(path = %path.display(), error = %e, "could not test a store instance lock");
            Liveness::Unknown
        }
    }
}

/// Removes the lock files of instances that are gone, such as processes
/// killed after their runs had ended. Only `.lock` files are considered: a
/// file reaches that name already locked, so a lock that can be taken
/// belongs to a dead instance.
pub fn remove_dead(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(instances_dir(dir)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".lock")) else {
            continue;
        };
        // `liveness` removes the file of a dead instance.
        liveness(dir, id);
    }
}

#[cfg(test)]
// Tests fail by panicking; unwrapping is how they say so.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_alive_and_a_dropped_one_is_dead() {
        let dir = tempfile::tempdir().unwrap();
        let lock = InstanceLock::acquire(dir.path()).unwrap();
        let id = lock.id().to_owned();
        assert_eq!(liveness(dir.path(), &id), Liveness::Alive);
        drop(lock);
        assert_eq!(liveness(dir.path(), &id), Liveness::Dead);
        // The dead instance's file was cleaned up.
        assert!(
            !instances_dir(dir.path())
                .join(format!("{id}.lock"))
                .exists()
        );
    }

    #[test]
    fn dead_instances_lock_files_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let live = InstanceLock::acquire(dir.path()).unwrap();
        let dead = InstanceLock::acquire(dir.path()).unwrap();
        let dead_path = dead.path.clone();
        drop(dead);
        remove_dead(dir.path());
        assert!(live.path.exists());
        assert!(!dead_path.exists());
    }

    #[test]
    fn a_removed_lock_is_dead_and_odd_ids_never_touch_the_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let lock = InstanceLock::acquire(dir.path()).unwrap();
        lock.remove();
        assert_eq!(liveness(dir.path(), lock.id()), Liveness::Dead);
        for id in ["", "../sandbar", "a/b", &"f".repeat(65)] {
            assert_eq!(liveness(dir.path(), id), Liveness::Dead, "{id}");
        }
    }
}
