//! The command line, declared with clap derive.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// pxOS: a pixel-native runtime. Every file is stored losslessly as pixels in PNG images.
#[derive(Debug, Parser)]
#[command(
    name = "pxos",
    version,
    arg_required_else_help = true,
    propagate_version = true
)]
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// A short tour: encode a file to pixels, file it in PixelFS, verify it.
    Tour,
    /// Raw PXI pixel files: encode, decode, inspect.
    #[command(subcommand)]
    Pixel(PixelCommand),
    /// PixelFS, the content-addressed pixel file store.
    #[command(subcommand)]
    Fs(FsCommand),
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
        /// The PXI image.
        input: PathBuf,
    },
    /// Decode completely and check the SHA-256 (exit 1 if damaged).
    Verify {
        /// The PXI images.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Read LENGTH bytes at OFFSET without decoding the whole image.
    Read {
        /// The PXI image.
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
        /// Print hex instead of raw bytes.
        #[arg(long)]
        hex: bool,
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
    },
    /// Print a file's content to stdout (verified).
    Cat {
        /// PixelFS path.
        path: String,
    },
    /// List a directory.
    Ls {
        /// PixelFS directory.
        #[arg(default_value = "/")]
        dir: String,
    },
    /// Show the tree of a directory.
    Tree {
        /// PixelFS directory.
        #[arg(default_value = "/")]
        dir: String,
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
    /// Write the boot pixel (1x1 PNG of the file id colour) of an entry.
    BootPixel {
        /// PixelFS path.
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
