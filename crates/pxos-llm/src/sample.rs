//! Choosing the next token: greedy, temperature, top-k and top-p, seeded.

use serde::{Deserialize, Serialize};

use crate::model::softmax;

/// How to pick tokens. `temperature == 0` is greedy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the smallest set whose probability reaches `top_p` (1: all).
    pub top_p: f32,
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Sampling {
        Sampling {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        }
    }
}

/// A seeded sampler (xorshift64*, so a seed reproduces on every machine).
#[derive(Clone, Debug)]
pub struct Sampler {
    params: Sampling,
    state: u64,
    scratch: Vec<(f32, u32)>,
}

impl Sampler {
    pub fn new(params: Sampling) -> Sampler {
        Sampler {
            // Zero is xorshift's fixed point; mix the seed so 0 works too.
            state: params.seed ^ 0x9E37_79B9_7F4A_7C15,
            params,
            scratch: Vec::new(),
        }
    }

    fn next_f32(&mut self) -> f32 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        let bits = self.state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (bits >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Picks a token from `logits` (which it may change).
    pub fn sample(&mut self, logits: &mut [f32]) -> u32 {
        if self.params.temperature <= 0.0 {
            return argmax(logits);
        }
        for l in logits.iter_mut() {
            *l /= self.params.temperature;
        }
        softmax(logits);
        let k = if self.params.top_k == 0 {
            logits.len()
        } else {
            self.params.top_k.min(logits.len())
        };
        let r = self.next_f32();
        if k == logits.len() && self.params.top_p >= 1.0 {
            return pick(
                logits
                    .iter()
                    .copied()
                    .enumerate()
                    .map(|(i, p)| (p, i as u32)),
                1.0,
                r,
            );
        }
        self.scratch.clear();
        self.scratch
            .extend(logits.iter().enumerate().map(|(i, &p)| (p, i as u32)));
        // Highest probability first; ties by the lower token id.
        let by_prob = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1));
        if k < self.scratch.len() {
            self.scratch.select_nth_unstable_by(k - 1, by_prob);
            self.scratch.truncate(k);
        }
        self.scratch.sort_by(by_prob);
        let mut total = 0.0;
        let mut keep = self.scratch.len();
        for (i, (p, _)) in self.scratch.iter().enumerate() {
            total += p;
            if total >= self.params.top_p {
                keep = i + 1;
                break;
            }
        }
        let kept = &self.scratch[..keep];
        let mass: f32 = kept.iter().map(|(p, _)| p).sum();
        pick(kept.iter().copied(), mass, r)
    }
}

fn pick(candidates: impl Iterator<Item = (f32, u32)>, mass: f32, r: f32) -> u32 {
    let target = r * mass;
    let mut cdf = 0.0;
    let mut last = 0;
    for (p, token) in candidates {
        cdf += p;
        last = token;
        if target < cdf {
            return token;
        }
    }
    last
}

/// The index of the largest value (the first one on ties).
pub fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, v) in x.iter().enumerate() {
        if *v > x[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_top_k_and_top_p() {
        let logits = [0.0, 3.0, 1.0, 2.5];
        assert_eq!(
            Sampler::new(Sampling::default()).sample(&mut logits.clone()),
            1
        );
        // top_k = 1 is greedy whatever the temperature.
        let mut s = Sampler::new(Sampling {
            temperature: 5.0,
            top_k: 1,
            ..Sampling::default()
        });
        for _ in 0..20 {
            assert_eq!(s.sample(&mut logits.clone()), 1);
        }
        // top_p small enough keeps only the two best.
        let mut s = Sampler::new(Sampling {
            temperature: 1.0,
            top_p: 0.8,
            seed: 7,
            ..Sampling::default()
        });
        for _ in 0..50 {
            let t = s.sample(&mut logits.clone());
            assert!(t == 1 || t == 3, "{t}");
        }
    }

    #[test]
    fn a_seed_reproduces() {
        let params = Sampling {
            temperature: 1.0,
            seed: 42,
            ..Sampling::default()
        };
        let logits: Vec<f32> = (0..50).map(|i| (i % 7) as f32 * 0.3).collect();
        let run = |p: &Sampling| {
            let mut s = Sampler::new(p.clone());
            (0..30)
                .map(|_| s.sample(&mut logits.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(&params), run(&params));
        assert_ne!(
            run(&params),
            run(&Sampling {
                seed: 43,
                ..params.clone()
            })
        );
    }
}
