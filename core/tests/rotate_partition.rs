//! `--partition I/N` parsing and boundary offsets, fuzzed: any text parses or fails
//! with a message (never panics), every valid `I/N` round-trips, and the boundary
//! offsets split any collection into N ranges differing by at most one document.

use keyshift_core::rotate::partition::{MAX_PARTITIONS, Partition, bounds_for};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_or_explains(s in "\\PC{0,12}|[0-9]{0,5}/[0-9]{0,5}|-?[0-9]{1,3} ?/ ?-?[0-9]{1,4}") {
        match Partition::parse(&s) {
            Ok(p) => {
                prop_assert!(p.index < p.count && p.count <= MAX_PARTITIONS);
                prop_assert_eq!(Partition::parse(&p.to_string()), Ok(p));
            }
            Err(e) => prop_assert!(e.contains("partition")),
        }
    }

    #[test]
    fn valid_pairs_round_trip(n in 1u32..=MAX_PARTITIONS, i in any::<u32>()) {
        let i = i % n;
        let p = Partition::parse(&format!("{i}/{n}")).unwrap();
        prop_assert_eq!((p.index, p.count), (i, n));
        let err = Partition::parse(&format!("{n}/{n}")).unwrap_err();
        prop_assert!(err.contains("0-based"), "{}", err);
    }

    #[test]
    fn bounds_split_evenly(count in any::<u64>(), n in 1u32..=MAX_PARTITIONS) {
        let b = bounds_for(count, n);
        prop_assert_eq!(b.len(), n as usize - 1);
        let mut edges = vec![0];
        edges.extend(&b);
        edges.push(count);
        for w in edges.windows(2) {
            prop_assert!(w[0] <= w[1]);
            let size = w[1] - w[0];
            prop_assert!(size == count / u64::from(n) || size == count / u64::from(n) + 1);
        }
    }
}
