//! [`Tag`] and [`ExnRef`]: the tags and exceptions of the exception-handling proposal, as
//! the host makes, throws and inspects them.

use crate::error::{Error, ThrownException};
use crate::handles::{ExnRef, StoreId, Tag};
use crate::store::{AsContext, AsContextMut, StoreOpaque};
use crate::types::TagType;
use crate::values::{raw_to_val, read_words, val_matches, val_to_raw, write_words, Val};
use crate::vm::exceptions::{exn_tag, VMTag};
use crate::vm::vmctx::Owned;

impl Tag {
    /// A new tag of type `ty` in `store`, distinct from every other tag (also from those
    /// of the same type).
    pub fn new(mut store: impl AsContextMut, ty: &TagType) -> Result<Tag, Error> {
        let store = &mut store.as_context_mut().0.opaque;
        if !ty.ty().results().is_empty() {
            return Err(Error::msg("a tag's function type must have no results"));
        }
        Ok(store.new_tag(ty.clone()))
    }

    /// The tag's type.
    pub fn ty(&self, store: impl AsContext) -> TagType {
        let store = &store.as_context().0.opaque;
        store.assert_owns(self.store);
        TagType::new(store.tags[self.index as usize].get().ty.clone())
    }
}

impl StoreOpaque {
    /// A new tag of type `ty`.
    pub(crate) fn new_tag(&mut self, ty: TagType) -> Tag {
        let index = self.tags.len() as u32;
        self.tags.push(Owned::new(VMTag {
            ty: ty.ty().clone(),
            store: self.id.0,
            index,
        }));
        Tag {
            store: self.id,
            index,
        }
    }

    /// The identity of `tag` (what generated code compares).
    pub(crate) fn tag_ptr(&self, tag: Tag) -> *const VMTag {
        self.tags[tag.index as usize].as_ptr()
    }

    /// Takes ownership of an exception object; returns its address.
    pub(crate) fn keep_exception(&mut self, object: Box<[u64]>) -> usize {
        let ptr = object.as_ptr() as usize;
        self.exceptions.push(object);
        ptr
    }

    /// The tag record of exception `exn` (which must be this store's).
    fn exn_tag(&self, exn: ExnRef) -> &VMTag {
        self.assert_owns(exn.store);
        // SAFETY: an `ExnRef` of this store points at one of its exception objects, which
        // live as long as the store, and whose tag is one of its tags.
        unsafe { &*exn_tag(exn.ptr) }
    }
}

impl ExnRef {
    /// A new exception of `tag` carrying `fields`, which must match the tag type's
    /// parameters.
    pub fn new(mut store: impl AsContextMut, tag: &Tag, fields: &[Val]) -> Result<ExnRef, Error> {
        let store = &mut store.as_context_mut().0.opaque;
        store.check_owns(tag.store)?;
        let ty = store.tags[tag.index as usize].get().ty.clone();
        let params = ty.params();
        if fields.len() != params.len() {
            return Err(Error::msg(format!(
                "an exception of tag type {ty} takes {} fields, got {}",
                params.len(),
                fields.len()
            )));
        }
        let words: usize = params.iter().map(|t| t.words()).sum();
        let mut object = vec![0u64; 1 + words];
        object[0] = store.tag_ptr(*tag) as u64;
        let mut at = 1;
        for (v, &t) in fields.iter().zip(params) {
            if !val_matches(store.id, v, t) {
                return Err(Error::msg(format!(
                    "exception field of type {t} given a {}",
                    v.ty()
                )));
            }
            at += write_words(&mut object[at..], val_to_raw(store.id, v)?, t);
        }
        Ok(ExnRef {
            store: store.id,
            ptr: store.keep_exception(object.into_boxed_slice()),
        })
    }

    /// The exception's tag.
    pub fn tag(&self, store: impl AsContext) -> Tag {
        let tag = store.as_context().0.opaque.exn_tag(*self);
        Tag {
            store: self.store,
            index: tag.index,
        }
    }

    /// The exception's payload, in order.
    pub fn fields(&self, store: impl AsContext) -> Vec<Val> {
        let tag = store.as_context().0.opaque.exn_tag(*self);
        let params = tag.ty.params();
        let words: usize = params.iter().map(|t| t.words()).sum();
        // SAFETY: the object holds the tag word and then `words` payload words.
        let payload = unsafe { std::slice::from_raw_parts((self.ptr as *const u64).add(1), words) };
        let mut at = 0;
        params
            .iter()
            .map(|&t| {
                let raw = read_words(&payload[at..], t);
                at += t.words();
                raw_to_val(self.store, raw, t).unwrap_or(Val::default_for(t))
            })
            .collect()
    }
}

/// A host function that returns this error throws the exception into its wasm caller.
impl From<ExnRef> for Error {
    fn from(exn: ExnRef) -> Error {
        Error::Exception(ThrownException {
            store: exn.store.0,
            exn: exn.ptr,
        })
    }
}

impl Error {
    /// The uncaught exception, if this error is one ([`Error::Exception`]).
    pub fn exception(&self) -> Option<ExnRef> {
        match self {
            Error::Exception(e) => Some(ExnRef {
                store: StoreId(e.store),
                ptr: e.exn,
            }),
            _ => None,
        }
    }
}
