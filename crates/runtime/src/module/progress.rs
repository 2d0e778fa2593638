//! Progress of `Module::new`'s per-function work, reported to the caller's callback
//! (see `Module::new_with_progress`).

use std::sync::{Mutex, PoisonError};

/// Counts finished function bodies, from any thread, and reports each count in order.
pub(crate) struct Progress<'a> {
    total: usize,
    /// Bodies done so far; the callback runs under this lock, so counts arrive in order.
    done: Mutex<usize>,
    callback: Option<&'a (dyn Fn(usize, usize) + Sync)>,
}

impl<'a> Progress<'a> {
    /// Progress over `total` bodies, reported to `callback` if there is one.
    pub fn new(total: usize, callback: Option<&'a (dyn Fn(usize, usize) + Sync)>) -> Self {
        Progress {
            total,
            done: Mutex::new(0),
            callback,
        }
    }

    /// One more body is done.
    pub fn advance(&self) {
        if let Some(callback) = self.callback {
            let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
            *done = (*done + 1).min(self.total);
            callback(*done, self.total);
        }
    }
}
