//! `--partition I/N`: one of N workers rotating the same collections at once.
//!
//! Each collection is split into N ranges of `_id`. The first worker to need the
//! boundaries computes them (sort by `_id`, read the `_id` at each offset
//! [`bounds_for`] gives) and stores them in MongoDB; the others read the stored ones,
//! so every worker splits the same way. I is 0-based like Kubernetes'
//! `JOB_COMPLETION_INDEX`, so an Indexed Job runs
//! `keyshift rotate --yes --partition "$JOB_COMPLETION_INDEX/3"`.

use serde::{Deserialize, Serialize};

/// The most workers a collection can be split between.
pub const MAX_PARTITIONS: u32 = 1024;

/// This worker's share: partition `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// 0..count.
    pub index: u32,
    /// 1..=1024.
    pub count: u32,
}

impl Partition {
    /// The whole collection (0/1).
    pub const WHOLE: Partition = Partition { index: 0, count: 1 };

    /// Parses `I/N`.
    pub fn parse(text: &str) -> Result<Partition, String> {
        let usage = "write --partition I/N, e.g. 0/3, 1/3, 2/3 for three workers";
        let Some((i, n)) = text.trim().split_once('/') else {
            return Err(format!("partition {text:?} is not I/N: {usage}"));
        };
        let count: u32 = n.trim().parse().map_err(|_| {
            format!("partition count {n:?} in {text:?} is not a whole number: {usage}")
        })?;
        if count == 0 || count > MAX_PARTITIONS {
            return Err(format!(
                "partition count {count} in {text:?} is out of range: N must be 1..={MAX_PARTITIONS}"
            ));
        }
        let index: u32 = i.trim().parse().map_err(|_| {
            format!("partition index {i:?} in {text:?} is not a whole number: {usage}")
        })?;
        if index >= count {
            return Err(format!(
                "partition index {index} in {text:?} is out of range: the partition index is 0-based: 0..N-1 (0..{})",
                count - 1
            ));
        }
        Ok(Partition { index, count })
    }

    /// Whether this is the whole collection (N = 1).
    pub fn is_whole(&self) -> bool {
        self.count == 1
    }

    /// The stored boundaries' `_id` in `keyshift_partitions`: `<namespace>/<N>`.
    pub fn bounds_id(&self, namespace: &str) -> String {
        format!("{namespace}/{}", self.count)
    }

    /// Which of the N-1 boundaries enclose this partition, as indexes into the stored
    /// `bounds` array: `(lower, upper)`, `None` meaning unbounded (partition i covers
    /// `[bounds[i-1], bounds[i])`).
    pub fn range(&self) -> (Option<usize>, Option<usize>) {
        let i = self.index as usize;
        let lower = i.checked_sub(1);
        let upper = (self.index + 1 < self.count).then_some(i);
        (lower, upper)
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The skip offsets (into the collection sorted by `_id`) of the N-1 boundaries for a
/// collection of `count` documents: `k * count / n` for k in 1..n. Empty for n <= 1.
/// Offsets repeat when count < n (some partitions are then empty).
pub fn bounds_for(count: u64, n: u32) -> Vec<u64> {
    (1..n.max(1))
        .map(|k| (u128::from(k) * u128::from(count) / u128::from(n)) as u64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Partition::parse("0/3"),
            Ok(Partition { index: 0, count: 3 })
        );
        assert_eq!(
            Partition::parse(" 2 / 3 "),
            Ok(Partition { index: 2, count: 3 })
        );
        assert_eq!(Partition::parse("0/1"), Ok(Partition::WHOLE));
        assert_eq!(
            Partition::parse("1023/1024"),
            Ok(Partition {
                index: 1023,
                count: 1024
            })
        );
        assert_eq!(Partition::parse("1/3").unwrap().to_string(), "1/3");
    }

    #[test]
    fn errors_are_clear() {
        let err = |t: &str| Partition::parse(t).unwrap_err();
        assert!(err("3/3").contains("0-based: 0..N-1"), "{}", err("3/3"));
        assert!(err("3/3").contains("0..2"));
        assert!(err("0/0").contains("1..=1024"));
        assert!(err("0/1025").contains("1..=1024"));
        assert!(err("3").contains("not I/N"));
        assert!(err("").contains("not I/N"));
        assert!(err("-1/3").contains("index"));
        assert!(err("a/3").contains("index"));
        assert!(err("1/b").contains("count"));
        assert!(err("1/3/4").contains("count"));
        assert!(err("auto/3").contains("index"));
    }

    #[test]
    fn ranges() {
        let p = |i, n| Partition { index: i, count: n };
        assert_eq!(p(0, 1).range(), (None, None));
        assert_eq!(p(0, 3).range(), (None, Some(0)));
        assert_eq!(p(1, 3).range(), (Some(0), Some(1)));
        assert_eq!(p(2, 3).range(), (Some(1), None));
        assert_eq!(p(1, 3).bounds_id("app.customers"), "app.customers/3");
    }

    #[test]
    fn bounds() {
        assert_eq!(bounds_for(100, 1), Vec::<u64>::new());
        assert_eq!(bounds_for(100, 0), Vec::<u64>::new());
        assert_eq!(bounds_for(100, 2), vec![50]);
        assert_eq!(bounds_for(100, 3), vec![33, 66]);
        assert_eq!(bounds_for(10, 4), vec![2, 5, 7]);
        assert_eq!(bounds_for(2, 4), vec![0, 1, 1]);
        assert_eq!(bounds_for(0, 3), vec![0, 0]);
        assert_eq!(bounds_for(u64::MAX, 2), vec![u64::MAX / 2], "no overflow");
        for count in [0u64, 1, 7, 1000, 123_457] {
            for n in 1..40 {
                let b = bounds_for(count, n);
                assert_eq!(b.len(), n as usize - 1);
                assert!(b.windows(2).all(|w| w[0] <= w[1]), "sorted");
                assert!(b.iter().all(|&o| o < count.max(1)), "inside");
                // Partition sizes differ by at most one.
                let mut edges = vec![0];
                edges.extend(&b);
                edges.push(count);
                let sizes: Vec<u64> = edges.windows(2).map(|w| w[1] - w[0]).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "{count}/{n}: {sizes:?}");
            }
        }
    }
}
