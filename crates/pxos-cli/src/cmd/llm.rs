//! `pxos llm ...`: models in pixels.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;

use pxos_llm::train::{Params, TrainConfig};
use pxos_llm::{DType, Generator, ModelFile, Sampling};
use serde_json::json;

use crate::Outcome;
use crate::cli::{Global, LlmCommand, SamplingArgs};
use crate::error::{CliError, Result};
use crate::output::{Output, esc, human_bytes};

/// Loads a model file, or the built-in pixellm when none is named.
pub fn load_model(path: Option<&Path>, global: &Global) -> Result<Arc<ModelFile>> {
    let limits = global.pixel_limits();
    Ok(Arc::new(match path {
        Some(path) => ModelFile::open(path, &limits)?,
        None => pxos_llm::builtin()?,
    }))
}

impl SamplingArgs {
    pub fn sampling(&self) -> Result<Sampling> {
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return Err(CliError::usage("--temperature must be 0 or more"));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(CliError::usage("--top-p must be within (0, 1]"));
        }
        Ok(Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        })
    }
}

pub fn run(command: &LlmCommand, global: &Global, output: &Output) -> Result<Outcome> {
    match command {
        LlmCommand::Corpus {
            root,
            output: target,
        } => {
            let corpus = pxos_llm::corpus::build(root)?;
            let png = corpus.to_png()?;
            crate::output::write_output(target, &png, pxos_pixel::durable::label::LLM_CORPUS)?;
            let held_out = corpus.info.files.iter().filter(|f| f.held_out).count();
            output.emit(
                json!({"type": "corpus", "output": target, "files": corpus.info.files.len(),
                       "held_out_files": held_out, "train_bytes": corpus.info.train_bytes,
                       "val_bytes": corpus.info.val_bytes}),
                || {
                    format!(
                        "wrote {}: {} files ({} held out), {} training and {} held-out bytes",
                        target.display(),
                        corpus.info.files.len(),
                        held_out,
                        corpus.info.train_bytes,
                        corpus.info.val_bytes
                    )
                },
            )?;
        }
        LlmCommand::Train {
            corpus,
            output: target,
            from,
            steps,
            batch,
            seq_len,
            learning_rate,
            dim,
            hidden_dim,
            layers,
            heads,
            kv_heads,
            seed,
            name,
        } => {
            let data = pxos_llm::corpus::Corpus::open(corpus, &global.pixel_limits())?;
            let mut config = TrainConfig::pixellm();
            let parent = match from {
                Some(path) => {
                    let model = ModelFile::open(path, &global.pixel_limits())?;
                    config.model = model.manifest.llama().clone();
                    Some((Params::from_model(&model)?, model.payload_sha256))
                }
                None => None,
            };
            if parent.is_some()
                && (dim.is_some()
                    || hidden_dim.is_some()
                    || layers.is_some()
                    || heads.is_some()
                    || kv_heads.is_some())
            {
                return Err(CliError::usage(
                    "--from keeps the parent's architecture; drop --dim/--hidden-dim/--layers/--heads/--kv-heads",
                ));
            }
            let m = &mut config.model;
            m.dim = dim.unwrap_or(m.dim);
            m.hidden_dim = hidden_dim.unwrap_or(m.hidden_dim);
            m.n_layers = layers.unwrap_or(m.n_layers);
            m.n_heads = heads.unwrap_or(m.n_heads);
            m.n_kv_heads = kv_heads.unwrap_or(m.n_kv_heads);
            config.steps = steps.unwrap_or(config.steps);
            config.batch = batch.unwrap_or(config.batch);
            config.seq_len = seq_len.unwrap_or(config.seq_len);
            config.learning_rate = learning_rate.unwrap_or(config.learning_rate);
            config.seed = seed.unwrap_or(config.seed);
            config.eval_every = config.eval_every.min(config.steps);
            config.validate()?;
            let (params, parent_hash) = match parent {
                Some((params, hash)) => (params, Some(hash)),
                None => (Params::init(&config.model, config.seed), None),
            };
            let bar = output.steps_bar(config.steps as u64, "training");
            let (params, report) = pxos_llm::train::run(&config, params, &data, &mut |p| {
                bar.set(p.step as u64);
                bar.message(format!(
                    "loss {:.3}{} {:.0} tok/s",
                    p.loss,
                    p.val_loss
                        .map(|v| format!(" val {v:.3}"))
                        .unwrap_or_default(),
                    p.tokens_per_second
                ));
                if let Some(val) = p.val_loss {
                    let line = format!(
                        "step {}/{}  loss {:.4}  held-out {:.4}",
                        p.step, p.steps, p.loss, val
                    );
                    if output.json || !bar.println(&line) {
                        let _ = output.emit_progress(
                        json!({"type": "progress", "step": p.step, "steps": p.steps, "loss": p.loss, "val_loss": val,
                               "learning_rate": p.learning_rate, "tokens_per_second": p.tokens_per_second}),
                        || format!("step {}/{}  loss {:.4}  held-out {:.4}  lr {:.2e}  {:.0} tok/s",
                            p.step, p.steps, p.loss, val, p.learning_rate, p.tokens_per_second),
                    );
                    }
                }
            })?;
            drop(bar);
            let command: Vec<String> = std::env::args().skip(1).collect();
            let provenance = json!({
                "trained_by": "pxos llm train",
                "command": command,
                "corpus_sha256": pxos_pixel::Hash256::of(&[data.train.as_slice(), data.val.as_slice()].concat()),
                "parent": parent_hash,
                "report": report,
            });
            let payload = params.to_payload(name, provenance)?;
            pxos_llm::format::write_model_file(target, &payload)?;
            let b = &report.baselines;
            output.emit(
                json!({"type": "trained", "output": target, "report": report}),
                || {
                    format!(
                        "wrote {} ({} parameters) after {} steps in {:.0} s\n\
                         held-out loss {:.4} nats/byte; unigram {:.4}, bigram {:.4} (add-{} smoothing)",
                        target.display(),
                        params.values.len(),
                        report.steps,
                        report.seconds,
                        report.val_loss,
                        b.unigram,
                        b.bigram,
                        b.bigram_alpha
                    )
                },
            )?;
        }
        LlmCommand::Generate {
            model,
            registered,
            prompt,
            max_tokens,
            sampling,
            device,
        } => {
            let device = pxos_llm::Device::parse(device)?;
            let generator = match (registered, model) {
                (Some(query), _) => on_device(
                    Arc::new(pxos_llm::registered::load(
                        &super::cart::registry(global)?,
                        query,
                        &global.pixel_limits(),
                    )?),
                    device,
                    output,
                )?,
                // A seed v0 model: a PNG with its NAME.meta.json beside it.
                (None, Some(path)) if pxos_llm::seedv0::meta_path(path).is_file() => {
                    Generator::seed_v0(pxos_llm::seedv0::SeedV0::open(path)?)
                }
                (None, model) => on_device(load_model(model.as_deref(), global)?, device, output)?,
            };
            let sampling = sampling.sampling()?;
            let mut stdout = std::io::stdout().lock();
            let json_mode = output.json;
            if !json_mode && !output.quiet {
                write!(stdout, "{prompt}")?;
            }
            let mut write_error = None;
            let generated =
                generator.generate(prompt, *max_tokens, &sampling, &[], &mut |piece| {
                    if json_mode {
                        return ControlFlow::Continue(());
                    }
                    match write!(stdout, "{piece}").and_then(|_| stdout.flush()) {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(err) => {
                            write_error = Some(err);
                            ControlFlow::Break(())
                        }
                    }
                })?;
            if let Some(err) = write_error {
                return Err(err.into());
            }
            if json_mode {
                drop(stdout);
                output.emit(
                    json!({"type": "generated", "prompt": prompt, "text": generated.text,
                           "prompt_tokens": generated.prompt_tokens,
                           "completion_tokens": generated.completion_tokens,
                           "finish_reason": generated.finish.reason(),
                           "tokens_per_second": generated.completion_tokens as f64 / generated.decode_seconds.max(1e-9)}),
                    String::new,
                )?;
            } else {
                writeln!(stdout)?;
            }
        }
        LlmCommand::Register {
            model,
            name,
            version,
            parent,
            reason,
            actor,
        } => {
            let registry = super::cart::registry(global)?;
            let home = crate::home::home(global)?;
            let registration = pxos_llm::registered::Registration {
                name: name.as_deref(),
                version,
                parent: parent.as_deref(),
                reason,
                actor: super::actor(actor),
            };
            let record = pxos_llm::registered::register(
                &registry,
                &home.join("carts"),
                model,
                &registration,
                &global.pixel_limits(),
            )?;
            output.emit(json!({"type": "registered", "record": record}), || {
                format!(
                    "registered model {} as {}{}",
                    esc(&record.id),
                    record.status.name(),
                    record
                        .parent
                        .as_ref()
                        .map(|p| format!(" (parent {})", esc(p)))
                        .unwrap_or_default()
                )
            })?;
        }
        LlmCommand::List => {
            let registry = super::cart::registry(global)?;
            for (record, manifest) in pxos_llm::registered::list(&registry)? {
                let m = &manifest.metrics;
                output.emit(
                    json!({"type": "model", "record": record, "metrics": m}),
                    || {
                        format!(
                            "{:<24} {:>9} params  {:<12} parent {}",
                            esc(&record.id),
                            m.get("parameters").and_then(|v| v.as_u64()).unwrap_or(0),
                            m.get("dtypes").map(|d| d.to_string()).unwrap_or_default(),
                            record.parent.as_deref().map(esc).unwrap_or("-".into())
                        )
                    },
                )?;
            }
        }
        LlmCommand::Inspect { model } => inspect(model.as_deref(), global, output)?,
        LlmCommand::Quantize {
            model,
            dtype,
            output: target,
        } => {
            let dtype = DType::parse(dtype)?;
            let file = ModelFile::open(model, &global.pixel_limits())?;
            let (payload, report) = pxos_llm::convert::quantize(&file, dtype)?;
            pxos_llm::format::write_model_file(target, &payload)?;
            for t in &report.tensors {
                output.emit(json!({"type": "tensor", "error": t}), || {
                    format!(
                        "  {:<24} {} -> {}  rmse {:.3e}  relative {:.4}  max {:.3e}",
                        esc(&t.name),
                        t.from,
                        t.to,
                        t.rmse,
                        t.relative_rmse,
                        t.max_abs_error
                    )
                })?;
            }
            output.emit(
                json!({"type": "quantized", "output": target, "report": {
                    "dtype": report.dtype, "relative_rmse": report.relative_rmse,
                    "bytes_before": report.bytes_before, "bytes_after": report.bytes_after}}),
                || {
                    format!(
                        "wrote {} as {}: relative RMS error {:.4}, tensors {} -> {}",
                        target.display(),
                        report.dtype,
                        report.relative_rmse,
                        human_bytes(report.bytes_before),
                        human_bytes(report.bytes_after)
                    )
                },
            )?;
        }
        LlmCommand::Serve {
            model,
            port,
            max_body,
            max_tokens,
            max_concurrent,
            device,
        } => {
            let device = pxos_llm::Device::parse(device)?;
            let generator = match model {
                Some(path) if pxos_llm::seedv0::meta_path(path).is_file() => {
                    Generator::seed_v0(pxos_llm::seedv0::SeedV0::open(path)?)
                }
                model => on_device(load_model(model.as_deref(), global)?, device, output)?,
            };
            let options = pxos_llm::serve::ServeOptions {
                port: *port,
                max_body: usize::try_from(*max_body).unwrap_or(usize::MAX),
                max_tokens: *max_tokens,
                max_concurrent: *max_concurrent,
            };
            let name = generator.name.clone();
            let json_mode = output.json;
            pxos_llm::serve::serve(
                generator,
                options,
                |addr| {
                    let _ = output.emit(
                        json!({"type": "serving", "model": name, "address": addr.to_string(),
                               "base_url": format!("http://{addr}/v1")}),
                        || format!("serving {} at http://{addr}/v1 (Ctrl-C stops)", esc(&name)),
                    );
                },
                move |record| {
                    // One line per finished generation, on stderr.
                    let line = if json_mode {
                        serde_json::to_string(&json!({"type": "request", "request": record}))
                            .unwrap_or_default()
                    } else {
                        format!(
                            "{} {} {} tokens in {:.2} s, finish {}{}",
                            record.id,
                            record.route,
                            record.completion_tokens,
                            record.seconds,
                            record.finish_reason,
                            if record.stream { " (stream)" } else { "" }
                        )
                    };
                    eprintln!("{line}");
                },
            )?;
        }
        LlmCommand::Import {
            input,
            output: target,
            format,
            tokenizer,
            name,
            context,
        } => import(
            input,
            target,
            format.as_deref(),
            tokenizer.as_deref(),
            name.as_deref(),
            *context,
            output,
        )?,
        LlmCommand::Export {
            model,
            format,
            dtype,
            group_size,
            output: target,
            tokenizer,
        } => {
            if format != "llama2c" {
                return Err(CliError::usage(format!(
                    "unknown export format {format:?} (known: llama2c)"
                )));
            }
            let file = load_model(model.as_deref(), global)?;
            let c = file.manifest.llama();
            let version = match dtype.as_str() {
                "f32" => pxos_llm::llama2c::Version::Legacy,
                "q8_0" => {
                    let exact = file.manifest.tensors.iter().any(|t| t.dtype == "q8_0");
                    let group_size = group_size.unwrap_or_else(|| {
                        if exact {
                            32
                        } else {
                            let mut gs = 64;
                            while gs > 1
                                && !(c.dim.is_multiple_of(gs) && c.hidden_dim.is_multiple_of(gs))
                            {
                                gs /= 2;
                            }
                            gs
                        }
                    });
                    pxos_llm::llama2c::Version::Q8 { group_size }
                }
                other => {
                    return Err(CliError::usage(format!(
                        "llama2.c checkpoints are f32 or q8_0, not {other:?}"
                    )));
                }
            };
            let bytes = pxos_llm::llama2c::export(&file, version)?;
            crate::output::write_output(target, &bytes, pxos_pixel::durable::label::LLM_EXPORT)?;
            if let Some(path) = tokenizer {
                let pxos_llm::format::TokenizerSpec::Vocab(spec) = &file.manifest.tokenizer else {
                    return Err(CliError::usage(
                        "this model's tokenizer is pxOS's byte tokenizer (bytes 0-255, BOS 256, EOS 257); llama2.c has no file for it",
                    ));
                };
                let t = pxos_llm::llama2c::write_tokenizer(spec)?;
                crate::output::write_output(path, &t, pxos_pixel::durable::label::LLM_EXPORT)?;
            }
            output.emit(
                json!({"type": "exported", "format": "llama2c", "output": target,
                       "version": if matches!(version, pxos_llm::llama2c::Version::Legacy) { 0 } else { 2 },
                       "group_size": match version { pxos_llm::llama2c::Version::Q8 { group_size } => Some(group_size), _ => None },
                       "bytes": bytes.len()}),
                || format!("wrote {} ({}, llama2.c {})", target.display(), human_bytes(bytes.len() as u64),
                           match version { pxos_llm::llama2c::Version::Legacy => "version 0, f32".to_string(),
                                           pxos_llm::llama2c::Version::Q8 { group_size } => format!("version 2, int8 groups of {group_size}") }),
            )?;
        }
        LlmCommand::Chat {
            model,
            system,
            max_tokens,
            sampling,
            device,
        } => chat(
            on_device(
                load_model(model.as_deref(), global)?,
                pxos_llm::Device::parse(device)?,
                output,
            )?,
            system.as_deref(),
            *max_tokens,
            &sampling.sampling()?,
            output,
        )?,
        LlmCommand::Tokenize { model, text } => {
            let file = load_model(model.as_deref(), global)?;
            let tokenizer = pxos_llm::tokenizer::Tokenizer::new(file.manifest.tokenizer.clone());
            let tokens = tokenizer.encode(text);
            let mut stream = tokenizer.stream();
            let mut decoded: String = tokens.iter().map(|&t| stream.push(t)).collect();
            decoded.push_str(&stream.finish());
            let pieces: Vec<String> = tokens
                .iter()
                .map(|&t| String::from_utf8_lossy(tokenizer.token_bytes(t)).into_owned())
                .collect();
            output.emit(
                json!({"type": "tokens", "tokens": tokens, "pieces": pieces, "decoded": decoded}),
                || {
                    tokens
                        .iter()
                        .zip(&pieces)
                        .map(|(t, p)| format!("{t:>7}  {}", esc(&format!("{p:?}"))))
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            )?;
        }
        LlmCommand::Logits {
            model,
            tokens,
            all_positions,
            device,
        } => {
            let file = load_model(model.as_deref(), global)?;
            let device = pxos_llm::Device::parse(device)?;
            let (generator, _) = pxos_llm::Generator::on_device(file, device)?;
            let mut all = Vec::new();
            let mut step = generator.stepper();
            for &t in tokens {
                let logits = step.forward(t)?.to_vec();
                if *all_positions {
                    all.push(logits);
                } else {
                    all = vec![logits];
                }
            }
            for (i, logits) in all.iter().enumerate() {
                let position = if *all_positions { i } else { tokens.len() - 1 };
                let best = logits
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                output.emit(
                    json!({"type": "logits", "position": position, "argmax": best, "logits": logits}),
                    || format!("position {position}: argmax {best} ({:.4})", logits[best]),
                )?;
            }
        }
        LlmCommand::Render {
            model,
            output: target,
        } => {
            let file = load_model(model.as_deref(), global)?;
            let png = pxos_llm::render::render(&file)?;
            crate::output::write_output(target, &png, pxos_pixel::durable::label::LLM_RENDER)?;
            output.emit(json!({"type": "rendered", "output": target, "tensors": file.manifest.tensors.len()}), || {
                format!("wrote {}: {} tensors drawn", target.display(), file.manifest.tensors.len())
            })?;
        }
    }
    Ok(Outcome::Success)
}

/// A generator on `device`; says on stderr where it runs unless quiet or JSON.
fn on_device(file: Arc<ModelFile>, device: pxos_llm::Device, output: &Output) -> Result<Generator> {
    let (generator, note) = Generator::on_device(file, device)?;
    if !output.json && !output.quiet && device != pxos_llm::Device::Cpu {
        eprintln!("pxos: running on {note}");
    }
    Ok(generator)
}

fn import(
    input: &Path,
    target: &Path,
    format: Option<&str>,
    tokenizer: Option<&Path>,
    name: Option<&str>,
    context: usize,
    output: &Output,
) -> Result<()> {
    use crate::error::Context;
    let started = std::time::Instant::now();
    let bytes = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let format = match format {
        Some(f) => f.to_string(),
        None if bytes.starts_with(b"GGUF") => "gguf".into(),
        None => "llama2c".into(),
    };
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "imported".into());
    let source = input.display().to_string();
    let (payload, summary, notes) = match format.as_str() {
        "gguf" => {
            if tokenizer.is_some() {
                return Err(CliError::usage(
                    "--tokenizer is for llama2.c checkpoints; a GGUF file carries its own",
                ));
            }
            let options = pxos_llm::import::ImportOptions {
                name: name.map(str::to_string),
                max_context: Some(context),
                source,
            };
            let (payload, report) =
                pxos_llm::import::import_gguf(&bytes, &options).map_err(|e| {
                    CliError::bad_input(format!("cannot import {}: {e}", input.display()))
                })?;
            let notes = report.notes.clone();
            (
                payload,
                serde_json::to_value(&report).unwrap_or_default(),
                notes,
            )
        }
        "llama2c" => {
            let tok = match tokenizer {
                Some(p) => {
                    Some(std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?)
                }
                None => None,
            };
            let (payload, report) =
                pxos_llm::llama2c::import(&bytes, tok.as_deref(), name.unwrap_or(&stem), &source)
                    .map_err(|e| {
                    CliError::bad_input(format!("cannot import {}: {e}", input.display()))
                })?;
            let notes = report.notes.clone();
            (
                payload,
                serde_json::to_value(&report).unwrap_or_default(),
                notes,
            )
        }
        other => {
            return Err(CliError::usage(format!(
                "unknown import format {other:?} (known: gguf, llama2c)"
            )));
        }
    };
    pxos_llm::format::write_model_file(target, &payload)?;
    let seconds = started.elapsed().as_secs_f64();
    output.emit(
        json!({"type": "imported", "format": format, "input": input, "output": target,
               "seconds": seconds, "report": summary}),
        || {
            let mut text = format!(
                "imported {} ({format}, {}) as {} in {seconds:.2} s",
                input.display(),
                human_bytes(bytes.len() as u64),
                target.display()
            );
            for note in &notes {
                text.push_str("\n  note: ");
                text.push_str(note);
            }
            text
        },
    )?;
    Ok(())
}

/// The terminal chat: one line in, the answer streamed out, the whole
/// conversation rendered by the model's template each turn.
fn chat(
    generator: Generator,
    system: Option<&str>,
    max_tokens: usize,
    sampling: &Sampling,
    output: &Output,
) -> Result<()> {
    use pxos_llm::chat::Message;
    use std::io::BufRead;
    let templated = generator
        .tokenizer
        .vocab()
        .is_some_and(|v| v.spec.chat_template.is_some());
    let stops: Vec<String> = if templated {
        Vec::new()
    } else {
        vec!["\nuser:".into(), "\nsystem:".into()]
    };
    let start = || -> Vec<Message> {
        system
            .map(|s| vec![Message::new("system", s)])
            .unwrap_or_default()
    };
    let mut messages = start();
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if !output.json && !output.quiet {
        eprintln!(
            "chatting with {} ({}); /reset starts over, /quit or end of input leaves",
            esc(&generator.name),
            if templated {
                "its chat template"
            } else {
                "a plain transcript"
            }
        );
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive && !output.json {
            eprint!("> ");
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let line = line.trim_end();
        match line {
            "/quit" | "/exit" => break,
            "/reset" => {
                messages = start();
                continue;
            }
            "" => continue,
            _ => {}
        }
        messages.push(Message::new("user", line));
        let prompt = pxos_llm::chat::render(&generator.tokenizer, &messages)?;
        let mut stdout = std::io::stdout().lock();
        let json_mode = output.json;
        let generated =
            generator.generate(&prompt, max_tokens, sampling, &stops, &mut |piece| {
                if !json_mode {
                    let _ = write!(stdout, "{piece}");
                    let _ = stdout.flush();
                }
                ControlFlow::Continue(())
            })?;
        drop(stdout);
        let answer = generated.text.trim().to_string();
        if json_mode {
            output.emit(
                json!({"type": "answer", "content": answer, "prompt_tokens": generated.prompt_tokens,
                       "completion_tokens": generated.completion_tokens,
                       "finish_reason": generated.finish.reason(),
                       "tokens_per_second": generated.completion_tokens as f64 / generated.decode_seconds.max(1e-9)}),
                String::new,
            )?;
        } else {
            println!();
        }
        messages.push(Message::new("assistant", answer));
    }
    Ok(())
}

fn inspect(path: Option<&Path>, global: &Global, output: &Output) -> Result<()> {
    let file = load_model(path, global)?;
    let m = &file.manifest;
    let config = m.llama();
    output.emit(
        json!({"type": "model", "name": m.name, "architecture": m.architecture, "tokenizer": tokenizer_summary(&m.tokenizer),
               "parameters": config.parameter_count(), "payload_bytes": file.payload_len(),
               "file_bytes": file.file_len, "payload_sha256": file.payload_sha256,
               "provenance": m.provenance}),
        || {
            format!(
                "model {}: llama, {} parameters, {} layers, dim {}, hidden {}, heads {}/{} (kv), vocab {}, context {}\n\
                 file {} (payload {}), sha256 {}",
                esc(&m.name),
                config.parameter_count(),
                config.n_layers,
                config.dim,
                config.hidden_dim,
                config.n_heads,
                config.n_kv_heads,
                config.vocab_size,
                config.context_length,
                human_bytes(file.file_len),
                human_bytes(file.payload_len() as u64),
                file.payload_sha256.short()
            )
        },
    )?;
    for info in &m.tensors {
        let view = file.tensor(&info.name)?;
        let values = view.to_f32();
        let n = values.len() as f64;
        let mean = values.iter().map(|v| *v as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|v| (*v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        let min = values.iter().copied().fold(f32::INFINITY, f32::min);
        let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        output.emit(
            json!({"type": "tensor", "name": info.name, "shape": info.shape, "dtype": info.dtype,
                   "offset": info.offset, "bytes": info.size, "sha256": info.sha256,
                   "min": min, "max": max, "mean": mean, "std": var.sqrt()}),
            || {
                format!(
                    "  {:<24} {:>11} {:<5} {:>10}  min {:>8.4} max {:>8.4} mean {:>8.4} std {:>7.4}  {}",
                    esc(&info.name),
                    format!("{}x{}", view.rows, view.cols),
                    view.dtype,
                    human_bytes(info.size),
                    min,
                    max,
                    mean,
                    var.sqrt(),
                    info.sha256.short()
                )
            },
        )?;
    }
    Ok(())
}

/// A tokenizer in a line of JSON (the vocabulary itself can be megabytes).
fn tokenizer_summary(spec: &pxos_llm::format::TokenizerSpec) -> serde_json::Value {
    match spec {
        pxos_llm::format::TokenizerSpec::Vocab(v) => json!({
            "type": "vocab", "model": v.model, "tokens": v.tokens.len(), "merges": v.merges.len(),
            "pre": v.pre, "bos": v.bos, "eos": v.eos, "end_of_turn": v.end_of_turn,
            "add_bos": v.add_bos, "chat_template": v.chat_template.is_some()}),
        other => serde_json::to_value(other).unwrap_or_default(),
    }
}
