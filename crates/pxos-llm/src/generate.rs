//! Generating text: prompt in, tokens streamed out.

use std::ops::ControlFlow;
use std::sync::Arc;

use crate::error::Result;
use crate::format::ModelFile;
use crate::model::{Llama, State};
use crate::sample::{Sampler, Sampling};
use crate::seedv0::{SeedV0, V0State};
use crate::tokenizer::Tokenizer;

/// The engines a generator can drive.
#[derive(Debug)]
pub enum Engine {
    Llama(Llama),
    /// The GPU engine (its KV cache lives on the device).
    #[cfg(feature = "gpu")]
    Gpu(std::sync::Mutex<crate::gpu::GpuLlama>),
    /// The seed's v0 MLP (no positions, so no context limit).
    SeedV0(SeedV0),
}

enum EngineState {
    Llama(State),
    /// The tokens this generation has run: the device's cache is rebuilt from
    /// them if another generation used the device in between.
    #[cfg(feature = "gpu")]
    Gpu(usize, Vec<u32>, Vec<f32>),
    SeedV0(V0State),
}

impl Engine {
    fn context(&self) -> usize {
        match self {
            Engine::Llama(l) => l.config.context_length,
            #[cfg(feature = "gpu")]
            Engine::Gpu(g) => {
                g.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .config
                    .context_length
            }
            Engine::SeedV0(_) => usize::MAX,
        }
    }

    fn state(&self) -> EngineState {
        match self {
            Engine::Llama(l) => EngineState::Llama(l.state()),
            #[cfg(feature = "gpu")]
            Engine::Gpu(_) => {
                static NEXT: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(1);
                EngineState::Gpu(
                    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    Vec::new(),
                    Vec::new(),
                )
            }
            Engine::SeedV0(m) => EngineState::SeedV0(m.state()),
        }
    }

    fn forward<'s>(&self, state: &'s mut EngineState, token: u32) -> Result<&'s [f32]> {
        match (self, state) {
            (Engine::Llama(l), EngineState::Llama(s)) => l.forward(s, token),
            #[cfg(feature = "gpu")]
            (Engine::Gpu(g), EngineState::Gpu(id, history, logits)) => {
                let mut gpu = g.lock().unwrap_or_else(|e| e.into_inner());
                // Another generation ran in between: replay this one's tokens.
                if gpu.pos() != history.len() || gpu.owner() != *id {
                    gpu.reset();
                    for &t in history.iter() {
                        gpu.forward(t, logits)?;
                    }
                }
                gpu.forward(token, logits)?;
                history.push(token);
                gpu.set_owner(*id);
                Ok(logits)
            }
            (Engine::SeedV0(m), EngineState::SeedV0(s)) => m.forward(s, token),
            _ => unreachable!("a state always comes from its own engine"),
        }
    }
}

impl EngineState {
    fn pos(&self) -> usize {
        match self {
            EngineState::Llama(s) => s.pos,
            #[cfg(feature = "gpu")]
            EngineState::Gpu(_, history, _) => history.len(),
            EngineState::SeedV0(_) => 0,
        }
    }
}

/// A model ready to generate: the engine and its tokenizer.
#[derive(Debug)]
pub struct Generator {
    pub engine: Engine,
    pub tokenizer: Tokenizer,
    /// The model's name (the id the server answers to).
    pub name: String,
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// The model produced its end-of-sequence token or a stop string.
    Stop,
    /// `max_tokens` or the context ran out.
    Length,
    /// The caller stopped it (a client went away).
    Cancelled,
}

impl Finish {
    /// The OpenAI `finish_reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
            Finish::Cancelled => "cancelled",
        }
    }
}

/// What a generation did.
#[derive(Clone, Debug)]
pub struct Generated {
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish: Finish,
    /// Seconds spent on the prompt and on the new tokens.
    pub prompt_seconds: f64,
    pub decode_seconds: f64,
    /// Times the context filled and was restarted from its recent half.
    pub context_shifts: usize,
}

impl Generator {
    pub fn new(file: Arc<ModelFile>) -> Result<Generator> {
        let tokenizer = Tokenizer::new(file.manifest.tokenizer.clone());
        Ok(Generator {
            name: file.manifest.name.clone(),
            engine: Engine::Llama(Llama::new(file)?),
            tokenizer,
        })
    }

    /// A generator on the chosen device. `Auto` takes a hardware GPU when
    /// one is found and the CPU otherwise; the returned note says which.
    pub fn on_device(file: Arc<ModelFile>, device: crate::Device) -> Result<(Generator, String)> {
        match device {
            crate::Device::Cpu => Ok((Generator::new(file)?, "cpu".into())),
            #[cfg(feature = "gpu")]
            crate::Device::Gpu | crate::Device::Auto => {
                if device == crate::Device::Auto {
                    match crate::gpu::describe_adapter() {
                        Ok(a) if a.device_type != "Cpu" => {}
                        Ok(a) => {
                            return Ok((
                                Generator::new(file)?,
                                format!("cpu (the only GPU adapter is {}, a software one)", a.name),
                            ));
                        }
                        Err(why) => return Ok((Generator::new(file)?, format!("cpu ({why})"))),
                    }
                }
                let name = file.manifest.name.clone();
                let tokenizer = Tokenizer::new(file.manifest.tokenizer.clone());
                let gpu = crate::gpu::GpuLlama::new(file)?;
                let note = format!("gpu: {} ({})", gpu.adapter.name, gpu.adapter.backend);
                Ok((
                    Generator {
                        name,
                        engine: Engine::Gpu(std::sync::Mutex::new(gpu)),
                        tokenizer,
                    },
                    note,
                ))
            }
            #[cfg(not(feature = "gpu"))]
            crate::Device::Gpu => Err(crate::error::Error::usage(
                "this pxos was built without the gpu feature; use --device cpu",
            )),
            #[cfg(not(feature = "gpu"))]
            crate::Device::Auto => Ok((
                Generator::new(file)?,
                "cpu (built without the gpu feature)".into(),
            )),
        }
    }

    /// A generator for a seed v0 model.
    pub fn seed_v0(model: SeedV0) -> Generator {
        Generator {
            name: model.name.clone(),
            tokenizer: Tokenizer::seed_v0(model.vocab as u32),
            engine: Engine::SeedV0(model),
        }
    }

    /// Continues `prompt` with up to `max_tokens` tokens. `on_text` receives
    /// each piece of text as it is decoded and may stop the generation.
    pub fn generate(
        &self,
        prompt: &str,
        max_tokens: usize,
        sampling: &Sampling,
        stop: &[String],
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generated> {
        let started = std::time::Instant::now();
        let context = self.engine.context();
        let mut tokens = self.tokenizer.encode(prompt);
        // Keep the end of a prompt longer than the context, leaving room to answer.
        let room = context.saturating_sub(max_tokens.min(context / 2)).max(1);
        if tokens.len() > room {
            let bos = tokens[0];
            let cut = tokens.len() - (room - 1);
            tokens = std::iter::once(bos)
                .chain(tokens[cut..].iter().copied())
                .collect();
        }
        let prompt_tokens = tokens.len();
        let mut state = self.engine.state();
        let mut logits = Vec::new();
        for &token in &tokens {
            logits.clear();
            logits.extend_from_slice(self.engine.forward(&mut state, token)?);
        }
        let prompt_seconds = started.elapsed().as_secs_f64();
        let decode_started = std::time::Instant::now();
        let mut sampler = Sampler::new(sampling.clone());
        let mut stream = self.tokenizer.stream();
        let mut text = String::new();
        let mut completion_tokens = 0;
        let mut finish = Finish::Length;
        let mut history = tokens.clone();
        let mut shifts = 0;
        while completion_tokens < max_tokens {
            let token = sampler.sample(&mut logits);
            completion_tokens += 1;
            if self.tokenizer.is_end(token) {
                finish = Finish::Stop;
                break;
            }
            let piece = stream.push(token);
            if !piece.is_empty() {
                let before = text.len();
                text.push_str(&piece);
                if let Some(at) = find_stop(&text, stop, before) {
                    let emitted = &text[before..at.max(before)];
                    if !emitted.is_empty() {
                        let _ = on_text(emitted);
                    }
                    text.truncate(at);
                    finish = Finish::Stop;
                    break;
                }
                if on_text(&piece).is_break() {
                    finish = Finish::Cancelled;
                    break;
                }
            }
            history.push(token);
            if state.pos() >= context && context < 4 {
                break;
            }
            if state.pos() >= context {
                // The context is full: start again from BOS and the most
                // recent half of the text (a context shift), and go on.
                let keep = context / 2;
                let recent = history[history.len() - keep..].to_vec();
                state = self.engine.state();
                // A vocabulary without BOS (some BPE ones) starts from the text.
                if self.tokenizer.has_bos() {
                    self.engine.forward(&mut state, self.tokenizer.bos())?;
                }
                for &t in &recent[..keep - 1] {
                    self.engine.forward(&mut state, t)?;
                }
                shifts += 1;
                let last = recent[keep - 1];
                logits.clear();
                logits.extend_from_slice(self.engine.forward(&mut state, last)?);
                continue;
            }
            logits.clear();
            logits.extend_from_slice(self.engine.forward(&mut state, token)?);
        }
        if finish == Finish::Length {
            let rest = stream.finish();
            if !rest.is_empty() {
                text.push_str(&rest);
                let _ = on_text(&rest);
            }
        }
        Ok(Generated {
            text,
            prompt_tokens,
            completion_tokens,
            finish,
            prompt_seconds,
            decode_seconds: decode_started.elapsed().as_secs_f64(),
            context_shifts: shifts,
        })
    }
}

/// Runs tokens one at a time through a generator's engine (for logits).
pub struct Stepper<'g> {
    engine: &'g Engine,
    state: EngineState,
    logits: Vec<f32>,
}

impl Stepper<'_> {
    /// Runs `token` at the next position; returns the logits.
    pub fn forward(&mut self, token: u32) -> Result<&[f32]> {
        let logits = self.engine.forward(&mut self.state, token)?;
        self.logits.clear();
        self.logits.extend_from_slice(logits);
        Ok(&self.logits)
    }
}

impl Generator {
    /// A fresh sequence for stepping through tokens.
    pub fn stepper(&self) -> Stepper<'_> {
        Stepper {
            engine: &self.engine,
            state: self.engine.state(),
            logits: Vec::new(),
        }
    }
}

/// Where the first stop string begins, if one ends in the text added at `from`.
fn find_stop(text: &str, stop: &[String], from: usize) -> Option<usize> {
    stop.iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let search_from = from.saturating_sub(s.len() - 1);
            let search_from = (search_from..=from)
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(from);
            text[search_from..]
                .find(s.as_str())
                .map(|i| search_from + i)
        })
        .min()
}
