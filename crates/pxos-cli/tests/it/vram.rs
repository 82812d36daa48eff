//! `pxos vram` through the binary.

use crate::support::{Home, json_lines};

#[test]
fn build_eval_who_loop_and_diff() {
    let home = Home::new("vram");
    let image = home.scratch("os.png");
    home.ok(&["vram", "build", "default", "-o", image.to_str().unwrap()]);
    let eval = json_lines(&home.ok(&["vram", "eval", image.to_str().unwrap(), "--json"]));
    let score = eval.iter().find(|l| l["type"] == "score").unwrap();
    assert_eq!(score["score"], score["max_score"]);
    assert!(
        eval.iter()
            .any(|l| l["type"] == "check" && l["check"]["kind"] == "execution")
    );

    let who = json_lines(&home.ok(&["vram", "who", image.to_str().unwrap(), "3", "224", "--json"]));
    assert_eq!(who[0]["region"], "program_area");
    assert_eq!(who[0]["write"]["step"], "assemble_hello");
    assert!(who[0]["write"]["seq"].as_u64().unwrap() > 1);

    // Breaking the program area makes the execution checks fail (exit 1).
    let broken = home.scratch("broken.png");
    let mut vram = pxos_vram::Vram::from_png(&std::fs::read(&image).unwrap()).unwrap();
    vram.write_pixel(0, 224, [0, 0, 0, 0]);
    std::fs::write(&broken, vram.to_png()).unwrap();
    let out = home.run(&["vram", "eval", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL hello_runs"));

    let out_dir = home.scratch("loop");
    let lines = json_lines(&home.ok(&[
        "vram",
        "loop",
        "deficient",
        "--generations",
        "10",
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]));
    let last = &lines.last().unwrap()["generation"];
    assert_eq!(last["score"], last["max_score"]);
    let generations = lines.len();
    assert!(generations >= 3);
    for n in 0..generations {
        for name in [
            format!("ROADMAP_VRAM_OS.gen{n:03}.yaml"),
            format!("vram_os_stage1.gen{n:03}.png"),
            format!("vram_os_stage1.gen{n:03}.json"),
        ] {
            assert!(out_dir.join(&name).is_file(), "{name}");
        }
    }
    // The diff between the first two generations shows exactly the regions that changed.
    let gen0 = out_dir.join("vram_os_stage1.gen000.png");
    let gen1 = out_dir.join("vram_os_stage1.gen001.png");
    let diff = json_lines(&home.ok(&[
        "vram",
        "diff",
        gen0.to_str().unwrap(),
        gen1.to_str().unwrap(),
        "-o",
        home.scratch("diff.png").to_str().unwrap(),
        "--json",
    ]));
    let changed: Vec<(String, u64)> = serde_json::from_value(diff[0]["changed"].clone()).unwrap();
    let changed_regions: Vec<&str> = changed
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, _)| r.as_str())
        .collect();
    let step_regions = ["metadata", "opcode_palette"];
    assert_eq!(
        changed_regions, step_regions,
        "generation 1 added the metadata and the palette"
    );
}

#[test]
fn hostile_roadmaps_are_exit_code_one() {
    let home = Home::new("vram-hostile");
    let roadmap = home.scratch("evil.yaml");
    std::fs::write(&roadmap, "metadata: {name: x, vram_width: 512, vram_height: 512}\nsteps:\n  - {name: a, kind: exec, params: {cmd: ls}}\n").unwrap();
    let stderr = home.fails(1, &["vram", "build", roadmap.to_str().unwrap()]);
    assert!(stderr.contains("unknown step kind 'exec'"), "{stderr}");
    std::fs::write(
        &roadmap,
        "metadata: {name: x, vram_width: 99999, vram_height: 512}\nsteps: []\n",
    )
    .unwrap();
    home.fails(1, &["vram", "build", roadmap.to_str().unwrap()]);
    let not_png = home.scratch("x.png");
    std::fs::write(&not_png, "nope").unwrap();
    home.fails(1, &["vram", "eval", not_png.to_str().unwrap()]);
}
