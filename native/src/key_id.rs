//! A key document's `_id`, read one way everywhere: 16 bytes of BSON binary (the
//! driver specification's UUID, subtype 4). libmongocrypt refuses any other `_id`, so
//! a document without one is reported by its text form and never moves.

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, RawBsonRef, RawDocument};

/// The 16 bytes of the document's `_id`, when it is a 16-byte binary.
pub fn of(doc: &RawDocument) -> Option<[u8; 16]> {
    match doc.get("_id") {
        Ok(Some(RawBsonRef::Binary(b))) => <[u8; 16]>::try_from(b.bytes).ok(),
        _ => None,
    }
}

/// The `_id` as UUID text for messages and reports (never a secret), or what is
/// wrong with it.
pub fn text(doc: &RawDocument) -> String {
    match (of(doc), doc.get("_id")) {
        (Some(id), _) => bson::Uuid::from_bytes(id).to_string(),
        (None, Ok(Some(RawBsonRef::Binary(_)))) => "(non-UUID _id)".into(),
        _ => "(no _id)".into(),
    }
}

/// A UUID `_id` as BSON (binary subtype 4), for queries and new documents.
pub fn bson(id: &[u8; 16]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Uuid,
        bytes: id.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::{doc, rawdoc};

    #[test]
    fn a_uuid_id_is_read_as_bytes_and_text() {
        let id = [7u8; 16];
        let d = bson::RawDocumentBuf::try_from(&doc! {"_id": bson(&id)}).unwrap();
        assert_eq!(of(&d), Some(id));
        assert_eq!(text(&d), "07070707-0707-0707-0707-070707070707");
    }

    #[test]
    fn other_ids_are_named_for_what_is_wrong() {
        let short = rawdoc! {"_id": Binary { subtype: BinarySubtype::Uuid, bytes: vec![1, 2] }};
        assert_eq!(
            (of(&short), text(&short).as_str()),
            (None, "(non-UUID _id)")
        );
        let none = rawdoc! {"k": 1};
        assert_eq!((of(&none), text(&none).as_str()), (None, "(no _id)"));
        let string = rawdoc! {"_id": "x"};
        assert_eq!(text(&string), "(no _id)");
    }
}
