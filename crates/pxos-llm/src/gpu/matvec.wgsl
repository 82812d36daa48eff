// y[row] (+)= dot(W[row], x) for one weight type; the type's functions are
// appended below this common part (see gpu.rs). Weights are the tensor's
// exact bytes from the pixel payload, read as u32 words.

struct Params {
    rows: u32,
    cols: u32,
    row_bytes: u32,
    x_off: u32,
    y_off: u32,
    // y_off += pos * y_pos_stride (the KV cache rows).
    y_pos_stride: u32,
    accumulate: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<storage, read> xq: array<i32>;
@group(0) @binding(5) var<storage, read> xd: array<f32>;
@group(0) @binding(6) var<storage, read> step: array<u32>;

const WG: u32 = 64u;
var<workgroup> partial_sums: array<f32, 64>;

fn byte_at(i: u32) -> u32 {
    return (w[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
}

fn i8_at(i: u32) -> i32 {
    return (i32(byte_at(i)) << 24u) >> 24u;
}

// The f16 at an even byte offset.
fn half_at(i: u32) -> f32 {
    let word = w[i >> 2u];
    let h = select(word & 0xffffu, word >> 16u, (i & 2u) != 0u);
    return unpack2x16float(h).x;
}

@compute @workgroup_size(64)
fn matvec(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wid.x + wid.y * 65535u;
    if (row >= p.rows) {
        return;
    }
    let rb = row * p.row_bytes;
    partial_sums[lid] = row_partial(rb, lid);
    workgroupBarrier();
    var stride = WG / 2u;
    loop {
        if (stride == 0u) { break; }
        if (lid < stride) {
            partial_sums[lid] = partial_sums[lid] + partial_sums[lid + stride];
        }
        workgroupBarrier();
        stride = stride / 2u;
    }
    if (lid == 0u) {
        let at = p.y_off + step[0] * p.y_pos_stride + row;
        if (p.accumulate != 0u) {
            y[at] = y[at] + partial_sums[0];
        } else {
            y[at] = partial_sums[0];
        }
    }
}

// y[i] = W[token][i]: the token embedding's row.
@compute @workgroup_size(64)
fn embed(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= p.cols) {
        return;
    }
    y[p.y_off + i] = element(step[1] * p.row_bytes, i);
}
