//! The host's stdin as a WASI file.

use std::any::Any;
use std::io::IoSliceMut;

use wasi_common::file::{FileType, WasiFile};
use wasi_common::{Error, SystemTimeSpec};

/// wasi-common's stdin, except that `poll_oneoff` on a stdin that cannot count its ready bytes
/// (`FIONREAD` on `/dev/null` fails with `ENOTTY`) reports it readable instead of failing
/// the whole call with a host error.
pub(crate) struct Stdin(pub(crate) wasi_common::sync::stdio::Stdin);

#[async_trait::async_trait]
impl WasiFile for Stdin {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn pollable(&self) -> Option<rustix::fd::BorrowedFd<'_>> {
        self.0.pollable()
    }

    fn isatty(&self) -> bool {
        self.0.isatty()
    }

    async fn get_filetype(&self) -> Result<FileType, Error> {
        self.0.get_filetype().await
    }

    async fn read_vectored<'a>(&self, bufs: &mut [IoSliceMut<'a>]) -> Result<u64, Error> {
        self.0.read_vectored(bufs).await
    }

    async fn read_vectored_at<'a>(
        &self,
        bufs: &mut [IoSliceMut<'a>],
        offset: u64,
    ) -> Result<u64, Error> {
        self.0.read_vectored_at(bufs, offset).await
    }

    async fn seek(&self, pos: std::io::SeekFrom) -> Result<u64, Error> {
        self.0.seek(pos).await
    }

    async fn peek(&self, buf: &mut [u8]) -> Result<u64, Error> {
        self.0.peek(buf).await
    }

    async fn set_times(
        &self,
        atime: Option<SystemTimeSpec>,
        mtime: Option<SystemTimeSpec>,
    ) -> Result<(), Error> {
        self.0.set_times(atime, mtime).await
    }

    fn num_ready_bytes(&self) -> Result<u64, Error> {
        Ok(self.0.num_ready_bytes().unwrap_or(0))
    }
}
