//! The viewport's frame latency: from a VRAM write published by a `--view`
//! command to a page holding the new frame (its event arrived on the event
//! stream and its PNG was fetched), for a 512x512 and a 2048x2048 VRAM. The
//! reference, measured in the same run, is encoding that VRAM as a PNG once
//! (a publisher's own cost for one frame).
//! `cargo bench -p pxos-view`; CI runs each once (`-- --test`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use pxos_view::publish::{Sink, request};
use pxos_vram::{Roadmap, Vram, build};

/// An event-stream reader: waits for the event of frame `seq`.
struct Events {
    stream: TcpStream,
    text: String,
}

impl Events {
    fn open(port: u16) -> Events {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
            .write_all(b"GET /api/events HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        Events {
            stream,
            text: String::new(),
        }
    }

    fn wait_for(&mut self, seq: u64) {
        let needle = format!("\"seq\":{seq},");
        let mut buffer = [0u8; 8192];
        while !self.text.contains(&needle) {
            let n = self.stream.read(&mut buffer).unwrap();
            assert!(n > 0, "the event stream ended");
            self.text.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
        self.text.clear();
    }
}

fn frame_of(vram: &Vram) -> pxos_view::Frame {
    pxos_view::Frame {
        source: "bench".into(),
        label: "write".into(),
        generation: None,
        png: vram.to_png(),
        provenance: vram.provenance_json(),
    }
}

fn latency(c: &mut Criterion) {
    let home = std::env::temp_dir().join(format!("pxos-view-bench-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let bound = pxos_view::bind(&home, 0, pxos_pixel::Limits::default()).unwrap();
    let port = bound.addr().unwrap().port();
    let shared = bound.shared();
    let token = shared.token().to_string();
    let server = bound.spawn();
    let mut events = Events::open(port);

    let (default, _) = build(&Roadmap::parse(pxos_vram::DEFAULT_ROADMAP).unwrap()).unwrap();
    let mut large = Vram::new(2048, 2048).unwrap();
    large.begin("bench", "fill");
    large.fill_rect(0, 0, 2048, 2048, [10, 10, 10, 255]);
    large.fill_rect(100, 300, 900, 700, [200, 40, 90, 255]);

    let mut group = c.benchmark_group("view/frame-latency");
    group.sample_size(10);
    for (name, vram) in [("512x512", &default), ("2048x2048", &large)] {
        let mut vram = vram.clone();
        let remote = Sink::Remote {
            port,
            token: token.clone(),
        };
        let local = Sink::Local(shared.clone());
        let mut x = 0u32;
        for (how, sink) in [("remote", &remote), ("in-process", &local)] {
            group.bench_function(format!("{how}/{name}"), |b| {
                b.iter(|| {
                    // One VRAM write, then the publisher's frame, until the page has it.
                    x = (x + 1) % vram.width();
                    vram.begin("bench", "write");
                    vram.write_pixel(x, 300, [255, 255, 0, 255]);
                    let seq = sink.send(frame_of(&vram)).unwrap();
                    events.wait_for(seq);
                    let (status, png) =
                        request(port, "GET", "/api/vram/frame.png", "", &[]).unwrap();
                    assert_eq!(status, 200);
                    png.len()
                })
            });
        }
        group.bench_function(format!("reference-png-encode/{name}"), |b| {
            b.iter(|| {
                let png = vram.to_png();
                assert_eq!(&png[1..4], b"PNG");
                png.len()
            })
        });
    }
    group.finish();
    shared.stop();
    let _ = server.join();
    let _ = std::fs::remove_dir_all(&home);
}

criterion_group!(benches, latency);
criterion_main!(benches);
