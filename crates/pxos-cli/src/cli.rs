//! The command line, declared with clap derive.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// pxOS: a pixel-native runtime. Every file is stored losslessly as pixels in PNG images.
#[derive(Debug, Parser)]
#[command(name = "pxos", version, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// Print JSON Lines on stdout (one object per line) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// The pxOS home directory [default: $XDG_DATA_HOME/pxos or ~/.local/share/pxos].
    #[arg(long, global = true, env = "PXOS_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// When to use colour.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more detail.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Refuse a PXI whose header declares a payload over this size
    /// (K, M, G suffixes) [default: 4G].
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_size)]
    pub max_payload: Option<u64>,
    /// Refuse a PXI that decodes to more than N times its file size (checked
    /// once it decodes to over 1 GiB) [default: 200].
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_ratio: Option<u64>,
    /// Refuse an input read whole (a source, JSON, YAML, a program image) over
    /// this size (K, M, G suffixes) [default: 64M].
    #[arg(long, global = true, value_name = "BYTES", value_parser = parse_size)]
    pub max_input: Option<u64>,
    /// Wait this many seconds for another pxos process's write lock before
    /// giving up (0: do not wait) [default: 60].
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_seconds)]
    pub lock_timeout: Option<std::time::Duration>,
}

impl Global {
    /// The PXI decoding limits, with the flags applied.
    pub fn pixel_limits(&self) -> pxos_pixel::Limits {
        let mut limits = pxos_pixel::Limits::default();
        if let Some(max) = self.max_payload {
            limits.max_payload = max;
        }
        if let Some(max) = self.max_ratio {
            limits.max_ratio = max;
        }
        limits
    }

    /// The cartridge limits, with the PXI flags applied.
    pub fn cart_limits(&self) -> pxos_cart::cartridge::Limits {
        pxos_cart::cartridge::Limits {
            pixel: self.pixel_limits(),
            ..pxos_cart::cartridge::Limits::default()
        }
    }
}

/// A byte count: digits with an optional K, M, G or T suffix (powers of 1024).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&text[..text.len() - 1], 10),
        Some('M') => (&text[..text.len() - 1], 20),
        Some('G') => (&text[..text.len() - 1], 30),
        Some('T') => (&text[..text.len() - 1], 40),
        _ => (text, 0),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a size (bytes, or a number with K, M, G or T)"))?;
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("'{text}' is too large"))
}

/// Seconds, possibly fractional, at most a day.
pub fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a number of seconds"))?;
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("{text} is not between 0 and 86400 seconds"));
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// Caps on one program run (`pxos run`, `pxos debug`).
#[derive(Clone, Copy, Debug, Args)]
pub struct RunCapsArgs {
    /// Bytes the program may write with FILE_WRITE (K, M, G suffixes).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "64M")]
    pub max_write_bytes: u64,
    /// Bytes the program may read with FILE_READ and BLOB (K, M, G suffixes).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "1G")]
    pub max_read_bytes: u64,
    /// Distinct files the program may write.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_files: u64,
    /// Host memory the run may hold for printed output and warnings (K, M, G suffixes).
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value = "64M")]
    pub max_host_memory: u64,
    /// Failed-syscall warnings kept (the rest are counted).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_warnings: usize,
}

impl RunCapsArgs {
    pub fn caps(&self) -> pxos_vm::Caps {
        pxos_vm::Caps {
            max_write_bytes: self.max_write_bytes,
            max_read_bytes: self.max_read_bytes,
            max_files: self.max_files,
            max_host_memory: self.max_host_memory,
            max_warnings: self.max_warnings,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot pxOS: on a fresh home, install the built-in default world as cartridge 1.0.0,
    /// then run its boot sequence stage by stage and write the boot log and the screen.
    Boot {
        /// Check the sequence and modules without running them.
        #[arg(long)]
        dry_run: bool,
        /// Use this boot sequence (JSON) instead of the cartridge's.
        #[arg(long, value_name = "FILE")]
        sequence: Option<PathBuf>,
        /// Write the boot log here [default: HOME/boot/boot.log].
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
        /// Write the screen here [default: HOME/boot/screen.png].
        #[arg(long, value_name = "FILE")]
        screen: Option<PathBuf>,
        /// Boot this cartridge (NAME or NAME@VERSION) instead of the current one.
        #[arg(long)]
        cartridge: Option<String>,
        /// End after the boot report, without the shell prompt (as when stdin
        /// is not a terminal).
        #[arg(long)]
        no_shell: bool,
    },
    /// The shell of the running world: a prompt (help, ls, cat, run, ps,
    /// kernel, log, screen, clear, exit) run by the world's shell program.
    /// Reads commands from stdin, one per line, when it is not a terminal.
    Shell {
        /// The shell of this cartridge (NAME or NAME@VERSION) instead of the
        /// current one's; a cartridge that is not current runs sandboxed.
        #[arg(long)]
        cartridge: Option<String>,
    },
    /// Show the current cartridge, experiments, history, kernel and log state.
    Status,
    /// What the running system is: version, cartridge, capabilities, programs, sandbox, GPU.
    Inspect,
    /// A short tour: encode a file to pixels, file it in PixelFS, verify it.
    Tour,
    /// Raw PXI pixel files: encode, decode, inspect.
    #[command(subcommand)]
    Pixel(PixelCommand),
    /// PixelFS, the content-addressed pixel file store.
    #[command(subcommand)]
    Fs(FsCommand),
    /// Assemble PXVM source into a program image (a PNG whose pixels are the code).
    Asm {
        /// The .pxasm source.
        file: PathBuf,
        /// The program image to write [default: FILE with .png].
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Disassemble a program image (the listing assembles back to the same pixels).
    Disasm {
        /// The program image.
        program: PathBuf,
    },
    /// Run a program in PXVM through the hypervisor (every run is logged): the NAME of
    /// a program of the current cartridge (trusted), or a program image or .pxasm file
    /// (sandboxed unless it is a file of the current cartridge, or --trusted).
    Run {
        /// A program name, a program image or a .pxasm source.
        program: PathBuf,
        /// Arguments for the program: R1 = their count, R2 = the address of
        /// argv (pointers to NUL-terminated strings at the top of memory).
        args: Vec<String>,
        /// Write the screen to this PNG when the program ends.
        #[arg(long)]
        screen: Option<PathBuf>,
        /// Write memory, as the 512-pixel-wide VRAM texture it maps onto, to this PNG.
        #[arg(long)]
        memory: Option<PathBuf>,
        /// Instruction budget (at most 10000000000).
        #[arg(long, default_value_t = 100_000_000, value_parser = clap::value_parser!(u64).range(1..=pxos_vm::MAX_FUEL))]
        fuel: u64,
        #[command(flatten)]
        caps: RunCapsArgs,
        /// Print every executed instruction to stderr.
        #[arg(long)]
        trace: bool,
        /// Run NAME from this cartridge (NAME or NAME@VERSION) instead of the
        /// current one; a cartridge that is not current runs sandboxed.
        #[arg(long, value_name = "CARTRIDGE")]
        cartridge: Option<String>,
        /// Lift the sandbox for a program file that is not part of the current
        /// cartridge (its execution record says so).
        #[arg(long, conflicts_with = "cartridge")]
        trusted: bool,
        /// Consent to a sandboxed program asking the model (SYS_LLM); recorded.
        #[arg(long)]
        allow_llm: bool,
    },
    /// Debug a program: step, continue, breakpoints, registers, memory, screen.
    /// Reads commands from stdin (one per line; `help` lists them). It runs through
    /// the hypervisor, sandboxed like `pxos run FILE`.
    Debug {
        /// The program image (or .pxasm source).
        program: PathBuf,
        /// Instruction budget for the whole session (at most 10000000000).
        #[arg(long, default_value_t = 100_000_000, value_parser = clap::value_parser!(u64).range(1..=pxos_vm::MAX_FUEL))]
        fuel: u64,
        #[command(flatten)]
        caps: RunCapsArgs,
        /// Lift the sandbox (recorded).
        #[arg(long)]
        trusted: bool,
    },
    /// The kernel store: versions, current kernel, boot counting, rollback.
    #[command(subcommand)]
    Kernel(KernelCommand),
    /// Demonstrations.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// Cartridges: whole worlds in one pixel archive (.pxa).
    #[command(subcommand)]
    Cart(CartCommand),
    /// The evolution log: who did what, when and why (hash-chained).
    Log(LogArgs),
    /// Genesis: the executable constitution.
    #[command(subcommand)]
    Genesis(GenesisCommand),
    /// Simulated VRAM: build a VRAM OS from a roadmap, evaluate it, improve it.
    #[command(subcommand)]
    Vram(VramCommand),
    /// pxOS v1: real x86 boot sectors built from WRITE/DEFINE primitives, run in QEMU.
    #[command(subcommand)]
    X86(X86Command),
    /// LLMs in pixels: PXI-LLM weights, training pixellm, generation, an OpenAI-compatible server.
    #[command(subcommand)]
    Llm(LlmCommand),
    /// The desktop in a browser: the live VRAM, the boot screen, PixelFS, the log, lineage, kernels, the map.
    View {
        /// Port on 127.0.0.1 (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Start the system's browser on the page (when there is a desktop).
        #[arg(long)]
        open: bool,
    },
    /// InfiniteMap: a sparse, unbounded 2D pixel space stored as PXI tiles in the home.
    #[command(subcommand)]
    Map(MapCommand),
    /// Remotes: S3-compatible object storage (such as a Garage cluster) to push
    /// PixelFS and cartridges to, or read-only http(s) places to read pixels from.
    /// pxOS contacts no host but the remotes added here.
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// The task queue agents work from: add, list, next, show, start, complete, fail, retry.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// The coaching loop: a model takes tasks, its work is reviewed and really checked.
    #[command(subcommand)]
    Coach(CoachCommand),
    /// Model providers: the built-in pixel model and the OpenAI-compatible
    /// endpoints added here (pxOS contacts no other model host).
    Agents(AgentsArgs),
    /// Evolution proposals: guardrails, world rebuilds from a template, migrations.
    #[command(subcommand)]
    Evolve(EvolveCommand),
    /// The LLM architect: an endpoint and its system prompt.
    #[command(subcommand)]
    Architect(ArchitectCommand),
}

/// Which model answers: `builtin`, an endpoint added with `pxos agents add`, or `replay:FILE`.
#[derive(Debug, Args)]
pub struct ProviderArgs {
    /// builtin, an endpoint's name, or replay:FILE (a recorded session)
    /// [default: the home's default, `pxos agents`].
    #[arg(long, value_name = "PROVIDER")]
    pub provider: Option<String>,
}

/// `pxos tasks add`'s arguments.
#[derive(Debug, Args)]
pub struct TaskAddArgs {
    /// What to do, in a line.
    pub title: String,
    /// program (PXVM assembly), roadmap, cartridge, world-rebuild, migration, architecture-change.
    #[arg(long, default_value = "program")]
    pub action: String,
    /// The longer description the model gets.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Higher first.
    #[arg(long, default_value_t = 5, allow_negative_numbers = true)]
    pub priority: i64,
    /// Who takes it: llm, human or auto.
    #[arg(long, default_value = "llm")]
    pub agent: String,
    #[arg(long)]
    pub phase: Option<String>,
    /// A task that must be completed first (repeatable).
    #[arg(long = "depends-on", value_name = "ID")]
    pub depends_on: Vec<String>,
    #[arg(long, default_value_t = pxos_agent::queue::DEFAULT_MAX_ATTEMPTS)]
    pub max_attempts: u32,
    /// A line the program must print, in order (repeatable; program tasks).
    #[arg(long = "expect", value_name = "LINE")]
    pub expect: Vec<String>,
    /// An argument the program is run with (repeatable; program tasks).
    #[arg(long = "arg", value_name = "ARG", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// The accepted artefact's file name in the task's workspace.
    #[arg(long)]
    pub path: Option<String>,
    /// KEY=VALUE metadata (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TasksCommand {
    /// Add a task.
    Add(Box<TaskAddArgs>),
    /// The tasks, oldest first.
    List {
        /// pending, in_progress, review, completed, failed or blocked.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        phase: Option<String>,
    },
    /// The task the coaching loop would take next (filters apply before picking).
    Next {
        #[arg(long)]
        phase: Option<String>,
        /// The agent asking: llm, human or auto.
        #[arg(long, default_value = "llm")]
        agent: String,
    },
    /// One task, in full.
    Show { id: String },
    /// pending -> in_progress (uses an attempt).
    Start { id: String },
    /// in_progress or review -> completed.
    Complete {
        id: String,
        #[arg(long)]
        score: Option<u8>,
        #[arg(long)]
        feedback: Option<String>,
    },
    /// in_progress or review -> failed.
    Fail {
        id: String,
        #[arg(long)]
        error: String,
    },
    /// failed or blocked -> pending; a task out of attempts needs --more-attempts.
    Retry {
        id: String,
        #[arg(long, default_value_t = 0)]
        more_attempts: u32,
    },
    /// Stop a task until a person retries it.
    Block {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CoachCommand {
    /// Take tasks from the queue and coach them: generate, review, check, accept
    /// (score >= 8 and every check passing), at most 3 rounds each.
    Run {
        /// Only tasks of this phase.
        #[arg(long)]
        phase: Option<String>,
        /// Most tasks to take.
        #[arg(long, default_value_t = 1)]
        max_tasks: usize,
        /// Rounds per task (1 to 3).
        #[arg(long, default_value_t = pxos_agent::coach::MAX_ROUNDS, value_parser = clap::value_parser!(u32).range(1..=3))]
        max_rounds: u32,
        /// Tokens per answer.
        #[arg(long, default_value_t = 512)]
        max_tokens: usize,
        #[command(flatten)]
        provider: ProviderArgs,
    },
    /// Replay a recorded session (HOME/agents/sessions/*.json) from its
    /// recorded answers, with the real checks; the queue is not touched.
    Replay { session: PathBuf },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentsArgs {
    #[command(subcommand)]
    pub command: Option<AgentsCommand>,
    /// Do not contact the endpoints to see whether they answer.
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Add (or replace) an OpenAI-compatible endpoint.
    Add {
        /// Its name (letters, digits, - and _).
        name: String,
        /// The API base, such as http://127.0.0.1:11434/v1.
        #[arg(long)]
        url: String,
        /// The model id to ask for.
        #[arg(long)]
        model: String,
        /// The environment variable holding its API key (the key is never stored).
        #[arg(long)]
        api_key_env: Option<String>,
        /// Seconds to wait for an answer.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        /// Make it the default provider.
        #[arg(long)]
        default: bool,
    },
    /// Remove an endpoint.
    Remove { name: String },
    /// Choose the default provider: builtin or an endpoint's name.
    Default { provider: String },
    /// The model policy: refusals, prompt size, rate limit.
    Policy {
        /// Requests per minute (0: no limit).
        #[arg(long)]
        rate: Option<u32>,
        /// Longest prompt in bytes.
        #[arg(long)]
        max_prompt: Option<usize>,
        /// Refuse prompts containing this (repeatable).
        #[arg(long)]
        refuse: Vec<String>,
        /// Forget the refusals first.
        #[arg(long)]
        clear_refusals: bool,
    },
    /// Every exchange with a model (newest last).
    Log {
        /// Only the last N.
        #[arg(short = 'n', long)]
        last: Option<usize>,
    },
    /// Ask the model a question (through the policy; logged).
    Ask {
        text: String,
        #[command(flatten)]
        provider: ProviderArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvolveCommand {
    /// Propose an evolution: checks the guardrails and, when they hold, queues the
    /// task (`pxos coach run` takes it). Nothing is promoted without a person.
    Propose {
        /// Why, with what was measured ("boot takes 120 ms; the target is 50 ms").
        #[arg(long)]
        reason: String,
        /// world-rebuild, migration or architecture-change.
        #[arg(long, default_value = "world-rebuild")]
        kind: String,
        /// The world template (YAML) [default: the built-in one, `pxos evolve template`].
        #[arg(long)]
        template: Option<PathBuf>,
    },
    /// The guardrails, checked against a reason, without proposing.
    Guardrails {
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Print the built-in world template.
    Template,
}

#[derive(Debug, Subcommand)]
pub enum ArchitectCommand {
    /// Register the architect: its provider and system prompt.
    Setup {
        /// builtin or an endpoint's name.
        #[arg(long, default_value = "builtin")]
        provider: String,
        /// The system prompt [default: the built-in architect prompt].
        #[arg(long)]
        system_prompt: Option<String>,
    },
    /// Ask the architect one question and show its answer and timing.
    Test {
        #[arg(default_value = "Name one improvement to the pxOS boot sequence.")]
        question: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add a remote. Its key is kept in HOME/credentials.json (mode 0600) with --key-id
    /// and --secret-file or --secret-stdin; PXOS_REMOTE_<NAME>_KEY_ID and _SECRET override
    /// it for one run, and AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY serve a remote with none.
    Add {
        /// The remote's name (such as origin).
        name: String,
        /// s3://BUCKET/PREFIX, or https://HOST/PATH (read-only).
        url: String,
        /// The S3 endpoint, such as http://127.0.0.1:3900 [default: AWS].
        #[arg(long)]
        endpoint: Option<String>,
        /// The S3 region [default: us-east-1; Garage's is usually garage].
        #[arg(long)]
        region: Option<String>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// List the remotes (never their secrets).
    List,
    /// Remove a remote and its stored credentials (nothing on the remote is touched).
    Remove { name: String },
}

/// An access key to store for a remote.
#[derive(Debug, Args)]
pub struct KeyArgs {
    /// The access key id to store.
    #[arg(long, value_name = "ID")]
    pub key_id: Option<String>,
    /// Read the secret key from this file.
    #[arg(long, value_name = "FILE", requires = "key_id")]
    pub secret_file: Option<PathBuf>,
    /// Read the secret key from stdin.
    #[arg(long, requires = "key_id", conflicts_with = "secret_file")]
    pub secret_stdin: bool,
}

#[derive(Debug, Subcommand)]
#[command(allow_negative_numbers = true)]
pub enum MapCommand {
    /// Store a file's bytes at (X, Y); they read back exactly with `map get X Y`.
    Put {
        #[arg(allow_negative_numbers = true)]
        x: i64,
        #[arg(allow_negative_numbers = true)]
        y: i64,
        file: PathBuf,
        /// Tile side for a new map (32..=4096).
        #[arg(long, default_value_t = pxos_map::DEFAULT_TILE_SIZE)]
        tile_size: u32,
    },
    /// Read back the bytes stored at (X, Y) (to stdout, or -o FILE).
    Get {
        #[arg(allow_negative_numbers = true)]
        x: i64,
        #[arg(allow_negative_numbers = true)]
        y: i64,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Render the region (X, Y, W, H) to a PNG; empty space is black.
    Render {
        #[arg(allow_negative_numbers = true)]
        x: i64,
        #[arg(allow_negative_numbers = true)]
        y: i64,
        w: u32,
        h: u32,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Tiles, cache, notes and writes.
    Stats,
    /// Set the note of the tile holding (X, Y) (an empty TEXT removes it).
    Note {
        #[arg(allow_negative_numbers = true)]
        x: i64,
        #[arg(allow_negative_numbers = true)]
        y: i64,
        text: String,
    },
    /// Talk to the tile holding (X, Y): the model answers with the tile's
    /// conversation as context; the history is kept in the tile's note.
    Chat {
        #[arg(allow_negative_numbers = true)]
        x: i64,
        #[arg(allow_negative_numbers = true)]
        y: i64,
        /// What to say (none: print the conversation so far).
        text: Option<String>,
        #[command(flatten)]
        provider: ProviderArgs,
    },
    /// Set one pixel (R, G, B) at (X, Y).
    Set {
        #[arg(allow_negative_numbers = true)]
        x: i64,
        #[arg(allow_negative_numbers = true)]
        y: i64,
        r: u8,
        g: u8,
        b: u8,
    },
}

/// Sampling flags shared by `llm generate`.
#[derive(Debug, Clone, clap::Args)]
pub struct SamplingArgs {
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Keep only the K most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// Keep the most likely tokens up to this probability mass (1: all).
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// The sampler's seed (a seed reproduces the same text).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum LlmCommand {
    /// Build a training corpus from a pxOS repository (docs, Rust sources, assembly,
    /// roadmaps), with a held-out split chosen by path.
    Corpus {
        /// The repository to read.
        #[arg(long, default_value = ".")]
        root: PathBuf,
        /// The corpus PXI to write.
        #[arg(short, long, default_value = "corpus.png")]
        output: PathBuf,
    },
    /// Train pixellm (a llama-style byte-level decoder) on a corpus and write its weights.
    Train {
        /// The corpus PXI (`pxos llm corpus`).
        #[arg(long)]
        corpus: PathBuf,
        /// The model PXI-LLM to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Continue from these f32 weights (the new model records them as its parent).
        #[arg(long, value_name = "MODEL")]
        from: Option<PathBuf>,
        /// Optimizer steps [default: pixellm's 1500].
        #[arg(long)]
        steps: Option<usize>,
        /// Sequences per step.
        #[arg(long)]
        batch: Option<usize>,
        /// Bytes per sequence.
        #[arg(long)]
        seq_len: Option<usize>,
        /// Peak learning rate.
        #[arg(long)]
        learning_rate: Option<f32>,
        /// Model width (attention and embedding).
        #[arg(long)]
        dim: Option<usize>,
        /// Feed-forward width.
        #[arg(long)]
        hidden_dim: Option<usize>,
        /// Decoder layers.
        #[arg(long)]
        layers: Option<usize>,
        /// Attention heads.
        #[arg(long)]
        heads: Option<usize>,
        /// Key/value heads (grouped-query attention).
        #[arg(long)]
        kv_heads: Option<usize>,
        /// Initialisation and batch seed.
        #[arg(long)]
        seed: Option<u64>,
        /// The model's name in its manifest.
        #[arg(long, default_value = "pixellm")]
        name: String,
    },
    /// Continue a prompt with a model (default: the built-in pixellm); text streams out.
    Generate {
        /// A PXI-LLM file, or a seed v0 model (its .meta.json beside the PNG).
        model: Option<PathBuf>,
        /// A registered model, NAME or NAME@VERSION (`pxos llm list`).
        #[arg(
            long = "model",
            id = "registered",
            value_name = "NAME@VERSION",
            conflicts_with = "model"
        )]
        registered: Option<String>,
        /// The text to continue.
        #[arg(long, default_value = "")]
        prompt: String,
        /// Most tokens to generate.
        #[arg(long, default_value_t = 200)]
        max_tokens: usize,
        #[command(flatten)]
        sampling: SamplingArgs,
        /// cpu, gpu, or auto (a hardware GPU when there is one, else the CPU).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Pack a model as a cartridge (kind model) and register it, with lineage, in the log.
    Register {
        /// The PXI-LLM file.
        model: PathBuf,
        /// The cartridge name [default: the model's name].
        #[arg(long)]
        name: Option<String>,
        #[arg(long, default_value = "1.0.0")]
        version: String,
        /// The parent model, NAME@VERSION [default: found from the weights' provenance].
        #[arg(long)]
        parent: Option<String>,
        /// Why (recorded in the log).
        #[arg(long, default_value = "register a model")]
        reason: String,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// List the registered models.
    List,
    /// Show a model's manifest, sizes and per-tensor statistics.
    Inspect {
        /// A PXI-LLM file (default: the built-in pixellm).
        model: Option<PathBuf>,
    },
    /// Convert a model's matrices to another type (explicit and lossy), reporting the error.
    Quantize {
        model: PathBuf,
        /// f32, f16, bf16, q8_0, q4_0, q4_1, q4_k or q6_k.
        #[arg(long)]
        dtype: String,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Serve a model over an OpenAI-compatible HTTP API on 127.0.0.1
    /// (/v1/models, /v1/chat/completions, /v1/completions; streaming with SSE).
    Serve {
        /// A PXI-LLM file (default: the built-in pixellm).
        model: Option<PathBuf>,
        /// The port (0: any free port; the address is printed).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Largest request body, in bytes (K, M suffixes).
        #[arg(long, default_value = "1M", value_parser = parse_size)]
        max_body: u64,
        /// Largest max_tokens a request may ask for (also the default).
        #[arg(long, default_value_t = 1024)]
        max_tokens: usize,
        /// Generations at once; more get 429.
        #[arg(long, default_value_t = 4)]
        max_concurrent: usize,
        /// cpu, gpu, or auto (a hardware GPU when there is one, else the CPU).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Import a model: a llama-architecture GGUF file (tensors keep their exact
    /// bytes; the file's own tokenizer and chat template) or a llama2.c checkpoint.
    Import {
        /// The GGUF file or llama2.c checkpoint.
        input: PathBuf,
        /// The PXI-LLM to write.
        #[arg(short, long)]
        output: PathBuf,
        /// gguf or llama2c [default: from the file's first bytes].
        #[arg(long)]
        format: Option<String>,
        /// llama2.c only: its tokenizer.bin.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// The model's name [default: the file's general.name, else its stem].
        #[arg(long)]
        name: Option<String>,
        /// Most positions to keep (the KV cache is allocated for all of them).
        #[arg(long, default_value_t = pxos_llm::import::DEFAULT_MAX_CONTEXT)]
        context: usize,
    },
    /// Export a model as a llama2.c checkpoint (f32 version 0 for run.c, or
    /// int8 version 2 for runq.c).
    Export {
        /// A PXI-LLM file (default: the built-in pixellm).
        model: Option<PathBuf>,
        /// The target format (llama2c).
        #[arg(long, default_value = "llama2c")]
        format: String,
        /// f32 (version 0) or q8_0 (version 2).
        #[arg(long, default_value = "f32")]
        dtype: String,
        /// Version 2's group size [default: 32 for q8_0 weights (exact), else 64
        /// halved until it divides the widths, as llama2.c's export does].
        #[arg(long)]
        group_size: Option<usize>,
        /// The checkpoint to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Also write the vocabulary as llama2.c's tokenizer.bin.
        #[arg(long)]
        tokenizer: Option<PathBuf>,
    },
    /// Chat with a model in the terminal, with its chat template (type /reset
    /// to start over, /quit or end of input to leave).
    Chat {
        /// A PXI-LLM file (default: the built-in pixellm).
        model: Option<PathBuf>,
        /// A system message to start the conversation.
        #[arg(long)]
        system: Option<String>,
        /// Most tokens per answer.
        #[arg(long, default_value_t = 512)]
        max_tokens: usize,
        #[command(flatten)]
        sampling: SamplingArgs,
        /// cpu, gpu, or auto (a hardware GPU when there is one, else the CPU).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Show how a model's tokenizer splits a text.
    Tokenize {
        /// A PXI-LLM file (default: the built-in pixellm).
        model: Option<PathBuf>,
        /// The text.
        #[arg(long)]
        text: String,
    },
    /// Run token ids through a model and print the logits (the last position's,
    /// or every position's).
    Logits {
        /// A PXI-LLM file (default: the built-in pixellm).
        model: Option<PathBuf>,
        /// Comma-separated token ids.
        #[arg(long, value_delimiter = ',', required = true)]
        tokens: Vec<u32>,
        /// Every position's logits, not only the last.
        #[arg(long)]
        all_positions: bool,
        /// cpu or gpu.
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Draw a model's weights as a picture (the model looking at itself).
    Render {
        /// A PXI-LLM file (default: the built-in pixellm).
        model: Option<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum X86Command {
    /// Build a boot sector from primitive source (WRITE, DEFINE, CALL, COMMENT).
    Build {
        /// The primitive source [default: the built-in pxOS v1 shell].
        src: Option<PathBuf>,
        /// The image to write.
        #[arg(short, long, default_value = "pxos.bin")]
        output: PathBuf,
        /// Reproduce the seed's builder byte for byte (origin 0: such an image cannot boot).
        #[arg(long)]
        compat_seed: bool,
        /// Also write the image as a PXI PNG (labels included in its metadata).
        #[arg(long, value_name = "PNG")]
        png: Option<PathBuf>,
        /// Let later writes replace earlier bytes everywhere (normally refused; see OVERWRITE).
        #[arg(long)]
        allow_overwrite: bool,
    },
    /// Disassemble a boot sector: 16-bit x86 with labels, code told from data.
    Disasm {
        /// A raw image, or a PXI PNG written by `x86 build --png`.
        image: PathBuf,
        /// Take labels from this primitive source (a PNG carries its own).
        #[arg(long, value_name = "SRC")]
        src: Option<PathBuf>,
        /// File offset where the sector starts (0x.. or decimal).
        #[arg(long, default_value = "0", value_parser = parse_address)]
        offset: u32,
        /// Bytes to list.
        #[arg(long, default_value = "512", value_parser = parse_address)]
        length: u32,
    },
    /// Boot an image in QEMU: a window for a person (or this terminal with --curses),
    /// or --headless: type keys and print the screen, for scripts and agents.
    Run {
        /// A raw image, or a PXI PNG written by `x86 build --png`.
        image: PathBuf,
        /// Show the machine in this terminal instead of a window.
        #[arg(long, conflicts_with = "headless")]
        curses: bool,
        /// No display: boot, type --keys, print the VGA text screen after each step, stop.
        #[arg(long)]
        headless: bool,
        /// Keys to type, once per step (repeatable): characters, \n Enter, \b Backspace,
        /// \t Tab, {name} any QEMU key name.
        #[arg(long, requires = "headless", value_name = "KEYS")]
        keys: Vec<String>,
        /// Before typing, wait until the screen shows this text [default: until it is still].
        #[arg(long, requires = "headless", value_name = "TEXT")]
        wait_for: Option<String>,
        /// Most seconds to wait for the screen.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Print the built-in pxOS v1 shell's primitive source.
    Source,
}

/// Parses `0x..`, `0o..`, `0b..` or decimal.
fn parse_address(text: &str) -> Result<u32, String> {
    let lower = text.to_ascii_lowercase();
    let (digits, radix) = if let Some(hex) = lower.strip_prefix("0x") {
        (hex, 16)
    } else if let Some(oct) = lower.strip_prefix("0o") {
        (oct, 8)
    } else if let Some(bin) = lower.strip_prefix("0b") {
        (bin, 2)
    } else {
        (lower.as_str(), 10)
    };
    u32::from_str_radix(digits, radix).map_err(|e| format!("{text:?} is not a number: {e}"))
}

#[derive(Debug, Subcommand)]
pub enum CartCommand {
    /// Pack a directory (with its cartridge.json) into a cartridge.
    Pack {
        /// The world directory.
        dir: PathBuf,
        /// The cartridge to write [default: NAME-VERSION.pxa].
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Unpack a cartridge into a new directory (every file verified first).
    Unpack {
        /// The cartridge.
        cartridge: PathBuf,
        /// The directory to create.
        dir: PathBuf,
    },
    /// Show a cartridge's manifest without unpacking it.
    Info {
        /// The cartridge.
        cartridge: PathBuf,
    },
    /// Register a cartridge as experimental (it is copied into the registry).
    Register {
        /// The cartridge file.
        cartridge: PathBuf,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// List registered cartridges and their status.
    List,
    /// Run the Genesis checks on a registered cartridge and record the result.
    Test {
        /// NAME or NAME@VERSION [default: the current cartridge].
        cartridge: Option<String>,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Make a cartridge current: needs a passing Genesis run and a person's approval.
    Promote {
        /// NAME@VERSION.
        cartridge: String,
        /// The person approving (an LLM cannot approve).
        #[arg(long)]
        approved_by: Option<String>,
        /// Promote without a passing Genesis run (recorded as forced).
        #[arg(long)]
        force: bool,
        /// Why.
        #[arg(long, default_value = "")]
        reason: String,
        /// The approver is an LLM (always refused; recorded for transparency).
        #[arg(long)]
        llm: bool,
    },
    /// Make a cartridge that was current before current again (a new entry; the abandoned
    /// one is deprecated). It needs a reason, a Genesis pass on record and a person:
    /// the --actor, or --approved-by when an LLM asks (alone, an LLM only records a request).
    Rollback {
        /// NAME@VERSION.
        cartridge: String,
        /// Why (required).
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        actor: ActorArgs,
        /// The person approving a rollback another actor asked for.
        #[arg(long, value_name = "NAME")]
        approved_by: Option<String>,
    },
    /// Show a cartridge's ancestry as a tree, optionally as a PNG graph.
    Lineage {
        /// NAME or NAME@VERSION [default: the current cartridge].
        cartridge: Option<String>,
        /// Also draw it as a PNG.
        #[arg(long)]
        png: Option<PathBuf>,
    },
    /// Check the registry against the evolution log and the stored cartridges (exit 1
    /// on damage); --repair rebuilds it from the log, keeping the damaged file.
    Fsck {
        /// Rebuild the registry from the log (nothing is deleted).
        #[arg(long)]
        repair: bool,
    },
    /// Send a registered cartridge, with its lineage and Genesis record, to a remote.
    Push {
        /// NAME@VERSION.
        cartridge: String,
        /// The remote [default: the only one, or origin].
        remote: Option<String>,
    },
    /// Fetch a cartridge from a remote (its hash checked) and register it as
    /// experimental; it becomes current only by `cart test` and a person's `cart promote`.
    Pull {
        /// NAME@VERSION.
        cartridge: String,
        /// The remote [default: the only one, or origin].
        remote: Option<String>,
        #[command(flatten)]
        actor: ActorArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum VramCommand {
    /// Build a VRAM image from a roadmap (a YAML file, or `default` / `deficient`).
    Build {
        /// The roadmap.
        roadmap: String,
        /// The VRAM PNG to write (provenance goes beside it as .provenance.json).
        #[arg(short, long, default_value = "vram_os_stage1.png")]
        output: PathBuf,
        /// Show every step live in `pxos view`.
        #[arg(long)]
        view: bool,
    },
    /// Score a VRAM image: structural and execution checks (exit 1 below full marks).
    Eval {
        /// The VRAM PNG.
        image: PathBuf,
    },
    /// Run the improvement loop: build, evaluate, reflect, propose, for N generations.
    Loop {
        /// The starting roadmap (a YAML file, or `default` / `deficient`).
        roadmap: String,
        /// Most generations to run.
        #[arg(long, default_value_t = 5)]
        generations: u32,
        /// Where to write each generation's files.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Show every generation live in `pxos view`.
        #[arg(long)]
        view: bool,
        /// Who proposes the next roadmap: rules (built in) or llm (the configured model).
        #[arg(long, default_value = "rules")]
        proposer: String,
        #[command(flatten)]
        provider: ProviderArgs,
    },
    /// Boot the VRAM OS in an image and run it: the kernel schedules the processes.
    Run {
        /// The VRAM PNG (built by `pxos vram build`).
        image: PathBuf,
        /// Most instructions to run, kernel and processes together.
        #[arg(long, default_value_t = pxos_vram::os::DEFAULT_STEPS)]
        steps: u64,
        /// Save the screen device as a PNG.
        #[arg(long)]
        screen: Option<PathBuf>,
        /// Save the VRAM after the run (control blocks, counters and stacks included).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Show the run live in `pxos view`.
        #[arg(long)]
        view: bool,
    },
    /// Who wrote pixel (X, Y): writer, roadmap step, sequence number.
    Who {
        /// The VRAM PNG (its .provenance.json must be beside it).
        image: PathBuf,
        x: u32,
        y: u32,
    },
    /// Compare two VRAM images: changed pixels per region and a diff PNG.
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// Write the diff image here.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GenesisCommand {
    /// Run every executable Genesis check on a registered cartridge (exit 1 if any fails).
    Check {
        /// NAME or NAME@VERSION.
        cartridge: String,
    },
}

/// Who is acting (recorded in the evolution log).
#[derive(Debug, Args)]
pub struct ActorArgs {
    /// Your name as recorded in the evolution log [default: $USER].
    #[arg(long)]
    pub actor: Option<String>,
    /// The actor is an LLM (recorded as such; an LLM can never approve a promotion).
    #[arg(long)]
    pub llm: bool,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LogArgs {
    #[command(subcommand)]
    pub command: Option<LogCommand>,
    /// Only entries by this actor: a kind (`human` or `llm`) or a name.
    #[arg(long, value_name = "KIND|NAME")]
    pub actor: Option<String>,
    /// Only entries about this cartridge (NAME or NAME@VERSION).
    #[arg(long)]
    pub cart: Option<String>,
    /// Show the network log instead: every request to a remote (time, method,
    /// URL without credentials, bytes, status).
    #[arg(long, conflicts_with_all = ["actor", "cart"])]
    pub network: bool,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Check the hash chain, the segments and the head from the last verified
    /// checkpoint on, and that the registry and kernel store still find their
    /// place in the log (exit 1 if tampered).
    Verify {
        /// Check every entry from the first, and replay the registry and the
        /// kernel store against the whole log.
        #[arg(long)]
        full: bool,
    },
    /// Record a note in the log.
    Note {
        /// What to record.
        reason: String,
        /// The action name.
        #[arg(long, default_value = "note")]
        action: String,
        #[command(flatten)]
        actor: ActorArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KernelCommand {
    /// List every kernel version.
    List,
    /// Show the current kernel.
    Current,
    /// Install a kernel from a program image or .pxasm source.
    Install {
        #[command(flatten)]
        actor: ActorArgs,
        /// The program image or source.
        program: PathBuf,
        /// Version name, such as v3.0.
        #[arg(long)]
        version: String,
        /// Parent kernel id [default: the current kernel].
        #[arg(long)]
        parent: Option<u32>,
        /// Make it current (on trial until it boots cleanly).
        #[arg(long)]
        current: bool,
        /// Boots it may fail before it is reverted.
        #[arg(long, default_value_t = 1)]
        tries: u32,
    },
    /// Make a kernel current (on trial unless it has booted well before).
    Switch {
        /// Kernel id.
        id: u32,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Go back to an earlier kernel [default: the last good one before the current].
    Rollback {
        /// Kernel id.
        id: Option<u32>,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Boot the current kernel once (reverting automatically if it fails).
    Boot {
        /// Instruction budget.
        #[arg(long, default_value_t = 10_000_000)]
        fuel: u64,
        /// Write the screen to this PNG.
        #[arg(long)]
        screen: Option<PathBuf>,
    },
    /// Show the kernel changes recorded in the evolution log.
    Log,
    /// Check the kernel state against the evolution log and the images (exit 1 on
    /// damage); --repair rebuilds it from the log, keeping the damaged file.
    Fsck {
        /// Rebuild the kernel state from the log (nothing is deleted).
        #[arg(long)]
        repair: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DemoCommand {
    /// Seed 002: kernel v1.0 boots, asks SELF_MODIFY for v2.0, v2.0 boots.
    Evolve {
        /// Where to write evolution_v1.png and evolution_v2.png.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        #[command(flatten)]
        actor: ActorArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PixelCommand {
    /// Encode a file into a PXI image (a PNG).
    Encode {
        /// The file to encode.
        input: PathBuf,
        /// The PNG to write [default: INPUT.png].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Payload kind: blob, text, program, archive, tensor, table.
        #[arg(long, default_value = "blob")]
        kind: String,
        /// Bytes per pixel: rgb (3) or rgba (4).
        #[arg(long, default_value = "rgb")]
        layout: String,
        /// stored, fast, best or auto [default: by kind].
        #[arg(long)]
        compression: Option<String>,
        /// Image width in pixels (24..=16384) [default: about square].
        #[arg(long)]
        width: Option<u32>,
        /// Metadata to store with the payload (JSON by convention).
        #[arg(long)]
        metadata: Option<String>,
    },
    /// Decode a PXI image back to its exact bytes (written only if the hash verifies).
    Decode {
        /// The PXI image.
        input: PathBuf,
        /// Where to write the payload; `-` for stdout.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Show the header of a PXI image.
    Info {
        /// The PXI image: a file, or an s3:// or https:// URL under a remote.
        input: PathBuf,
    },
    /// Decode completely and check the SHA-256 (exit 1 if damaged).
    Verify {
        /// The PXI images: files, or s3:// or https:// URLs under a remote.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Read LENGTH bytes at OFFSET without decoding the whole image (over a
    /// remote: ranged GETs of the header, the index and the bands read).
    Read {
        /// The PXI image: a file, or an s3:// or https:// URL under a remote.
        input: PathBuf,
        /// Payload offset in bytes.
        #[arg(long)]
        offset: u64,
        /// Number of bytes.
        #[arg(long)]
        length: usize,
        /// Write the bytes to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Print the bytes as one hex string.
        #[arg(long, conflicts_with = "raw")]
        hex: bool,
        /// Write the raw bytes to stdout even when it is a terminal (a
        /// terminal gets a hex dump, like `xxd`, otherwise; a pipe or a file
        /// gets the raw bytes).
        #[arg(long)]
        raw: bool,
    },
    /// Write a viewable PNG of a PXI image (alpha made opaque, optionally scaled).
    View {
        /// The PXI image.
        input: PathBuf,
        /// The PNG to write.
        #[arg(short, long)]
        output: PathBuf,
        /// Scale each pixel to an NxN square (1..=64).
        #[arg(long, default_value_t = 1)]
        scale: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum FsCommand {
    /// Create an empty PixelFS in the home directory (nothing happens if one exists).
    Init,
    /// Add a file at PATH.
    Add {
        /// PixelFS path, such as /docs/readme.
        path: String,
        /// The host file.
        file: PathBuf,
        #[command(flatten)]
        options: AddArgs,
    },
    /// Add every file of a host directory below DEST.
    AddDir {
        /// The host directory.
        dir: PathBuf,
        /// PixelFS directory to add under, such as /src.
        dest: String,
        #[command(flatten)]
        options: AddArgs,
        /// Include hidden files and directories.
        #[arg(long)]
        hidden: bool,
    },
    /// Scan a host directory and add its files, guessing each type.
    Discover {
        /// The host directory.
        dir: PathBuf,
        /// PixelFS directory to add under [default: /DIRNAME].
        #[arg(long)]
        prefix: Option<String>,
        /// Only list what would be added.
        #[arg(long)]
        dry_run: bool,
        /// Include hidden files and directories.
        #[arg(long)]
        hidden: bool,
        /// Replace entries whose content changed.
        #[arg(long)]
        replace: bool,
    },
    /// Copy a file out of PixelFS (verified).
    Get {
        /// PixelFS path.
        path: String,
        /// Host file to write [default: the path's last component].
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Read it as it was in snapshot N (`pxos fs log` lists them).
        #[arg(long, value_name = "N")]
        at: Option<u64>,
    },
    /// Print a file's content to stdout (verified).
    Cat {
        /// PixelFS path.
        path: String,
        /// Read it as it was in snapshot N.
        #[arg(long, value_name = "N")]
        at: Option<u64>,
    },
    /// List a directory.
    Ls {
        /// PixelFS directory.
        #[arg(default_value = "/")]
        dir: String,
        /// List it as it was in snapshot N.
        #[arg(long, value_name = "N")]
        at: Option<u64>,
    },
    /// Show the tree of a directory.
    Tree {
        /// PixelFS directory.
        #[arg(default_value = "/")]
        dir: String,
        /// Show it as it was in snapshot N.
        #[arg(long, value_name = "N")]
        at: Option<u64>,
    },
    /// List the snapshots, newest first: every committed tree is kept.
    Log {
        /// Show at most N snapshots.
        #[arg(long, short = 'n', value_name = "N")]
        limit: Option<u64>,
    },
    /// What changed between snapshots A and B [default B: the current one].
    Diff { a: u64, b: Option<u64> },
    /// Make snapshot N's tree current again, as a new snapshot (nothing is deleted).
    Revert { snapshot: u64 },
    /// Send the current root and every object it reaches that REMOTE lacks, then
    /// move the remote's reference (refused with "the remote moved" if another push won).
    Push {
        /// The remote [default: the only one, or origin].
        remote: Option<String>,
    },
    /// Fetch REMOTE's root and what it reaches (every object checked against its
    /// hash first) and make it the current tree, as a new snapshot.
    Pull {
        /// The remote [default: the only one, or origin].
        remote: Option<String>,
        /// Pull even if this home has a tree it never pushed (it stays in `fs log`).
        #[arg(long)]
        force: bool,
    },
    /// Add URL as a remote (named origin) and pull its PixelFS into this home.
    Clone {
        /// s3://BUCKET/PREFIX.
        url: String,
        /// The S3 endpoint, such as http://127.0.0.1:3900.
        #[arg(long)]
        endpoint: Option<String>,
        /// The S3 region.
        #[arg(long)]
        region: Option<String>,
        /// The name to give the remote.
        #[arg(long, default_value = "origin")]
        name: String,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Find entries by path, file id (0x1234abcd) or boot-pixel PNG.
    Resolve {
        /// A path, a file id or a PNG file.
        query: String,
    },
    /// Show one entry and its object.
    Info {
        /// PixelFS path.
        path: String,
    },
    /// Decode objects and check their hashes (all entries by default).
    Verify {
        /// PixelFS paths.
        paths: Vec<String>,
    },
    /// Check the whole store: table, objects, leftovers.
    Fsck,
    /// Unlink a path (its object is kept until an explicit gc).
    Rm {
        /// PixelFS path.
        path: String,
    },
    /// List unreferenced objects; delete them only with --apply.
    Gc {
        /// Only list (the default).
        #[arg(long, conflicts_with = "apply")]
        dry_run: bool,
        /// Delete the listed objects.
        #[arg(long)]
        apply: bool,
    },
    /// Write the boot pixel (1x1 PNG of the file id colour) of an entry, or
    /// with `/` the project boot pixel: the root directory's hash, which
    /// addresses the whole tree (`fs resolve PIXEL.png` lists it).
    BootPixel {
        /// PixelFS path, or `/` for the whole tree.
        path: String,
        /// The PNG to write.
        #[arg(short, long)]
        output: PathBuf,
    },
}

/// Options of `fs add` and `fs add-dir`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Entry type (a PXI kind: blob, text, program, archive, tensor, table) [default: guessed].
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// What the file is.
    #[arg(long)]
    pub description: Option<String>,
    /// Replace an existing entry with other content (the old object is kept).
    #[arg(long)]
    pub replace: bool,
}
