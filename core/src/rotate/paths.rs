//! Which paths a compare-and-swap update of one document compares and sets.
//!
//! rotate replaces encrypted values in place with one update per document: its filter
//! holds `_id` and every changed path equal to its old value, its `$set` the new ones,
//! so a document changed meanwhile matches nothing. MongoDB names a path with dots, so
//! a step it cannot name (a field name holding `.`, starting with `$`, or empty) moves
//! the comparison up to the nearest nameable ancestor, compared whole. A value whose
//! top-level field cannot be named, or inside `_id`, cannot be rewritten at all. The
//! native shell walks the BSON and builds the statement from [`Targets`].

/// One step of a path: a field name or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A field of a document.
    Key(String),
    /// An element of an array.
    Index(usize),
}

/// Why a value cannot be rewritten in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unwritable {
    /// The value is (inside) the document's `_id`.
    InId,
    /// Its top-level field has a name dotted notation cannot express.
    UnnameableField(String),
    /// The path does not lead to the value (the document is not what was scanned).
    Stale,
}

impl std::fmt::Display for Unwritable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unwritable::InId => f.write_str("an encrypted _id cannot be rewritten"),
            Unwritable::UnnameableField(k) => {
                write!(f, "the field name {k:?} cannot be named in an update")
            }
            Unwritable::Stale => f.write_str("the value is no longer where it was found"),
        }
    }
}

/// Whether MongoDB's dotted notation can name this step.
pub fn nameable(seg: &Seg) -> bool {
    match seg {
        Seg::Index(_) => true,
        Seg::Key(k) => !k.is_empty() && !k.contains('.') && !k.starts_with('$'),
    }
}

/// The dotted form of a path (every step nameable).
pub fn dotted(path: &[Seg]) -> String {
    path.iter()
        .map(|s| match s {
            Seg::Key(k) => k.clone(),
            Seg::Index(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Whether a value at `path` can be rewritten in place at all.
pub fn writable(path: &[Seg]) -> Result<(), Unwritable> {
    match path.first() {
        None => Err(Unwritable::Stale),
        Some(Seg::Key(k)) if k == "_id" => Err(Unwritable::InId),
        Some(s @ Seg::Key(k)) if !nameable(s) => Err(Unwritable::UnnameableField(k.clone())),
        _ => Ok(()),
    }
}

/// The nameable paths an update compares and sets, none inside another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets(Vec<Vec<Seg>>);

impl Targets {
    /// Adds a changed value's path (already [`writable`]): its nearest nameable
    /// ancestor-or-self, unless an ancestor already targeted covers it; descendants
    /// targeted before are covered by it and dropped.
    pub fn add(&mut self, path: &[Seg]) {
        let cut = path.iter().position(|s| !nameable(s)).unwrap_or(path.len());
        let target = &path[..cut];
        if self
            .0
            .iter()
            .any(|t| target.len() >= t.len() && target[..t.len()] == t[..])
        {
            return;
        }
        self.0
            .retain(|t| !(t.len() > target.len() && t[..target.len()] == *target));
        self.0.push(target.to_vec());
    }

    /// The targeted paths, in the order first added.
    pub fn iter(&self) -> impl Iterator<Item = &[Seg]> {
        self.0.iter().map(Vec::as_slice)
    }

    /// Whether nothing is targeted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(steps: &str) -> Vec<Seg> {
        steps
            .split('/')
            .map(|s| match s.parse() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::Key(s.to_string()),
            })
            .collect()
    }

    fn dotted_targets(t: &Targets) -> Vec<String> {
        t.iter().map(dotted).collect()
    }

    #[test]
    fn nameable_paths_are_targeted_as_they_are() {
        let mut t = Targets::default();
        t.add(&path("a"));
        t.add(&path("b/d/1"));
        assert_eq!(dotted_targets(&t), ["a", "b.d.1"]);
    }

    #[test]
    fn an_unnameable_step_moves_the_comparison_to_the_nearest_nameable_ancestor() {
        let mut t = Targets::default();
        t.add(&path("x/a.b"));
        t.add(&path("x/$c"));
        t.add(&path("x/ok"));
        assert_eq!(dotted_targets(&t), ["x"]);
        let mut t = Targets::default();
        t.add(&path("x/ok"));
        t.add(&path("x/y"));
        t.add(&path("x/"));
        assert_eq!(
            dotted_targets(&t),
            ["x"],
            "the ancestor replaces its descendants"
        );
    }

    #[test]
    fn an_encrypted_id_an_unnameable_top_field_or_no_path_cannot_be_written() {
        assert_eq!(writable(&path("_id")), Err(Unwritable::InId));
        assert_eq!(writable(&path("_id/k")), Err(Unwritable::InId));
        assert_eq!(
            writable(&path("a.b")),
            Err(Unwritable::UnnameableField("a.b".into()))
        );
        assert_eq!(
            writable(&path("$x/y")),
            Err(Unwritable::UnnameableField("$x".into()))
        );
        assert_eq!(writable(&[]), Err(Unwritable::Stale));
        assert_eq!(writable(&path("a/0/b")), Ok(()));
    }

    #[test]
    fn dotted_names_join_keys_and_indexes() {
        assert_eq!(dotted(&path("a/0/b/12")), "a.0.b.12");
        assert!(!nameable(&Seg::Key(String::new())));
        assert!(nameable(&Seg::Index(0)));
    }
}
