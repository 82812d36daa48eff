// The element-wise and per-head kernels of a token step. Each entry point is
// compiled as its own pipeline; `step` holds [pos, token].

struct Params {
    n: u32,
    a_off: u32,
    b_off: u32,
    // Per-head sizes for rope and attention.
    head: u32,
    kv_dim: u32,
    kv_mul: u32,
    ctx: u32,
    // Added to a_off times pos (rope on the KV cache row).
    a_pos_stride: u32,
    eps: f32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

//@kernel rmsnorm
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
var<workgroup> sums: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    for (var i = lid; i < p.n; i = i + 256u) {
        let v = x[i];
        s = s + v * v;
    }
    sums[lid] = s;
    workgroupBarrier();
    var stride = 128u;
    loop {
        if (stride == 0u) { break; }
        if (lid < stride) {
            sums[lid] = sums[lid] + sums[lid + stride];
        }
        workgroupBarrier();
        stride = stride / 2u;
    }
    let scale = 1.0 / sqrt(sums[0] / f32(p.n) + p.eps);
    for (var i = lid; i < p.n; i = i + 256u) {
        out[i] = weight[i] * (x[i] * scale);
    }
}

//@kernel quantize_q8
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> xq: array<i32>;
@group(0) @binding(2) var<storage, read_write> xd: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let b = gid.x;
    if (b >= p.n / 32u) {
        return;
    }
    var amax = 0.0;
    for (var j = 0u; j < 32u; j = j + 1u) {
        amax = max(amax, abs(x[b * 32u + j]));
    }
    let d = amax / 127.0;
    let id = select(0.0, 1.0 / d, d != 0.0);
    for (var j = 0u; j < 32u; j = j + 1u) {
        let t = x[b * 32u + j] * id;
        // Rust's round: halves away from zero.
        xq[b * 32u + j] = i32(sign(t) * floor(abs(t) + 0.5));
    }
    xd[b] = unpack2x16float(pack2x16float(vec2<f32>(d, 0.0))).x;
}

//@kernel rope
@group(0) @binding(0) var<storage, read_write> v: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read> step: array<u32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = gid.x;
    if (k >= p.n / 2u) {
        return;
    }
    let at = p.a_off + step[0] * p.a_pos_stride + 2u * k;
    let t = k % (p.head / 2u);
    let sin_a = table[2u * t];
    let cos_a = table[2u * t + 1u];
    let a = v[at];
    let b = v[at + 1u];
    v[at] = a * cos_a - b * sin_a;
    v[at + 1u] = a * sin_a + b * cos_a;
}

//@kernel attention
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kc: array<f32>;
@group(0) @binding(2) var<storage, read> vc: array<f32>;
@group(0) @binding(3) var<storage, read_write> att: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;
@group(0) @binding(6) var<storage, read> step: array<u32>;
var<workgroup> red: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let h = wid.x;
    let pos = step[0];
    let kvh = h / p.kv_mul;
    let qo = h * p.head;
    let ao = h * p.ctx;
    var m = -3.4e38;
    for (var t = lid; t <= pos; t = t + 64u) {
        let ko = p.a_off + t * p.kv_dim + kvh * p.head;
        var s = 0.0;
        for (var d = 0u; d < p.head; d = d + 1u) {
            s = s + q[qo + d] * kc[ko + d];
        }
        s = s * p.scale;
        att[ao + t] = s;
        m = max(m, s);
    }
    red[lid] = m;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            red[lid] = max(red[lid], red[lid + stride]);
        }
        workgroupBarrier();
    }
    let top = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var t = lid; t <= pos; t = t + 64u) {
        let e = exp(att[ao + t] - top);
        att[ao + t] = e;
        sum = sum + e;
    }
    red[lid] = sum;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride = stride / 2u) {
        if (lid < stride) {
            red[lid] = red[lid] + red[lid + stride];
        }
        workgroupBarrier();
    }
    let total = red[0];
    for (var t = lid; t <= pos; t = t + 64u) {
        att[ao + t] = att[ao + t] / total;
    }
    storageBarrier();
    workgroupBarrier();
    for (var d = lid; d < p.head; d = d + 64u) {
        var acc = 0.0;
        for (var t = 0u; t <= pos; t = t + 1u) {
            acc = acc + att[ao + t] * vc[p.a_off + t * p.kv_dim + kvh * p.head + d];
        }
        out[qo + d] = acc;
    }
}

//@kernel swiglu
@group(0) @binding(0) var<storage, read_write> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= p.n) {
        return;
    }
    let g = a[i];
    a[i] = g / (1.0 + exp(-g)) * b[i];
}
