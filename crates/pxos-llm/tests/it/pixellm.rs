//! The committed pixellm: it loads, beats the baselines it was measured
//! against, talks about pxOS, and decodes reproducibly.

use std::ops::ControlFlow;
use std::sync::Arc;

use pxos_llm::{Generator, Sampling};

fn generator() -> Generator {
    Generator::new(Arc::new(pxos_llm::builtin().unwrap())).unwrap()
}

fn run(g: &Generator, prompt: &str, tokens: usize, sampling: &Sampling) -> String {
    g.generate(prompt, tokens, sampling, &[], &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap()
    .text
}

#[test]
fn it_beats_the_unigram_and_bigram_baselines_on_held_out_text() {
    let model = pxos_llm::builtin().unwrap();
    let report = &model.manifest.provenance["report"];
    let val = report["val_loss"].as_f64().unwrap();
    let bigram = report["baselines"]["bigram"].as_f64().unwrap();
    let unigram = report["baselines"]["unigram"].as_f64().unwrap();
    assert!(val < bigram && bigram < unigram, "{val} {bigram} {unigram}");
    // Well below: under two thirds of the bigram's nats per byte.
    assert!(val < bigram * 2.0 / 3.0, "{val} vs bigram {bigram}");
    assert!(report["seconds"].as_f64().unwrap() < 30.0 * 60.0);
    assert_eq!(model.manifest.llama().parameter_count(), 771_456);
    assert!(model.manifest.tensors.iter().all(|t| t.dtype == "f32"));
}

#[test]
fn greedy_decoding_is_pinned() {
    let g = generator();
    let text = run(&g, "pxos boot", 64, &Sampling::default());
    assert_eq!(
        text,
        " sequence (`crates/pxos-cli/tests/pxos-cli/back.rs`).\n    pub fn"
    );
}

#[test]
fn it_continues_prompts_with_text_about_pxos() {
    let g = generator();
    let vocabulary = [
        "pxos",
        "crates/",
        "cartridge",
        "kernel",
        "stage",
        "boot",
        "pixel",
        "tensor",
        "install",
        "reader",
        "manifest",
    ];
    for prompt in [
        "pxos boot",
        "The kernel",
        "A cartridge",
        "The evolution log",
    ] {
        let text = run(&g, prompt, 120, &Sampling::default()).to_lowercase();
        let words = vocabulary.iter().filter(|w| text.contains(*w)).count();
        assert!(words >= 1, "{prompt:?} -> {text:?}");
    }
    let sampled = run(
        &g,
        "The kernel",
        200,
        &Sampling {
            temperature: 0.7,
            top_p: 0.9,
            seed: 3,
            ..Sampling::default()
        },
    )
    .to_lowercase();
    assert!(
        vocabulary.iter().filter(|w| sampled.contains(*w)).count() >= 2,
        "{sampled:?}"
    );
}

#[test]
fn sampling_with_a_seed_is_reproducible() {
    let g = generator();
    let params = |seed| Sampling {
        temperature: 0.9,
        top_k: 40,
        top_p: 0.95,
        seed,
    };
    let a = run(&g, "PixelFS", 80, &params(11));
    assert_eq!(a, run(&g, "PixelFS", 80, &params(11)));
    assert_ne!(a, run(&g, "PixelFS", 80, &params(12)));
    assert_ne!(a, run(&g, "PixelFS", 80, &Sampling::default()));
}
