//! The GPU engine: the CPU engine's forward pass as WGSL compute kernels
//! through wgpu (the `gpu` feature). The CPU engine is the reference.
//!
//! * Every tensor is uploaded as its exact bytes from the pixel payload (one
//!   storage buffer each); the kernels decode f32, f16, bf16, q8_0, q4_0,
//!   q4_1, q4_k and q6_k blocks themselves (`gpu/types.wgsl`).
//! * A token step is one command buffer: the embedding row, every layer
//!   (RMSNorm, Q/K/V products, RoPE, attention over the KV cache, output
//!   projection with the residual, RMSNorm, gate/up, SwiGLU, down with the
//!   residual), the final norm and the logits, then one copy of the logits
//!   back. The host writes only the position, the token and the RoPE angles
//!   before it, and reads the logits after it.
//! * As on the CPU, q8_0 and q4_0 weights multiply activations quantized to q8_0
//!   (integer block sums), so the two engines compute the same products.

use std::sync::Arc;

use wgpu::util::DeviceExt;

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::format::{LlamaConfig, ModelFile};
use crate::model::rope_table;

const MATVEC: &str = include_str!("gpu/matvec.wgsl");
const TYPES: &str = include_str!("gpu/types.wgsl");
const OPS: &str = include_str!("gpu/ops.wgsl");

/// What adapter wgpu found.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

/// The WGSL source of one kernel from `ops.wgsl` (the shared header plus the
/// section after its `//@kernel NAME` line).
fn op_source(name: &str) -> String {
    let (header, rest) = OPS.split_once("//@kernel").expect("ops.wgsl has kernels");
    let section = rest
        .split("//@kernel")
        .map(|s| s.trim_start())
        .find(|s| s.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("ops.wgsl has no kernel {name}"));
    format!(
        "{header}\n{}",
        section.split_once('\n').map_or("", |(_, body)| body)
    )
}

/// The matvec/embed source for one weight type.
fn matvec_source(dtype: DType) -> String {
    let section = TYPES
        .split("//@type")
        .map(str::trim_start)
        .find(|s| s.split_whitespace().next() == Some(dtype.name()))
        .unwrap_or_else(|| panic!("types.wgsl has no type {dtype}"));
    format!(
        "{MATVEC}\n{}",
        section.split_once('\n').map_or("", |(_, body)| body)
    )
}

/// Every WGSL module the engine builds, by name (checked offline by naga in the tests).
pub fn shader_sources() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = DType::ALL
        .iter()
        .map(|d| (format!("matvec_{d}"), matvec_source(*d)))
        .collect();
    for k in ["rmsnorm", "quantize_q8", "rope", "attention", "swiglu"] {
        out.push((k.to_string(), op_source(k)));
    }
    out
}

fn gpu_err(what: impl std::fmt::Display) -> Error {
    Error::usage(format!("GPU: {what}"))
}

/// Finds an adapter (`WGPU_BACKEND` may choose vulkan or gl).
pub fn adapter() -> Result<(wgpu::Instance, wgpu::Adapter)> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        force_fallback_adapter: false,
        compatible_surface: None,
        apply_limit_buckets: false,
    }))
    .map_err(|e| {
        gpu_err(format!(
            "no adapter found ({e}); install a Vulkan or GL driver, or use --device cpu"
        ))
    })?;
    Ok((instance, adapter))
}

/// The adapter wgpu would use, or why there is none.
pub fn describe_adapter() -> std::result::Result<AdapterSummary, String> {
    let (_, adapter) = adapter().map_err(|e| e.to_string())?;
    let info = adapter.get_info();
    Ok(AdapterSummary {
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: format!("{} {}", info.driver, info.driver_info),
    })
}

struct Weight {
    buffer: wgpu::Buffer,
    dtype: DType,
    rows: usize,
    cols: usize,
    row_bytes: usize,
}

/// One recorded dispatch: its pipeline, bind group and workgroup counts.
struct Dispatch {
    pipeline: usize,
    bind: wgpu::BindGroup,
    groups: (u32, u32),
}

/// A model on the GPU, with its KV cache: one generation at a time.
pub struct GpuLlama {
    pub config: LlamaConfig,
    pub adapter: AdapterSummary,
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipelines: Vec<wgpu::ComputePipeline>,
    dispatches: Vec<Dispatch>,
    step: wgpu::Buffer,
    rope: wgpu::Buffer,
    logits: wgpu::Buffer,
    readback: wgpu::Buffer,
    pos: usize,
    /// Which generation's tokens the cache holds (an opaque id).
    owner: usize,
    // Kept alive for the bind groups.
    _weights: Vec<Weight>,
}

impl std::fmt::Debug for GpuLlama {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuLlama")
            .field("config", &self.config)
            .field("adapter", &self.adapter)
            .finish()
    }
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct MatParams {
    rows: u32,
    cols: u32,
    row_bytes: u32,
    x_off: u32,
    y_off: u32,
    y_pos_stride: u32,
    accumulate: u32,
    pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct OpParams {
    n: u32,
    a_off: u32,
    b_off: u32,
    head: u32,
    kv_dim: u32,
    kv_mul: u32,
    ctx: u32,
    a_pos_stride: u32,
    eps: f32,
    scale: f32,
    pad0: u32,
    pad1: u32,
}

fn words(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

impl MatParams {
    fn bytes(&self) -> Vec<u8> {
        words(&[
            self.rows,
            self.cols,
            self.row_bytes,
            self.x_off,
            self.y_off,
            self.y_pos_stride,
            self.accumulate,
            self.pad,
        ])
    }
}

impl OpParams {
    fn bytes(&self) -> Vec<u8> {
        words(&[
            self.n,
            self.a_off,
            self.b_off,
            self.head,
            self.kv_dim,
            self.kv_mul,
            self.ctx,
            self.a_pos_stride,
            self.eps.to_bits(),
            self.scale.to_bits(),
            self.pad0,
            self.pad1,
        ])
    }
}

/// Pipelines by kind.
struct Kernels {
    matvec: Vec<(DType, usize, usize)>,
    rmsnorm: usize,
    quantize: usize,
    rope: usize,
    attention: usize,
    swiglu: usize,
}

impl GpuLlama {
    /// Uploads a model's tensors and records every dispatch of a token step.
    pub fn new(file: Arc<ModelFile>) -> Result<GpuLlama> {
        let config = file.manifest.llama().clone();
        let (_instance, adapter) = adapter()?;
        let info = adapter.get_info();
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info),
        };
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("pxos-llm"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            experimental_features: Default::default(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| gpu_err(format!("cannot open the device: {e}")))?;
        let max_binding = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        // Weights, straight from the payload.
        let upload = |name: &str| -> Result<Weight> {
            let view = file.tensor(name)?;
            let start = file.tensor_start(name)?;
            let len = view.rows * view.row_bytes;
            let mut bytes = file.payload()[start..start + len].to_vec();
            bytes.resize(len.div_ceil(4).max(1) * 4, 0);
            if bytes.len() as u64 > max_binding {
                return Err(gpu_err(format!(
                    "tensor {name} is {} bytes; this adapter binds at most {max_binding}",
                    bytes.len()
                )));
            }
            Ok(Weight {
                buffer: device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(name),
                    contents: &bytes,
                    usage: wgpu::BufferUsages::STORAGE,
                }),
                dtype: view.dtype,
                rows: view.rows,
                cols: view.cols,
                row_bytes: view.row_bytes,
            })
        };
        let c = &config;
        let (kv_dim, hs) = (c.kv_dim(), c.head_size());
        let f32_buffer = |label: &str, n: usize, extra: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: (n.max(1) * 4) as u64,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | extra,
                mapped_at_creation: false,
            })
        };
        let cache_floats = c.n_layers * c.context_length * kv_dim;
        if (cache_floats * 4) as u64 > max_binding {
            return Err(gpu_err(format!(
                "a KV cache of {} bytes per side exceeds this adapter's binding limit of {max_binding} (import with a smaller --context)",
                cache_floats * 4
            )));
        }
        let x = f32_buffer("x", c.dim, wgpu::BufferUsages::empty());
        let xb = f32_buffer("xb", c.dim.max(c.hidden_dim), wgpu::BufferUsages::empty());
        let q = f32_buffer("q", c.dim, wgpu::BufferUsages::empty());
        let hb = f32_buffer("hb", c.hidden_dim, wgpu::BufferUsages::empty());
        let hb2 = f32_buffer("hb2", c.hidden_dim, wgpu::BufferUsages::empty());
        let att = f32_buffer(
            "att",
            c.n_heads * c.context_length,
            wgpu::BufferUsages::empty(),
        );
        let kc = f32_buffer("key cache", cache_floats, wgpu::BufferUsages::empty());
        let vc = f32_buffer("value cache", cache_floats, wgpu::BufferUsages::empty());
        let logits = f32_buffer("logits", c.vocab_size, wgpu::BufferUsages::COPY_SRC);
        let xq = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("xq"),
            size: (c.dim.max(c.hidden_dim) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let xd = f32_buffer(
            "xd",
            c.dim.max(c.hidden_dim) / 32 + 1,
            wgpu::BufferUsages::empty(),
        );
        let step = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("step"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let rope = f32_buffer("rope", hs, wgpu::BufferUsages::empty());
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: (c.vocab_size * 4) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let norm = |name: &str| -> Result<wgpu::Buffer> {
            let values = file.tensor(name)?.to_f32();
            Ok(
                device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some(name),
                    contents: &values
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect::<Vec<u8>>(),
                    usage: wgpu::BufferUsages::STORAGE,
                }),
            )
        };

        // Pipelines: a matvec/embed pair per weight type in use, and the ops.
        let mut pipelines = Vec::new();
        let mut make =
            |source: &str, entry: &str, label: &str, layout: Option<&wgpu::PipelineLayout>| {
                let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some(label),
                    source: wgpu::ShaderSource::Wgsl(source.into()),
                });
                pipelines.push(
                    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                        label: Some(label),
                        layout,
                        module: &module,
                        entry_point: Some(entry),
                        compilation_options: Default::default(),
                        cache: None,
                    }),
                );
                pipelines.len() - 1
            };
        let storage = |binding: u32, read_only: bool| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let mat_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("matvec"),
            entries: &[
                storage(0, true),
                storage(1, true),
                storage(2, false),
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
                storage(4, true),
                storage(5, true),
                storage(6, true),
            ],
        });
        let mat_pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("matvec"),
            bind_group_layouts: &[Some(&mat_layout)],
            immediate_size: 0,
        });
        let mut dtypes: Vec<DType> = Vec::new();
        for info in &file.manifest.tensors {
            let d = DType::parse(&info.dtype)?;
            if !dtypes.contains(&d) {
                dtypes.push(d);
            }
        }
        let mut kernels = Kernels {
            matvec: Vec::new(),
            rmsnorm: 0,
            quantize: 0,
            rope: 0,
            attention: 0,
            swiglu: 0,
        };
        for d in dtypes {
            let src = matvec_source(d);
            let mv = make(
                &src,
                "matvec",
                &format!("matvec_{d}"),
                Some(&mat_pipeline_layout),
            );
            let em = make(
                &src,
                "embed",
                &format!("embed_{d}"),
                Some(&mat_pipeline_layout),
            );
            kernels.matvec.push((d, mv, em));
        }
        kernels.rmsnorm = make(&op_source("rmsnorm"), "main", "rmsnorm", None);
        kernels.quantize = make(&op_source("quantize_q8"), "main", "quantize_q8", None);
        kernels.rope = make(&op_source("rope"), "main", "rope", None);
        kernels.attention = make(&op_source("attention"), "main", "attention", None);
        kernels.swiglu = make(&op_source("swiglu"), "main", "swiglu", None);

        let uniform = |bytes: Vec<u8>| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("params"),
                contents: &bytes,
                usage: wgpu::BufferUsages::UNIFORM,
            })
        };
        // Buffers bound in order: binding i is buffers[i].
        let bind_with = |layout: &wgpu::BindGroupLayout, buffers: &[&wgpu::Buffer]| {
            let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
                .iter()
                .enumerate()
                .map(|(i, b)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: b.as_entire_binding(),
                })
                .collect();
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout,
                entries: &entries,
            })
        };
        let bind = |pipeline: usize, buffers: &[&wgpu::Buffer]| {
            bind_with(&pipelines[pipeline].get_bind_group_layout(0), buffers)
        };
        let mat_bind = |buffers: &[&wgpu::Buffer]| bind_with(&mat_layout, buffers);
        let groups_for = |rows: usize| -> (u32, u32) {
            let rows = rows as u32;
            if rows <= 65_535 {
                (rows, 1)
            } else {
                (65_535, rows.div_ceil(65_535))
            }
        };
        let pipe_of = |d: DType| {
            kernels
                .matvec
                .iter()
                .find(|(t, _, _)| *t == d)
                .map(|(_, mv, em)| (*mv, *em))
                .expect("a pipeline per dtype in use")
        };
        let mut dispatches = Vec::new();
        let mut weights = Vec::new();
        // Matvec: y[y_off + pos*stride ..] (+)= W x.
        let matvec = |w: &Weight,
                      xbuf: &wgpu::Buffer,
                      y: &wgpu::Buffer,
                      y_off: usize,
                      stride: usize,
                      acc: bool,
                      dispatches: &mut Vec<Dispatch>| {
            let params = uniform(
                MatParams {
                    rows: w.rows as u32,
                    cols: w.cols as u32,
                    row_bytes: w.row_bytes as u32,
                    y_off: y_off as u32,
                    y_pos_stride: stride as u32,
                    accumulate: u32::from(acc),
                    ..Default::default()
                }
                .bytes(),
            );
            let (mv, _) = pipe_of(w.dtype);
            dispatches.push(Dispatch {
                pipeline: mv,
                bind: mat_bind(&[&w.buffer, xbuf, y, &params, &xq, &xd, &step]),
                groups: groups_for(w.rows),
            });
        };
        let op = |kind: usize,
                  p: OpParams,
                  buffers: &[&wgpu::Buffer],
                  groups: (u32, u32),
                  dispatches: &mut Vec<Dispatch>| {
            let params = uniform(p.bytes());
            let mut all: Vec<&wgpu::Buffer> = buffers.to_vec();
            // The params buffer goes where each kernel declares it.
            let at = match kind {
                k if k == kernels.rmsnorm || k == kernels.quantize => 3,
                k if k == kernels.rope => 2,
                k if k == kernels.attention => 5,
                _ => 2,
            };
            all.insert(at, &params);
            dispatches.push(Dispatch {
                pipeline: kind,
                bind: bind(kind, &all),
                groups,
            });
        };
        let quantize = |input: &wgpu::Buffer, n: usize, dispatches: &mut Vec<Dispatch>| {
            op(
                kernels.quantize,
                OpParams {
                    n: n as u32,
                    ..Default::default()
                },
                &[input, &xq, &xd],
                ((n as u32 / 32).div_ceil(64).max(1), 1),
                dispatches,
            );
        };
        let rmsnorm = |weight: &wgpu::Buffer, dispatches: &mut Vec<Dispatch>| {
            op(
                kernels.rmsnorm,
                OpParams {
                    n: c.dim as u32,
                    eps: c.norm_eps,
                    ..Default::default()
                },
                &[&x, &xb, weight],
                (1, 1),
                dispatches,
            );
        };
        let embed = upload("token_embd.weight")?;
        {
            let params = uniform(
                MatParams {
                    rows: embed.rows as u32,
                    cols: embed.cols as u32,
                    row_bytes: embed.row_bytes as u32,
                    ..Default::default()
                }
                .bytes(),
            );
            let (_, em) = pipe_of(embed.dtype);
            dispatches.push(Dispatch {
                pipeline: em,
                bind: mat_bind(&[&embed.buffer, &xb, &x, &params, &xq, &xd, &step]),
                groups: ((c.dim as u32).div_ceil(64), 1),
            });
        }
        let q8 = |w: &Weight| w.dtype.reads_q8_input();
        let mut norms = Vec::new();
        for l in 0..c.n_layers {
            let t = |n: &str| format!("blk.{l}.{n}.weight");
            let wq = upload(&t("attn_q"))?;
            let wk = upload(&t("attn_k"))?;
            let wv = upload(&t("attn_v"))?;
            let wo = upload(&t("attn_output"))?;
            let wg = upload(&t("ffn_gate"))?;
            let wu = upload(&t("ffn_up"))?;
            let wd = upload(&t("ffn_down"))?;
            let attn_norm = norm(&t("attn_norm"))?;
            let ffn_norm = norm(&t("ffn_norm"))?;
            rmsnorm(&attn_norm, &mut dispatches);
            if q8(&wq) || q8(&wk) || q8(&wv) {
                quantize(&xb, c.dim, &mut dispatches);
            }
            let layer_off = l * c.context_length * kv_dim;
            matvec(&wq, &xb, &q, 0, 0, false, &mut dispatches);
            matvec(&wk, &xb, &kc, layer_off, kv_dim, false, &mut dispatches);
            matvec(&wv, &xb, &vc, layer_off, kv_dim, false, &mut dispatches);
            let rope_params = |n: usize, off: usize, stride: usize| OpParams {
                n: n as u32,
                a_off: off as u32,
                a_pos_stride: stride as u32,
                head: hs as u32,
                ..Default::default()
            };
            op(
                kernels.rope,
                rope_params(c.dim, 0, 0),
                &[&q, &rope, &step],
                (((c.dim / 2) as u32).div_ceil(64), 1),
                &mut dispatches,
            );
            op(
                kernels.rope,
                rope_params(kv_dim, layer_off, kv_dim),
                &[&kc, &rope, &step],
                (((kv_dim / 2) as u32).div_ceil(64), 1),
                &mut dispatches,
            );
            op(
                kernels.attention,
                OpParams {
                    a_off: layer_off as u32,
                    head: hs as u32,
                    kv_dim: kv_dim as u32,
                    kv_mul: (c.n_heads / c.n_kv_heads) as u32,
                    ctx: c.context_length as u32,
                    scale: 1.0 / (hs as f32).sqrt(),
                    ..Default::default()
                },
                &[&q, &kc, &vc, &att, &xb, &step],
                (c.n_heads as u32, 1),
                &mut dispatches,
            );
            if q8(&wo) {
                quantize(&xb, c.dim, &mut dispatches);
            }
            matvec(&wo, &xb, &x, 0, 0, true, &mut dispatches);
            rmsnorm(&ffn_norm, &mut dispatches);
            if q8(&wg) || q8(&wu) {
                quantize(&xb, c.dim, &mut dispatches);
            }
            matvec(&wg, &xb, &hb, 0, 0, false, &mut dispatches);
            matvec(&wu, &xb, &hb2, 0, 0, false, &mut dispatches);
            op(
                kernels.swiglu,
                OpParams {
                    n: c.hidden_dim as u32,
                    ..Default::default()
                },
                &[&hb, &hb2],
                ((c.hidden_dim as u32).div_ceil(64), 1),
                &mut dispatches,
            );
            if q8(&wd) {
                quantize(&hb, c.hidden_dim, &mut dispatches);
            }
            matvec(&wd, &hb, &x, 0, 0, true, &mut dispatches);
            weights.extend([wq, wk, wv, wo, wg, wu, wd]);
            norms.push((attn_norm, ffn_norm));
        }
        let out_norm = norm("output_norm.weight")?;
        rmsnorm(&out_norm, &mut dispatches);
        let output = if c.tied_embeddings {
            None
        } else {
            Some(upload("output.weight")?)
        };
        let out_w = output.as_ref().unwrap_or(&embed);
        if q8(out_w) {
            quantize(&xb, c.dim, &mut dispatches);
        }
        matvec(out_w, &xb, &logits, 0, 0, false, &mut dispatches);
        weights.push(embed);
        weights.extend(output);
        Ok(GpuLlama {
            config,
            adapter: summary,
            device,
            queue,
            pipelines,
            dispatches,
            step,
            rope,
            logits,
            readback,
            pos: 0,
            owner: 0,
            _weights: weights,
        })
    }

    /// Starts a new generation (the KV cache is overwritten as it goes).
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn owner(&self) -> usize {
        self.owner
    }

    pub fn set_owner(&mut self, owner: usize) {
        self.owner = owner;
    }

    /// Runs one token at the current position; returns the logits.
    pub fn forward(&mut self, token: u32, logits: &mut Vec<f32>) -> Result<()> {
        let c = &self.config;
        if self.pos >= c.context_length {
            return Err(Error::usage(format!(
                "the context of {} tokens is full",
                c.context_length
            )));
        }
        if token as usize >= c.vocab_size {
            return Err(Error::bad_input(format!(
                "token {token} is outside the vocabulary of {}",
                c.vocab_size
            )));
        }
        self.queue
            .write_buffer(&self.step, 0, &words(&[self.pos as u32, token, 0, 0]));
        let table: Vec<u8> = rope_table(self.pos, c.head_size(), c.rope_theta)
            .iter()
            .flat_map(|(s, co)| [s.to_le_bytes(), co.to_le_bytes()].concat())
            .collect();
        self.queue.write_buffer(&self.rope, 0, &table);
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("token step"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("token step"),
                timestamp_writes: None,
            });
            for d in &self.dispatches {
                pass.set_pipeline(&self.pipelines[d.pipeline]);
                pass.set_bind_group(0, &d.bind, &[]);
                pass.dispatch_workgroups(d.groups.0, d.groups.1, 1);
            }
        }
        let size = (c.vocab_size * 4) as u64;
        encoder.copy_buffer_to_buffer(&self.logits, 0, &self.readback, 0, size);
        self.queue.submit([encoder.finish()]);
        let slice = self.readback.slice(..);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .map_err(|e| gpu_err(format!("the device did not finish: {e}")))?;
        rx.recv()
            .map_err(|_| gpu_err("the readback was dropped"))?
            .map_err(|e| gpu_err(format!("cannot read the logits back: {e}")))?;
        {
            let view = slice
                .get_mapped_range()
                .map_err(|e| gpu_err(format!("cannot view the logits: {e}")))?;
            logits.clear();
            logits.extend(
                view.chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            );
        }
        self.readback.unmap();
        self.pos += 1;
        Ok(())
    }
}
