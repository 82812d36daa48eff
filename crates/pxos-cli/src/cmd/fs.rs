//! `pxos fs ...`: PixelFS.

use std::io::Write;
use std::path::Path;

use crate::error::{Context, Result, bail};
use pxos_fs::{AddOptions, AddStatus, Added, Entry, PixelFs};
use serde_json::{Value, json};

use crate::Outcome;
use crate::cli::{AddArgs, FsCommand, Global};
use crate::home::fs_root;
use crate::output::{Output, human_bytes};
use pxos_pixel::text::escape;

pub fn run(command: &FsCommand, global: &Global, output: &Output) -> Result<Outcome> {
    let root = fs_root(global)?;
    match command {
        FsCommand::Push { remote } => super::remote::fs_push(remote.as_deref(), global, output),
        FsCommand::Pull { remote, force } => {
            super::remote::fs_pull(remote.as_deref(), *force, global, output)
        }
        FsCommand::Clone {
            url,
            endpoint,
            region,
            name,
            key,
        } => super::remote::fs_clone(
            url,
            endpoint.as_deref(),
            region.as_deref(),
            name,
            key,
            global,
            output,
        ),
        FsCommand::Init => {
            let existed = PixelFs::open(&root).is_ok();
            let fs = PixelFs::init(&root)?.with_limits(global.pixel_limits());
            output.emit(
                json!({"type": "init", "root": fs.root(), "created": !existed}),
                || {
                    if existed {
                        format!("PixelFS already exists at {}", fs.root().display())
                    } else {
                        format!("created PixelFS at {}", fs.root().display())
                    }
                },
            )?;
            Ok(Outcome::Success)
        }
        FsCommand::Add {
            path,
            file,
            options,
        } => {
            let fs = PixelFs::open_or_init(&root)?.with_limits(global.pixel_limits());
            let added = fs.add_file(path, file, &add_options(options)?)?;
            emit_added(output, &added)?;
            Ok(Outcome::Success)
        }
        FsCommand::AddDir {
            dir,
            dest,
            options,
            hidden,
        } => {
            let fs = PixelFs::open_or_init(&root)?.with_limits(global.pixel_limits());
            add_tree(&fs, dir, dest, &add_options(options)?, *hidden, output)
        }
        FsCommand::Discover {
            dir,
            prefix,
            dry_run,
            hidden,
            replace,
        } => {
            let prefix = match prefix {
                Some(prefix) => prefix.clone(),
                None => {
                    let absolute = std::fs::canonicalize(dir)
                        .with_context(|| format!("cannot read {}", dir.display()))?;
                    let name = absolute
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "root".into());
                    format!("/{name}")
                }
            };
            if *dry_run {
                for found in pxos_fs::discover::walk(dir, *hidden)? {
                    let kind = pxos_fs::discover::guess_kind(&found.source);
                    let path = format!("{}/{}", prefix.trim_end_matches('/'), found.relative);
                    output.emit(json!({"type": "discovered", "path": path, "source": found.source, "kind": kind.name()}), || {
                        format!("would add {path} ({}) from {}", kind.name(), found.source.display())
                    })?;
                }
                return Ok(Outcome::Success);
            }
            let fs = PixelFs::open_or_init(&root)?.with_limits(global.pixel_limits());
            let options = AddOptions {
                replace: *replace,
                ..AddOptions::default()
            };
            add_tree(&fs, dir, &prefix, &options, *hidden, output)
        }
        FsCommand::Get {
            path,
            output: target,
            at,
        } => {
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            let entry = fs.get_at(path, *at)?;
            let target = match target {
                Some(target) => target.clone(),
                None => path.rsplit('/').next().unwrap_or("out").into(),
            };
            fs.export(&entry, &target)?;
            output.emit(json!({"type": "get", "path": path, "output": target, "size": entry.size, "sha256": entry.sha256}), || {
                format!("{path} -> {} ({}, verified)", target.display(), human_bytes(entry.size))
            })?;
            Ok(Outcome::Success)
        }
        FsCommand::Cat { path, at } => {
            if output.json {
                bail!(
                    Usage,
                    "`fs cat` writes raw content; use `fs get` or `fs info` with --json"
                );
            }
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            let entry = fs.get_at(path, *at)?;
            let mut stdout = std::io::stdout().lock();
            fs.read_to(&entry, &mut stdout)?;
            stdout.flush()?;
            Ok(Outcome::Success)
        }
        FsCommand::Ls { dir, at } => ls(
            &PixelFs::open(&root)?.with_limits(global.pixel_limits()),
            dir,
            *at,
            output,
        ),
        FsCommand::Tree { dir, at } => tree(
            &PixelFs::open(&root)?.with_limits(global.pixel_limits()),
            dir,
            *at,
            output,
        ),
        FsCommand::Log { limit } => {
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            let head = fs.head()?;
            let snapshots = fs.snapshots()?;
            let limit = limit.map_or(usize::MAX, |n| n as usize);
            for snapshot in snapshots.iter().rev().take(limit) {
                let current = snapshot.snapshot == head.snapshot;
                output.emit(
                    json!({"type": "snapshot", "snapshot": snapshot, "current": current}),
                    || {
                        // Three paths on the line; --json has the first 16.
                        let shown: Vec<&str> =
                            snapshot.paths.iter().take(3).map(String::as_str).collect();
                        let mut paths = shown.join(" ");
                        if snapshot.changes > shown.len() as u64 {
                            paths.push_str(&format!(
                                " (+{} more)",
                                snapshot.changes - shown.len() as u64
                            ));
                        }
                        format!(
                            "{}{:>6}  {}  {:<10} {} files, {}  root {}  {}",
                            if current { "*" } else { " " },
                            snapshot.snapshot,
                            snapshot.time,
                            escape(&snapshot.op),
                            snapshot.files,
                            human_bytes(snapshot.bytes),
                            snapshot.root.short(),
                            escape(&paths)
                        )
                    },
                )?;
            }
            Ok(Outcome::Success)
        }
        FsCommand::Diff { a, b } => {
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            let b = match b {
                Some(b) => *b,
                None => fs.head()?.snapshot,
            };
            let changes = fs.diff(*a, b)?;
            for change in &changes {
                output.emit(json!({"type": "change", "change": change}), || {
                    let mark = match change.status {
                        "added" => output.good("A"),
                        "removed" => output.bad("D"),
                        _ => "M".to_string(),
                    };
                    format!("{mark} {}", escape(&change.path))
                })?;
            }
            output.emit(
                json!({"type": "diff-summary", "from": a, "to": b, "changes": changes.len()}),
                || {
                    format!(
                        "{} changes from snapshot {a} to snapshot {b}",
                        changes.len()
                    )
                },
            )?;
            Ok(Outcome::Success)
        }
        FsCommand::Revert { snapshot } => {
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            let before = fs.head()?;
            let head = fs.revert(*snapshot)?;
            output.emit(json!({"type": "revert", "to": snapshot, "snapshot": head.snapshot, "root": head.root, "files": head.files}), || {
                if head.snapshot == before.snapshot {
                    format!("snapshot {snapshot}'s tree is already current (snapshot {})", head.snapshot)
                } else {
                    format!("snapshot {} now holds snapshot {snapshot}'s tree ({} files); snapshots {}..={} stay readable with --at", head.snapshot, head.files, snapshot + 1, before.snapshot)
                }
            })?;
            Ok(Outcome::Success)
        }
        FsCommand::Resolve { query } => {
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            // A project boot pixel: the root of a snapshot.
            if let Some(snapshot) = fs.resolve_root(query)? {
                output.emit(json!({"type": "resolved-root", "query": query, "snapshot": snapshot.snapshot, "root": snapshot.root}), || {
                    format!("{query} -> the root of snapshot {} ({}, {} files)", snapshot.snapshot, snapshot.root, snapshot.files)
                })?;
                return tree(&fs, "/", Some(snapshot.snapshot), output);
            }
            for entry in fs.resolve(query)? {
                let object = fs
                    .object_location(&entry.sha256)?
                    .unwrap_or_else(|| "MISSING".into());
                output.emit(json!({"type": "resolved", "query": query, "entry": entry_json(&entry), "object": object}), || {
                    format!("{} -> {} {} -> {}", query, entry.path, entry.file_id, object)
                })?;
            }
            Ok(Outcome::Success)
        }
        FsCommand::Info { path } => {
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            let entry = fs.get(path)?;
            let location = fs.object_location(&entry.sha256)?;
            let object = location.clone().unwrap_or_else(|| "MISSING".into());
            let object_len = location
                .as_ref()
                .and_then(|l| std::fs::metadata(l.split('#').next().unwrap_or(l)).ok())
                .map(|m| m.len());
            output.emit(json!({"type": "entry", "entry": entry_json(&entry), "object": object, "object_len": object_len}), || {
                format!(
                    "{}\n  type         {}\n  description  {}\n  size         {} ({} bytes)\n  sha256       {}\n  file id      {}\n  colour       {}\n  created      {}\n  object       {} ({})",
                    entry.path, entry.kind, entry.description, human_bytes(entry.size), entry.size, entry.sha256,
                    entry.file_id, entry.color, entry.created, object,
                    object_len.map(human_bytes).unwrap_or_else(|| "MISSING".into())
                )
            })?;
            Ok(Outcome::Success)
        }
        FsCommand::Verify { paths } => {
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            let problems = fs.verify(paths)?;
            let checked = if paths.is_empty() {
                fs.table()?.len()
            } else {
                paths.len()
            };
            for problem in &problems {
                output.emit(json!({"type": "problem", "subject": problem.subject, "message": problem.message}), || {
                    format!("{} {}: {}", output.bad("DAMAGED"), problem.subject, problem.message)
                })?;
            }
            output.emit(
                json!({"type": "verify", "checked": checked, "damaged": problems.len()}),
                || format!("checked {checked} entries, {} damaged", problems.len()),
            )?;
            Ok(if problems.is_empty() {
                Outcome::Success
            } else {
                Outcome::Negative
            })
        }
        FsCommand::Fsck => {
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            let report = fs.fsck()?;
            for problem in &report.problems {
                output.emit(json!({"type": "problem", "subject": problem.subject, "message": problem.message}), || {
                    format!("{} {}: {}", output.bad("PROBLEM"), problem.subject, problem.message)
                })?;
            }
            output.emit(json!({"type": "fsck", "report": report}), || {
                let mut text = format!(
                    "{} entries, {} objects, {} unreferenced, {} problems",
                    report.entries, report.objects, report.unreferenced.len(), report.problems.len()
                );
                if !report.leftovers.is_empty() {
                    text.push_str(&format!("\n{} temporary files from an interrupted write (removed by the next write)", report.leftovers.len()));
                }
                text.push_str(&format!("\n{}", if report.is_clean() { output.good("clean") } else { output.bad("DAMAGED") }));
                text
            })?;
            Ok(if report.is_clean() {
                Outcome::Success
            } else {
                Outcome::Negative
            })
        }
        FsCommand::Rm { path } => {
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            let entry = fs.remove(path)?;
            let snapshot = fs.head()?.snapshot;
            output.emit(json!({"type": "removed", "entry": entry_json(&entry), "snapshot": snapshot}), || {
                format!("unlinked {} in snapshot {snapshot} (its object is kept: earlier snapshots still hold it)", entry.path)
            })?;
            Ok(Outcome::Success)
        }
        FsCommand::Gc { dry_run: _, apply } => {
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            let objects = fs.gc(*apply)?;
            for object in &objects {
                output.emit(
                    json!({"type": "gc", "sha256": object.sha256, "object": object.path, "file_len": object.file_len, "removed": apply}),
                    || format!("{} {} ({})", if *apply { "removed" } else { "unreferenced" }, object.sha256, human_bytes(object.file_len)),
                )?;
            }
            output.emit(
                json!({"type": "gc-summary", "objects": objects.len(), "removed": apply}),
                || {
                    if *apply {
                        format!("removed {} unreferenced objects", objects.len())
                    } else {
                        format!(
                            "{} unreferenced objects (dry run; `pxos fs gc --apply` deletes them)",
                            objects.len()
                        )
                    }
                },
            )?;
            Ok(Outcome::Success)
        }
        FsCommand::BootPixel {
            path,
            output: target,
        } => {
            let fs = PixelFs::open(&root)?.with_limits(global.pixel_limits());
            if path == "/" {
                let head = fs.head()?;
                let rgba = head.root.0[..4].try_into().expect("4 bytes");
                pxos_fs::write_boot_pixel(target, rgba)?;
                let color = format!("#{}", &head.root.to_hex()[..8]);
                output.emit(json!({"type": "boot-pixel", "path": "/", "output": target, "snapshot": head.snapshot, "root": head.root, "color": color}), || {
                    format!("wrote {} (1x1, colour {color}: the root of snapshot {}, {} files; `pxos fs resolve {}` lists the tree)", target.display(), head.snapshot, head.files, target.display())
                })?;
                return Ok(Outcome::Success);
            }
            let entry = fs.get(path)?;
            pxos_fs::write_boot_pixel(target, entry.rgba())?;
            output.emit(json!({"type": "boot-pixel", "path": path, "output": target, "file_id": entry.file_id, "color": entry.color}), || {
                format!("wrote {} (1x1, colour {} = file id {}; an address, resolved through PixelFS)", target.display(), entry.color, entry.file_id)
            })?;
            Ok(Outcome::Success)
        }
    }
}

fn add_options(args: &AddArgs) -> Result<AddOptions> {
    Ok(AddOptions {
        kind: args.kind.as_deref().map(str::parse).transpose()?,
        description: args.description.clone(),
        replace: args.replace,
    })
}

fn add_tree(
    fs: &PixelFs,
    dir: &Path,
    prefix: &str,
    options: &AddOptions,
    hidden: bool,
    output: &Output,
) -> Result<Outcome> {
    let mut emit_error = None;
    let added = fs.add_tree(dir, prefix, options, hidden, &mut |added| {
        if (output.verbose || output.json)
            && let Err(err) = emit_added(output, added)
        {
            emit_error.get_or_insert(err);
        }
    })?;
    if let Some(err) = emit_error {
        return Err(err.into());
    }
    let count = |status: AddStatus| added.iter().filter(|a| a.status == status).count();
    let new_objects = added.iter().filter(|a| a.new_object).count();
    let bytes: u64 = added.iter().map(|a| a.entry.size).sum();
    output.emit(
        json!({"type": "add-summary", "files": added.len(), "added": count(AddStatus::Added), "replaced": count(AddStatus::Replaced),
               "unchanged": count(AddStatus::Unchanged), "new_objects": new_objects, "bytes": bytes, "prefix": prefix}),
        || format!(
            "{} files under {prefix}: {} added, {} replaced, {} unchanged; {} new objects ({})",
            added.len(), count(AddStatus::Added), count(AddStatus::Replaced), count(AddStatus::Unchanged), new_objects, human_bytes(bytes)
        ),
    )?;
    Ok(Outcome::Success)
}

fn emit_added(output: &Output, added: &Added) -> std::io::Result<()> {
    let status = match added.status {
        AddStatus::Added => "added",
        AddStatus::Replaced => "replaced",
        AddStatus::Unchanged => "unchanged",
    };
    let entry = &added.entry;
    output.emit(json!({"type": "added", "status": status, "new_object": added.new_object, "entry": entry_json(entry)}), || {
        format!(
            "{status} {} ({}, {}, file id {}{})",
            entry.path, entry.kind, human_bytes(entry.size), entry.file_id,
            if added.new_object { "" } else { ", deduplicated" }
        )
    })
}

fn entry_json(entry: &Entry) -> Value {
    serde_json::to_value(entry).unwrap_or(Value::Null)
}

fn normalize_dir(dir: &str) -> Result<String> {
    if dir == "/" {
        return Ok(String::new());
    }
    let trimmed = dir.trim_end_matches('/');
    pxos_fs::check_path(trimmed)?;
    Ok(trimmed.to_string())
}

fn ls(fs: &PixelFs, dir: &str, at: Option<u64>, output: &Output) -> Result<Outcome> {
    let base = normalize_dir(dir)?;
    if !base.is_empty()
        && let Ok(entry) = fs.get_at(&base, at)
    {
        output.emit(
            json!({"type": "entry", "entry": entry_json(&entry)}),
            || line(&entry, &entry.path),
        )?;
        return Ok(Outcome::Success);
    }
    let Some(children) = fs.list_dir(if base.is_empty() { "/" } else { &base }, at)? else {
        return Err(pxos_fs::Error::NotFound(format!("no such path in PixelFS: {dir}")).into());
    };
    for (name, node) in &children {
        if let pxos_fs::tree::Node::Dir { files, bytes, .. } = node {
            output.emit(
                json!({"type": "dir", "path": format!("{base}/{name}"), "files": files, "bytes": bytes}),
                || format!("{}/", escape(name)),
            )?;
        }
    }
    for (name, node) in &children {
        if let pxos_fs::tree::Node::File(meta) = node {
            let entry = meta.entry(&format!("{base}/{name}"));
            output.emit(
                json!({"type": "entry", "entry": entry_json(&entry)}),
                || line(&entry, name),
            )?;
        }
    }
    Ok(Outcome::Success)
}

fn line(entry: &Entry, name: &str) -> String {
    format!(
        "{name:<32} {:<8} {:>10}  {}  {}",
        entry.kind,
        human_bytes(entry.size),
        entry.file_id,
        entry.description
    )
}

fn tree(fs: &PixelFs, dir: &str, at: Option<u64>, output: &Output) -> Result<Outcome> {
    let base = normalize_dir(dir)?;
    let listed = fs.list_under(if base.is_empty() { "/" } else { &base }, at)?;
    let entries: Vec<Entry> = listed.clone().unwrap_or_default();
    if listed.is_none() {
        return Err(
            pxos_fs::Error::NotFound(format!("no such directory in PixelFS: {dir}")).into(),
        );
    }
    if output.json {
        for entry in &entries {
            output.emit(
                json!({"type": "entry", "entry": entry_json(entry)}),
                String::new,
            )?;
        }
        return Ok(Outcome::Success);
    }
    let mut text = format!("{}\n", if base.is_empty() { "/" } else { &base });
    let mut printed_dirs: Vec<String> = Vec::new();
    let total: u64 = entries.iter().map(|e| e.size).sum();
    for entry in &entries {
        let rest = &entry.path[base.len() + 1..];
        let parts: Vec<&str> = rest.split('/').collect();
        for depth in 0..parts.len() - 1 {
            let dir_path = parts[..=depth].join("/");
            if !printed_dirs.contains(&dir_path) {
                text.push_str(&format!("{}{}/\n", "  ".repeat(depth + 1), parts[depth]));
                printed_dirs.push(dir_path);
            }
        }
        let depth = parts.len();
        text.push_str(&format!(
            "{}{}  {}\n",
            "  ".repeat(depth),
            parts[depth - 1],
            output.dim(&format!(
                "{} {} {}",
                entry.kind,
                human_bytes(entry.size),
                entry.file_id
            ))
        ));
    }
    text.push_str(&format!("{} files, {}", entries.len(), human_bytes(total)));
    output.emit(Value::Null, || text)?;
    Ok(Outcome::Success)
}
