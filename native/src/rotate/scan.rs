//! Finding encrypted values in a document and writing their replacements back.
//!
//! [`encrypted_values`] walks a document at any depth, arrays included, and returns
//! every BSON binary subtype 6 value with its path. [`Cas`] turns the re-encrypted ones
//! into one compare-and-swap update statement: the filter holds `_id` and every changed
//! path equal to its old ciphertext, the update `$set`s the new ones, so a document
//! changed meanwhile is matched by nothing and left alone.
//!
//! Which paths are compared and set is core's decision ([`paths`]): a path MongoDB
//! cannot name with dots moves to its nearest nameable ancestor (compared whole), and a
//! value whose top-level field cannot be named, or inside `_id`, cannot be rewritten
//! ([`Cas::add`] says so). This file only walks and assembles the BSON.

use super::fault::{Fault, malformed};
use bson::spec::BinarySubtype;
use bson::{Binary, Bson, Document, RawBsonRef, RawDocument, doc};
use keyshift_core::rotate::paths::Targets;
pub use keyshift_core::rotate::paths::{self, Seg, Unwritable, dotted};

/// An encrypted value found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Where it is, from the document's root.
    pub path: Vec<Seg>,
    /// The subtype 6 payload.
    pub bytes: Vec<u8>,
}

/// Every binary subtype 6 value in `doc`, depth first, in document order.
pub fn encrypted_values(doc: &RawDocument) -> Result<Vec<Found>, Fault> {
    let mut out = Vec::new();
    let mut path = Vec::new();
    walk_doc(doc, &mut path, &mut out)?;
    Ok(out)
}

fn visit(value: RawBsonRef<'_>, path: &mut Vec<Seg>, out: &mut Vec<Found>) -> Result<(), Fault> {
    match value {
        RawBsonRef::Binary(b) if b.subtype == BinarySubtype::Encrypted => out.push(Found {
            path: path.clone(),
            bytes: b.bytes.to_vec(),
        }),
        RawBsonRef::Document(d) => walk_doc(d, path, out)?,
        RawBsonRef::Array(a) => {
            for (i, v) in a.into_iter().enumerate() {
                path.push(Seg::Index(i));
                visit(v.map_err(malformed)?, path, out)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

fn walk_doc(doc: &RawDocument, path: &mut Vec<Seg>, out: &mut Vec<Found>) -> Result<(), Fault> {
    for entry in doc {
        let (k, v) = entry.map_err(malformed)?;
        path.push(Seg::Key(k.to_string()));
        visit(v, path, out)?;
        path.pop();
    }
    Ok(())
}

fn encrypted(bytes: Vec<u8>) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Encrypted,
        bytes,
    })
}

fn get<'a>(value: &'a Bson, seg: &Seg) -> Option<&'a Bson> {
    match (value, seg) {
        (Bson::Document(d), Seg::Key(k)) => d.get(k),
        (Bson::Array(a), Seg::Index(i)) => a.get(*i),
        _ => None,
    }
}

fn get_mut<'a>(value: &'a mut Bson, seg: &Seg) -> Option<&'a mut Bson> {
    match (value, seg) {
        (Bson::Document(d), Seg::Key(k)) => d.get_mut(k),
        (Bson::Array(a), Seg::Index(i)) => a.get_mut(*i),
        _ => None,
    }
}

/// A compare-and-swap update of one document, built value by value.
pub struct Cas {
    /// The document as read (a working copy receiving the new values).
    new_root: Bson,
    old_root: Bson,
    id: Bson,
    /// Paths (nameable) to compare and set, deduplicated.
    targets: Targets,
}

impl Cas {
    /// Starts an update of `doc` (as read).
    pub fn new(doc: &RawDocument) -> Result<Self, Fault> {
        let owned = Document::try_from(doc).map_err(malformed)?;
        let id = owned
            .get("_id")
            .cloned()
            .ok_or_else(|| Fault::Malformed("a document without _id".into()))?;
        let root = Bson::Document(owned);
        Ok(Cas {
            new_root: root.clone(),
            old_root: root,
            id,
            targets: Targets::default(),
        })
    }

    /// The document's `_id`.
    pub fn id(&self) -> &Bson {
        &self.id
    }

    /// Replaces the value at `path` by `new` (a subtype 6 payload).
    pub fn add(&mut self, path: &[Seg], new: Vec<u8>) -> Result<(), Unwritable> {
        paths::writable(path)?;
        let mut slot = &mut self.new_root;
        for seg in path {
            slot = get_mut(slot, seg).ok_or(Unwritable::Stale)?;
        }
        match slot {
            Bson::Binary(b) if b.subtype == BinarySubtype::Encrypted => *slot = encrypted(new),
            _ => return Err(Unwritable::Stale),
        }
        self.targets.add(path);
        Ok(())
    }

    /// Whether any value was replaced.
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    fn at<'a>(root: &'a Bson, path: &[Seg]) -> Option<&'a Bson> {
        let mut v = root;
        for seg in path {
            v = get(v, seg)?;
        }
        Some(v)
    }

    /// The update statement: `{q: {_id, path: old...}, u: {$set: {path: new...}}}`.
    pub fn statement(&self) -> Document {
        let mut q = doc! {"_id": self.id.clone()};
        let mut set = Document::new();
        for t in self.targets.iter() {
            let name = dotted(t);
            if let (Some(old), Some(new)) =
                (Self::at(&self.old_root, t), Self::at(&self.new_root, t))
            {
                q.insert(name.clone(), old.clone());
                set.insert(name, new.clone());
            }
        }
        doc! {"q": q, "u": {"$set": set}}
    }

    /// Whether `now` (the document as it is now) holds every new value: the update
    /// landed (perhaps on an attempt whose reply was lost).
    pub fn landed_in(&self, now: &Document) -> bool {
        let now = Bson::Document(now.clone());
        self.targets.iter().all(|t| {
            Self::at(&now, t).is_some() && Self::at(&now, t) == Self::at(&self.new_root, t)
        })
    }

    /// A rough size in bytes of the statement (to split update commands).
    pub fn approx_size(&self) -> usize {
        self.targets
            .iter()
            .filter_map(|t| Self::at(&self.old_root, t))
            .map(|v| match v {
                Bson::Binary(b) => b.bytes.len() * 2 + 64,
                other => doc! {"v": other.clone()}
                    .to_vec()
                    .map_or(1024, |b| b.len() * 2),
            })
            .sum::<usize>()
            + 128
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::RawDocumentBuf;

    fn enc(tag: u8) -> Bson {
        encrypted(vec![1, tag, tag, tag])
    }

    fn raw(d: &Document) -> RawDocumentBuf {
        RawDocumentBuf::try_from(d).unwrap()
    }

    #[test]
    fn values_are_found_at_any_depth_and_in_arrays() {
        let d = doc! {
            "_id": 7, "a": enc(1), "b": {"c": enc(2), "d": [enc(3), {"e": enc(4)}, 5]},
            "plain": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2] },
        };
        let found = encrypted_values(&raw(&d)).unwrap();
        let paths: Vec<String> = found.iter().map(|f| dotted(&f.path)).collect();
        assert_eq!(paths, ["a", "b.c", "b.d.0", "b.d.1.e"]);
        assert_eq!(found[2].bytes, vec![1, 3, 3, 3]);
    }

    #[test]
    fn the_update_compares_every_changed_path_and_sets_the_new_values() {
        let d = doc! {"_id": 7, "a": enc(1), "b": {"d": [enc(3), enc(4)]}};
        let mut cas = Cas::new(&raw(&d)).unwrap();
        let found = encrypted_values(&raw(&d)).unwrap();
        cas.add(&found[0].path, vec![1, 9]).unwrap();
        cas.add(&found[2].path, vec![1, 8]).unwrap();
        let s = cas.statement();
        assert_eq!(
            s,
            doc! {
                "q": {"_id": 7, "a": enc(1), "b.d.1": enc(4)},
                "u": {"$set": {"a": encrypted(vec![1, 9]), "b.d.1": encrypted(vec![1, 8])}},
            }
        );
        let after = doc! {"_id": 7, "a": encrypted(vec![1, 9]), "b": {"d": [enc(3), encrypted(vec![1, 8])]}};
        assert!(cas.landed_in(&after));
        assert!(!cas.landed_in(&d));
    }

    #[test]
    fn unnameable_steps_fall_back_to_the_nearest_nameable_ancestor() {
        let d = doc! {"_id": 1, "x": {"a.b": enc(1), "$c": enc(2), "ok": enc(3)}};
        let found = encrypted_values(&raw(&d)).unwrap();
        let mut cas = Cas::new(&raw(&d)).unwrap();
        for f in &found {
            cas.add(&f.path, vec![2, 0]).unwrap();
        }
        let s = cas.statement();
        let q = s.get_document("q").unwrap();
        assert_eq!(q.keys().collect::<Vec<_>>(), ["_id", "x"]);
        let set = s.get_document("u").unwrap().get_document("$set").unwrap();
        assert_eq!(
            set.get_document("x").unwrap().get("a.b"),
            Some(&encrypted(vec![2, 0]))
        );
    }

    #[test]
    fn an_encrypted_id_or_an_unnameable_top_field_is_refused() {
        let d = doc! {"_id": enc(1), "a.b": enc(2)};
        let found = encrypted_values(&raw(&d)).unwrap();
        let mut cas = Cas::new(&raw(&d)).unwrap();
        assert_eq!(cas.add(&found[0].path, vec![1]), Err(Unwritable::InId));
        assert!(matches!(
            cas.add(&found[1].path, vec![1]),
            Err(Unwritable::UnnameableField(_))
        ));
        assert!(cas.is_empty());
    }
}
