//@type f32
fn element(rb: u32, i: u32) -> f32 {
    return bitcast<f32>(w[(rb >> 2u) + i]);
}
fn row_partial(rb: u32, lid: u32) -> f32 {
    var s = 0.0;
    let base = rb >> 2u;
    for (var i = lid; i < p.cols; i = i + WG) {
        s = s + bitcast<f32>(w[base + i]) * x[p.x_off + i];
    }
    return s;
}
//@type f16
fn element(rb: u32, i: u32) -> f32 {
    return half_at(rb + 2u * i);
}
fn row_partial(rb: u32, lid: u32) -> f32 {
    var s = 0.0;
    for (var i = lid; i < p.cols; i = i + WG) {
        s = s + half_at(rb + 2u * i) * x[p.x_off + i];
    }
    return s;
}
//@type bf16
fn bf16_at(i: u32) -> f32 {
    let word = w[i >> 2u];
    let h = select(word & 0xffffu, word >> 16u, (i & 2u) != 0u);
    return bitcast<f32>(h << 16u);
}
fn element(rb: u32, i: u32) -> f32 {
    return bf16_at(rb + 2u * i);
}
fn row_partial(rb: u32, lid: u32) -> f32 {
    var s = 0.0;
    for (var i = lid; i < p.cols; i = i + WG) {
        s = s + bf16_at(rb + 2u * i) * x[p.x_off + i];
    }
    return s;
}
//@type q8_0
fn element(rb: u32, i: u32) -> f32 {
    let base = rb + (i / 32u) * 34u;
    return half_at(base) * f32(i8_at(base + 2u + i % 32u));
}
// Integer products against the activations quantized to q8_0 (as the CPU
// engine and llama.cpp do), scaled by both blocks' d.
fn row_partial(rb: u32, lid: u32) -> f32 {
    var s = 0.0;
    let blocks = p.cols / 32u;
    for (var b = lid; b < blocks; b = b + WG) {
        let base = rb + b * 34u;
        var acc = 0;
        for (var j = 0u; j < 32u; j = j + 1u) {
            acc = acc + i8_at(base + 2u + j) * xq[b * 32u + j];
        }
        s = s + half_at(base) * xd[b] * f32(acc);
    }
    return s;
}
//@type q4_0
fn element(rb: u32, i: u32) -> f32 {
    let base = rb + (i / 32u) * 18u;
    let j = i % 32u;
    let q = byte_at(base + 2u + j % 16u);
    let n = select(q & 15u, q >> 4u, j >= 16u);
    return half_at(base) * f32(i32(n) - 8);
}
// Integer products against the q8_0-quantized activations, as the CPU engine.
fn row_partial(rb: u32, lid: u32) -> f32 {
    var s = 0.0;
    let blocks = p.cols / 32u;
    for (var b = lid; b < blocks; b = b + WG) {
        let base = rb + b * 18u;
        var acc = 0;
        for (var j = 0u; j < 16u; j = j + 1u) {
            let q = byte_at(base + 2u + j);
            acc = acc + (i32(q & 15u) - 8) * xq[b * 32u + j] + (i32(q >> 4u) - 8) * xq[b * 32u + j + 16u];
        }
        s = s + half_at(base) * xd[b] * f32(acc);
    }
    return s;
}
//@type q4_1
fn element(rb: u32, i: u32) -> f32 {
    let base = rb + (i / 32u) * 20u;
    let j = i % 32u;
    let q = byte_at(base + 4u + j % 16u);
    let n = select(q & 15u, q >> 4u, j >= 16u);
    return half_at(base) * f32(n) + half_at(base + 2u);
}
fn row_partial(rb: u32, lid: u32) -> f32 {
    var s = 0.0;
    let blocks = p.cols / 32u;
    for (var b = lid; b < blocks; b = b + WG) {
        let base = rb + b * 20u;
        let xo = p.x_off + b * 32u;
        var acc = 0.0;
        var xs = 0.0;
        for (var j = 0u; j < 16u; j = j + 1u) {
            let q = byte_at(base + 4u + j);
            acc = acc + f32(q & 15u) * x[xo + j] + f32(q >> 4u) * x[xo + j + 16u];
            xs = xs + x[xo + j] + x[xo + j + 16u];
        }
        s = s + half_at(base) * acc + half_at(base + 2u) * xs;
    }
    return s;
}
//@type q4_k
// Scale and min of sub-block j (6 bits each, packed in 12 bytes at sb).
fn scale_min(j: u32, sb: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(byte_at(sb + j) & 63u), f32(byte_at(sb + j + 4u) & 63u));
    }
    let sc = (byte_at(sb + j + 4u) & 15u) | ((byte_at(sb + j - 4u) >> 6u) << 4u);
    let m = (byte_at(sb + j + 4u) >> 4u) | ((byte_at(sb + j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}
fn element(rb: u32, i: u32) -> f32 {
    let base = rb + (i / 256u) * 144u;
    let k = i % 256u;
    let c = k / 64u;
    let hi = (k % 64u) >= 32u;
    let l = k % 32u;
    let sm = scale_min(2u * c + select(0u, 1u, hi), base + 4u);
    let q = byte_at(base + 16u + c * 32u + l);
    let n = select(q & 15u, q >> 4u, hi);
    return half_at(base) * sm.x * f32(n) - half_at(base + 2u) * sm.y;
}
fn row_partial(rb: u32, lid: u32) -> f32 {
    var s = 0.0;
    // Work in sub-blocks of 32 so small rows still spread over the threads.
    let subs = p.cols / 32u;
    for (var sub = lid; sub < subs; sub = sub + WG) {
        let base = rb + (sub / 8u) * 144u;
        let j = sub % 8u;
        let c = j / 2u;
        let hi = (j % 2u) == 1u;
        let sm = scale_min(j, base + 4u);
        let d = half_at(base) * sm.x;
        let m = half_at(base + 2u) * sm.y;
        let xo = p.x_off + sub * 32u;
        var acc = 0.0;
        for (var l = 0u; l < 32u; l = l + 1u) {
            let q = byte_at(base + 16u + c * 32u + l);
            let n = select(q & 15u, q >> 4u, hi);
            acc = acc + (d * f32(n) - m) * x[xo + l];
        }
        s = s + acc;
    }
    return s;
}
//@type q6_k
fn q6_at(base: u32, k: u32) -> f32 {
    let n = k / 128u;
    let r = k % 128u;
    let g = r / 32u;
    let l = r % 32u;
    let ql = byte_at(base + n * 64u + l + select(0u, 32u, g == 1u || g == 3u));
    let low = select(ql & 15u, ql >> 4u, g >= 2u);
    let qh = (byte_at(base + 128u + n * 32u + l) >> (2u * g)) & 3u;
    let q = i32(low | (qh << 4u)) - 32;
    let sc = i8_at(base + 192u + n * 8u + l / 16u + 2u * g);
    return half_at(base + 208u) * f32(sc) * f32(q);
}
fn element(rb: u32, i: u32) -> f32 {
    return q6_at(rb + (i / 256u) * 210u, i % 256u);
}
fn row_partial(rb: u32, lid: u32) -> f32 {
    var s = 0.0;
    let subs = p.cols / 32u;
    for (var sub = lid; sub < subs; sub = sub + WG) {
        let base = rb + (sub / 8u) * 210u;
        let k0 = (sub % 8u) * 32u;
        let xo = p.x_off + sub * 32u;
        var acc = 0.0;
        for (var l = 0u; l < 32u; l = l + 1u) {
            acc = acc + q6_at(base, k0 + l) * x[xo + l];
        }
        s = s + acc;
    }
    return s;
}
