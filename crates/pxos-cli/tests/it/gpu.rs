//! The GPU engine against the CPU engine (the reference), through the binary,
//! on whatever adapter wgpu finds: in CI Mesa's software rasterisers, lavapipe
//! (Vulkan) and llvmpipe (GL), both installed by `cargo xtask setup`; on a
//! machine with a GPU, the GPU. Under CI=true a missing adapter fails.

use std::path::Path;

use serde_json::Value;

use crate::support::{Home, json_lines};

/// Logits agree within this fraction of their spread (f32 sums in another order).
const TOLERANCE: f64 = 1e-4;

/// The backends that have an adapter here, by `WGPU_BACKEND` name.
fn backends(home: &Home) -> Vec<&'static str> {
    let found: Vec<&str> = ["vulkan", "gl"]
        .into_iter()
        .filter(|b| {
            let out = home
                .pxos()
                .env("WGPU_BACKEND", b)
                .env("XDG_RUNTIME_DIR", std::env::temp_dir())
                .args(["--json", "inspect"])
                .output()
                .unwrap();
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            v["gpu"]["adapter"].is_string()
        })
        .collect();
    if found.is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "no GPU adapter under CI=true (cargo xtask setup installs Mesa's lavapipe)"
        );
        eprintln!(
            "skipping: no GPU adapter (install mesa-vulkan-drivers, or run cargo xtask setup)"
        );
    }
    found
}

fn logits(
    home: &Home,
    model: Option<&Path>,
    backend: &str,
    device: &str,
    tokens: &str,
) -> Vec<Vec<f64>> {
    let mut cmd = home.pxos();
    cmd.env("WGPU_BACKEND", backend)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .args(["--json", "llm", "logits"]);
    if let Some(m) = model {
        cmd.arg(m);
    }
    let out = cmd
        .args(["--tokens", tokens, "--all-positions", "--device", device])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&String::from_utf8(out.stdout).unwrap())
        .iter()
        .map(|l| {
            l["logits"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        })
        .collect()
}

fn compare(what: &str, gpu: &[Vec<f64>], cpu: &[Vec<f64>]) {
    assert_eq!(gpu.len(), cpu.len());
    let all: Vec<f64> = cpu.iter().flatten().copied().collect();
    let mean = all.iter().sum::<f64>() / all.len() as f64;
    let std = (all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / all.len() as f64).sqrt();
    let worst = gpu
        .iter()
        .flatten()
        .zip(cpu.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0f64, f64::max);
    eprintln!(
        "{what}: GPU logits differ by {:.2e} of their spread",
        worst / std
    );
    assert!(
        worst / std <= TOLERANCE,
        "{what}: GPU logits differ by {:.2e} of their spread",
        worst / std
    );
    let argmax = |r: &Vec<f64>| {
        r.iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0
    };
    for (g, c) in gpu.iter().zip(cpu) {
        assert_eq!(argmax(g), argmax(c), "{what}: greedy token differs");
    }
}

fn generate(home: &Home, model: Option<&Path>, backend: &str, device: &str) -> String {
    let mut cmd = home.pxos();
    cmd.env("WGPU_BACKEND", backend)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .args(["--json", "llm", "generate"]);
    if let Some(m) = model {
        cmd.arg(m);
    }
    let out = cmd
        .args([
            "--prompt",
            "fn main() {",
            "--max-tokens",
            "40",
            "--device",
            device,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&String::from_utf8(out.stdout).unwrap())[0]["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn gpu_matches_the_cpu_on_pixellm_every_weight_type_and_an_imported_model() {
    let home = Home::new("gpu-parity");
    let backends = backends(&home);
    // pixellm (f32), and pixellm converted to every other type.
    let mut models: Vec<(String, Option<std::path::PathBuf>)> = vec![("pixellm f32".into(), None)];
    let builtin = home.scratch("pixellm.png");
    std::fs::write(&builtin, pxos_llm::BUILTIN_PIXELLM).unwrap();
    for dtype in ["f16", "bf16", "q8_0", "q4_0", "q4_1"] {
        let path = home.scratch(&format!("pixellm-{dtype}.png"));
        home.ok(&[
            "llm",
            "quantize",
            &builtin.display().to_string(),
            "--dtype",
            dtype,
            "-o",
            &path.display().to_string(),
        ]);
        models.push((format!("pixellm {dtype}"), Some(path)));
    }
    // An imported GGUF (k-quants need rows of 256: pixellm's are 128 wide).
    if let Some(python) = crate::gguf::python() {
        for ty in ["q4_k", "q6_k", "q8_0"] {
            let gguf = home.scratch(&format!("{ty}.gguf"));
            let png = home.scratch(&format!("{ty}.png"));
            crate::gguf::reference(
                &python,
                &[
                    "make",
                    &gguf.display().to_string(),
                    "--type",
                    ty,
                    "--vocab",
                    "bpe",
                ],
            );
            home.ok(&[
                "llm",
                "import",
                &gguf.display().to_string(),
                "-o",
                &png.display().to_string(),
            ]);
            models.push((format!("imported {ty}"), Some(png)));
        }
    }
    for backend in &backends {
        for (what, model) in &models {
            let tokens = if what.starts_with("pixellm") {
                "256,102,110,32,109,97,105,110,40,41"
            } else {
                "1,40,300,5,77,2,260,9"
            };
            let cpu = logits(&home, model.as_deref(), backend, "cpu", tokens);
            let gpu = logits(&home, model.as_deref(), backend, "gpu", tokens);
            compare(&format!("{what} on {backend}"), &gpu, &cpu);
        }
        // Greedy generation: the same text, token for token.
        assert_eq!(
            generate(&home, None, backend, "gpu"),
            generate(&home, None, backend, "cpu"),
            "{backend}"
        );
        let imported = models.last().and_then(|m| m.1.clone());
        if let Some(m) = imported.filter(|_| models.len() > 6) {
            assert_eq!(
                generate(&home, Some(&m), backend, "gpu"),
                generate(&home, Some(&m), backend, "cpu"),
                "{backend}"
            );
        }
    }
}

#[test]
fn inspect_names_the_adapter_and_a_missing_backend_is_a_clear_error() {
    let home = Home::new("gpu-inspect");
    if backends(&home).is_empty() {
        return;
    }
    let v: Value = serde_json::from_str(&home.ok(&["--json", "inspect"])).unwrap();
    assert!(
        v["gpu"]["adapter"].as_str().is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    assert!(v["gpu"]["backend"].is_string());
    // No adapter for the asked backend: --device gpu fails clearly, auto falls back.
    let out = home
        .pxos()
        .env("WGPU_BACKEND", "dx12")
        .args(["llm", "logits", "--tokens", "1", "--device", "gpu"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no adapter") && stderr.contains("--device cpu"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
    let out = home
        .pxos()
        .env("WGPU_BACKEND", "dx12")
        .args([
            "llm",
            "generate",
            "--prompt",
            "a",
            "--max-tokens",
            "2",
            "--device",
            "auto",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("running on cpu"));
    // On a software adapter, auto stays on the CPU too.
    if v["gpu"]["device_type"] != "Cpu" {
        return;
    }
    let out = home
        .pxos()
        .args([
            "llm",
            "generate",
            "--prompt",
            "a",
            "--max-tokens",
            "2",
            "--device",
            "auto",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("running on cpu") && stderr.contains("software"),
        "{stderr}"
    );
}
