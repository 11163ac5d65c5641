//! "Did you mean": the nearest known name to a misspelt one, by edit distance.

/// Levenshtein distance over chars (insert, delete, substitute), with adjacent
/// transpositions counted as one edit — the commonest typo (`regoin`).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows are enough for the optimal-string-alignment variant.
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// The candidate closest to `word`, if close enough to be a plausible typo.
///
/// Case, `_` and `-` are ignored first (so `access_key_id` and `AccessKeyID` both find
/// `accessKeyId`); then up to 2 edits are allowed for longer names and 1 for short
/// ones, so unrelated short words are not "corrected".
pub fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // Bound the work on hostile input: nobody misspells a field by 64 characters.
    if word.chars().count() > 64 {
        return None;
    }
    let w = normalize(word);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = edit_distance(&w, &normalize(c));
        let limit = if c.len() > 4 { 2 } else { 1 };
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("region", "regoin"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }

    #[test]
    fn suggestions() {
        let known = ["accessKeyId", "secretAccessKey", "sessionToken"];
        assert_eq!(did_you_mean("acessKeyId", &known), Some("accessKeyId"));
        assert_eq!(did_you_mean("access_key_id", &known), Some("accessKeyId"));
        assert_eq!(
            did_you_mean("SecretAccessKey", &known),
            Some("secretAccessKey")
        );
        assert_eq!(did_you_mean("password", &known), None);
        assert_eq!(did_you_mean("awz", &["aws", "gcp"]), Some("aws"));
        assert_eq!(did_you_mean("xyz", &["aws", "gcp"]), None);
    }
}
