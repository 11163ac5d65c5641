//! The MongoDB wire stand-in, seen through the Rust driver keyshift uses: every BSON
//! type keyshift stores comes back exactly, the update operators rewrap relies on work,
//! and large cursors stream in batches.

mod common;

use bson::spec::BinarySubtype;
use bson::{Binary, Bson, DateTime, Decimal128, Document, doc};
use futures_util::TryStreamExt;

fn sample() -> Document {
    doc! {
        "_id": 1,
        "uuid": Binary { subtype: BinarySubtype::Uuid, bytes: (0u8..16).collect() },
        "encrypted": Binary { subtype: BinarySubtype::Encrypted, bytes: vec![1, 0xde, 0xad, 0xbe, 0xef, 0] },
        "when": DateTime::from_millis(1_700_000_000_123),
        "price": "1234.5678".parse::<Decimal128>().unwrap(),
        "big": Bson::Int64(1 << 40),
        "small": Bson::Int64(7),
        "int": 42i32,
        "nested": [[1i32, 2i32], [doc! {"k": Bson::Int64(3)}], []],
    }
}

#[tokio::test]
async fn bson_types_round_trip_exactly() {
    let client = common::mongo_client().await;
    let coll = client
        .database(&common::unique("wire"))
        .collection::<Document>("types");
    coll.insert_one(sample()).await.unwrap();
    let back = coll.find_one(doc! {"_id": 1}).await.unwrap().unwrap();
    assert_eq!(back, sample());
    // Binary subtype 6 must stay subtype 6: it is how encrypted values are recognised.
    match back.get("encrypted") {
        Some(Bson::Binary(b)) => assert_eq!(b.subtype, BinarySubtype::Encrypted),
        other => panic!("encrypted field came back as {other:?}"),
    }
    assert!(matches!(back.get("small"), Some(Bson::Int64(7))));
}

#[tokio::test]
async fn set_and_current_date_update_a_key_in_place() {
    let client = common::mongo_client().await;
    let coll = client
        .database(&common::unique("wire"))
        .collection::<Document>("keys");
    let old = Binary {
        subtype: BinarySubtype::Generic,
        bytes: vec![1; 8],
    };
    coll.insert_one(
        doc! {"_id": 1, "keyMaterial": old.clone(), "updateDate": DateTime::from_millis(0)},
    )
    .await
    .unwrap();
    let new = Binary {
        subtype: BinarySubtype::Generic,
        bytes: vec![2; 8],
    };
    // Compare-and-swap as rewrap writes it: match _id and the old keyMaterial.
    let res = coll
        .update_one(
            doc! {"_id": 1, "keyMaterial": old.clone()},
            doc! {"$set": {"keyMaterial": new.clone(), "masterKey": {"provider": "aws"}},
            "$currentDate": {"updateDate": true}},
        )
        .await
        .unwrap();
    assert_eq!((res.matched_count, res.modified_count), (1, 1));
    let back = coll.find_one(doc! {"_id": 1}).await.unwrap().unwrap();
    assert_eq!(back.get("keyMaterial"), Some(&Bson::Binary(new)));
    assert!(back.get_datetime("updateDate").unwrap().timestamp_millis() > 0);
    // The same swap again matches nothing: the old material is gone.
    let again = coll
        .update_one(
            doc! {"_id": 1, "keyMaterial": old},
            doc! {"$set": {"masterKey": {"provider": "gcp"}}},
        )
        .await
        .unwrap();
    assert_eq!(again.matched_count, 0);
}

#[tokio::test]
async fn ten_thousand_documents_stream_in_batches_of_one_hundred() {
    let client = common::mongo_client().await;
    let coll = client
        .database(&common::unique("wire"))
        .collection::<Document>("many");
    let docs: Vec<Document> = (0..10_000i64)
        .map(|i| doc! {"_id": i, "v": Bson::Int64(i * 3)})
        .collect();
    coll.insert_many(docs).await.unwrap();
    let mut cursor = coll
        .find(doc! {})
        .sort(doc! {"_id": 1})
        .batch_size(100)
        .await
        .unwrap();
    let mut n = 0i64;
    while let Some(d) = cursor.try_next().await.unwrap() {
        assert_eq!(d.get_i64("_id").unwrap(), n);
        assert_eq!(d.get_i64("v").unwrap(), n * 3);
        n += 1;
    }
    assert_eq!(n, 10_000);
}
