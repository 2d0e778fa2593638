//! The directories wjit gives a program: wasi-common's `cap-std` directories, read-only when
//! asked, and with `O_TRUNC | O_APPEND` opens that work.

use std::any::Any;
use std::path::PathBuf;

use wasi_common::dir::{OpenResult, ReaddirCursor, ReaddirEntity, WasiDir};
use wasi_common::file::{FdFlags, Filestat, OFlags};
use wasi_common::{Error, ErrorExt, SystemTimeSpec};

/// Wraps a directory. When `read_only`, reads pass through and every change fails with
/// `EPERM`. Directories opened under it are wrapped the same way.
pub(crate) struct WjitDir {
    pub(crate) inner: Box<dyn WasiDir>,
    pub(crate) read_only: bool,
}

impl WjitDir {
    fn check_writable(&self) -> Result<(), Error> {
        if self.read_only {
            Err(Error::perm())
        } else {
            Ok(())
        }
    }

    /// The inner directory of a destination of `rename` or `hard_link`, if it may be changed.
    fn writable_dest<'a>(&self, dest: &'a dyn WasiDir) -> Result<&'a dyn WasiDir, Error> {
        let dest = dest
            .as_any()
            .downcast_ref::<WjitDir>()
            .ok_or_else(Error::badf)?;
        dest.check_writable()?;
        Ok(&*dest.inner)
    }
}

#[async_trait::async_trait]
impl WasiDir for WjitDir {
    fn as_any(&self) -> &dyn Any {
        self
    }

    async fn open_file(
        &self,
        symlink_follow: bool,
        path: &str,
        oflags: OFlags,
        read: bool,
        write: bool,
        fdflags: FdFlags,
    ) -> Result<OpenResult, Error> {
        if write || oflags.intersects(OFlags::CREATE | OFlags::TRUNCATE) {
            self.check_writable()?;
        }
        // cap-std (like std's OpenOptions) refuses truncate together with append, which
        // POSIX allows (`O_TRUNC | O_APPEND`): open without append, then set it.
        let append_later = oflags.contains(OFlags::TRUNCATE) && fdflags.contains(FdFlags::APPEND);
        let open_flags = if append_later {
            fdflags - FdFlags::APPEND
        } else {
            fdflags
        };
        match self
            .inner
            .open_file(symlink_follow, path, oflags, read, write, open_flags)
            .await?
        {
            OpenResult::Dir(d) => Ok(OpenResult::Dir(Box::new(WjitDir {
                inner: d,
                read_only: self.read_only,
            }))),
            OpenResult::File(mut f) => {
                if append_later {
                    let flags = f.get_fdflags().await? | FdFlags::APPEND;
                    f.set_fdflags(flags).await?;
                }
                Ok(OpenResult::File(f))
            }
        }
    }

    async fn create_dir(&self, path: &str) -> Result<(), Error> {
        self.check_writable()?;
        self.inner.create_dir(path).await
    }

    async fn readdir(
        &self,
        cursor: ReaddirCursor,
    ) -> Result<Box<dyn Iterator<Item = Result<ReaddirEntity, Error>> + Send>, Error> {
        self.inner.readdir(cursor).await
    }

    async fn symlink(&self, old_path: &str, new_path: &str) -> Result<(), Error> {
        self.check_writable()?;
        self.inner.symlink(old_path, new_path).await
    }

    async fn remove_dir(&self, path: &str) -> Result<(), Error> {
        self.check_writable()?;
        self.inner.remove_dir(path).await
    }

    async fn unlink_file(&self, path: &str) -> Result<(), Error> {
        self.check_writable()?;
        self.inner.unlink_file(path).await
    }

    async fn read_link(&self, path: &str) -> Result<PathBuf, Error> {
        self.inner.read_link(path).await
    }

    async fn get_filestat(&self) -> Result<Filestat, Error> {
        self.inner.get_filestat().await
    }

    async fn get_path_filestat(
        &self,
        path: &str,
        follow_symlinks: bool,
    ) -> Result<Filestat, Error> {
        self.inner.get_path_filestat(path, follow_symlinks).await
    }

    async fn rename(
        &self,
        path: &str,
        dest_dir: &dyn WasiDir,
        dest_path: &str,
    ) -> Result<(), Error> {
        self.check_writable()?;
        let dest = self.writable_dest(dest_dir)?;
        self.inner.rename(path, dest, dest_path).await
    }

    async fn hard_link(
        &self,
        path: &str,
        target_dir: &dyn WasiDir,
        target_path: &str,
    ) -> Result<(), Error> {
        self.check_writable()?;
        let target = self.writable_dest(target_dir)?;
        self.inner.hard_link(path, target, target_path).await
    }

    async fn set_times(
        &self,
        path: &str,
        atime: Option<SystemTimeSpec>,
        mtime: Option<SystemTimeSpec>,
        follow_symlinks: bool,
    ) -> Result<(), Error> {
        self.check_writable()?;
        self.inner
            .set_times(path, atime, mtime, follow_symlinks)
            .await
    }
}
