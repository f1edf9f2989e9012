//! An in-place heapsort for the core's few small sorts (counters, probes,
//! interfaces). The standard library's pattern-defeating quicksort is
//! faster on large slices, but each of its instances costs kilobytes of
//! firmware flash; this one costs a few hundred bytes, never allocates and
//! is O(n log n) in the worst case. Unstable, like `sort_unstable`.

/// Sorts `v` so that no element is `less` than the one before it.
pub(crate) fn sort_by<T>(v: &mut [T], mut less: impl FnMut(&T, &T) -> bool) {
    let n = v.len();
    // Build a max-heap, then move the greatest to the end, n times.
    for start in (0..n / 2).rev() {
        sift_down(v, start, n, &mut less);
    }
    for end in (1..n).rev() {
        v.swap(0, end);
        sift_down(v, 0, end, &mut less);
    }
}

/// Sorts `v` by a key.
pub(crate) fn sort_by_key<T, K: Ord>(v: &mut [T], mut key: impl FnMut(&T) -> K) {
    sort_by(v, |a, b| key(a) < key(b));
}

fn sift_down<T>(v: &mut [T], mut root: usize, end: usize, less: &mut impl FnMut(&T, &T) -> bool) {
    // Each step moves one level down: bounded by the heap's depth.
    loop {
        let left = root.saturating_mul(2).saturating_add(1);
        if left >= end {
            return;
        }
        let right = left.saturating_add(1);
        let mut child = left;
        if right < end
            && v.get(left)
                .zip(v.get(right))
                .is_some_and(|(l, r)| less(l, r))
        {
            child = right;
        }
        if !v
            .get(root)
            .zip(v.get(child))
            .is_some_and(|(r, c)| less(r, c))
        {
            return;
        }
        v.swap(root, child);
        root = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_like_the_standard_library() {
        // Every length up to 40, with repeats, from a fixed generator.
        let mut x = 0x2545_f491_u32;
        for n in 0..40 {
            let mut v: std::vec::Vec<u32> = (0..n)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x % 7
                })
                .collect();
            let mut expected = v.clone();
            expected.sort_unstable();
            sort_by_key(&mut v, |a| *a);
            assert_eq!(v, expected, "n = {n}");
        }
    }

    #[test]
    fn by_a_comparison() {
        let mut v = [3, 1, 2, 5, 4];
        sort_by(&mut v, |a, b| a > b);
        assert_eq!(v, [5, 4, 3, 2, 1]);
    }
}
