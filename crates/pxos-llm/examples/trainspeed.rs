fn main() {
    let cfg = pxos_llm::train::TrainConfig::pixellm();
    let corpus = pxos_llm::corpus::build(std::path::Path::new("/work/main")).unwrap();
    eprintln!(
        "train {} val {} files {}",
        corpus.train.len(),
        corpus.val.len(),
        corpus.info.files.len()
    );
    let params = pxos_llm::train::Params::init(&cfg.model, 1);
    eprintln!("params {}", params.values.len());
    let mut c = cfg.clone();
    c.steps = 10;
    c.eval_every = 10;
    c.eval_windows = 16;
    let (_, r) = pxos_llm::train::run(&c, params, &corpus, &mut |p| {
        eprintln!("{} {:.3} {:.0} tok/s", p.step, p.loss, p.tokens_per_second)
    })
    .unwrap();
    eprintln!("{:?}", r.baselines);
    eprintln!("val {}", r.val_loss);
}
