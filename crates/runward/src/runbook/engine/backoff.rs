//! Retry delays: exponential backoff with jitter.

use rand::Rng;
use std::time::Duration;

/// The delay before retry number `retry` (1 for the first retry): `base` doubled for each
/// earlier retry, capped at `max`, then drawn uniformly from its upper half so that
/// processes retrying together spread out.
pub(crate) fn delay(base: Duration, max: Duration, retry: u32) -> Duration {
    let factor = 1u32
        .checked_shl(retry.saturating_sub(1))
        .unwrap_or(u32::MAX);
    let full = base.saturating_mul(factor).min(max);
    let half = full / 2;
    let spread = (full - half).as_micros() as u64;
    let jitter = if spread == 0 {
        0
    } else {
        rand::rng().random_range(0..=spread)
    };
    half + Duration::from_micros(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_jitters_within_the_upper_half() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for _ in 0..200 {
            let first = delay(base, max, 1);
            assert!(
                first >= Duration::from_millis(50) && first <= base,
                "{first:?}"
            );
            let third = delay(base, max, 3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let capped = delay(base, max, 30);
            assert!(
                capped >= Duration::from_millis(500) && capped <= max,
                "{capped:?}"
            );
        }
        let draws: std::collections::BTreeSet<_> = (0..50).map(|_| delay(base, max, 2)).collect();
        assert!(draws.len() > 1, "jitter must vary the delay");
    }
}
