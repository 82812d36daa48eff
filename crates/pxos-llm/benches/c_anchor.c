/* The same-run anchor for the decode benchmark: the llama forward pass in
 * plain C, as llama2.c's `run` computes it (f32, OpenMP over matrix rows,
 * KV cache), written for pxOS (no llama2.c code). Random weights, the stories
 * shapes, 256 greedy steps from position 0.
 *
 *   gcc -Ofast -fopenmp -march=native -o /tmp/c_anchor crates/pxos-llm/benches/c_anchor.c -lm
 *   OMP_NUM_THREADS=2 /tmp/c_anchor
 *
 * With the argument `q8`, every matrix is int8 in groups of 32 with one f32
 * scale per group, and each product quantizes its input the same way and
 * sums int8 x int8 in integers (as llama2.c's `runq` and pxOS's q8_0 do).
 *
 * Prints one JSON line per shape: {"shape", "dtype", "tokens_per_second"}. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long rng = 0x2545F4914F6CDD1DULL;
static float rnd(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return ((float)(rng >> 40) / (float)(1ULL << 24) - 0.5f) * 0.1f;
}
static float *alloc_rand(size_t n) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = rnd();
    return p;
}
static int Q8 = 0;
typedef struct { signed char *q; float *d; } qmat;
static qmat quantize(const float *w, size_t n) {
    qmat m = {malloc(n), malloc(n / 32 * sizeof(float))};
    for (size_t g = 0; g < n / 32; g++) {
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) { float a = fabsf(w[g * 32 + i]); if (a > amax) amax = a; }
        float d = amax / 127.0f, id = d ? 1.0f / d : 0.0f;
        m.d[g] = d;
        for (int i = 0; i < 32; i++) m.q[g * 32 + i] = (signed char)roundf(w[g * 32 + i] * id);
    }
    return m;
}
static void matvec_q8(float *out, const qmat *w, const float *x, int rows, int cols) {
    qmat xq = quantize(x, cols);
    int r;
#pragma omp parallel for private(r)
    for (r = 0; r < rows; r++) {
        float s = 0.0f;
        const signed char *row = w->q + (size_t)r * cols;
        const float *rd = w->d + (size_t)r * cols / 32;
        for (int g = 0; g < cols / 32; g++) {
            int acc = 0;
            for (int i = 0; i < 32; i++) acc += (int)row[g * 32 + i] * (int)xq.q[g * 32 + i];
            s += (float)acc * rd[g] * xq.d[g];
        }
        out[r] = s;
    }
    free(xq.q); free(xq.d);
}
/* The quantized twin of each f32 matrix, found by its address. */
static const float *qkeys[128]; static qmat qvals[128]; static int nq = 0;
static void add_q(const float *w, size_t n) { qkeys[nq] = w; qvals[nq] = quantize(w, n); nq++; }
static void matvec(float *out, const float *w, const float *x, int rows, int cols) {
    if (Q8) {
        for (int i = 0; i < nq; i++) if (qkeys[i] == w) { matvec_q8(out, &qvals[i], x, rows, cols); return; }
    }
    int r;
#pragma omp parallel for private(r)
    for (r = 0; r < rows; r++) {
        float s = 0.0f;
        const float *row = w + (size_t)r * cols;
        for (int c = 0; c < cols; c++) s += row[c] * x[c];
        out[r] = s;
    }
}
static void rmsnorm(float *out, const float *x, int n) {
    float ss = 0.0f;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    ss = 1.0f / sqrtf(ss / n + 1e-5f);
    for (int i = 0; i < n; i++) out[i] = x[i] * ss; /* norm weights are 1 */
}
static void softmax(float *x, int n) {
    float m = x[0], s = 0.0f;
    for (int i = 1; i < n; i++) if (x[i] > m) m = x[i];
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - m); s += x[i]; }
    for (int i = 0; i < n; i++) x[i] /= s;
}
static double run(int dim, int hidden, int layers, int ctx) {
    const int vocab = 32000, heads = layers, hs = dim / heads;
    float *embed = alloc_rand((size_t)vocab * dim);
    float **wq = malloc(layers * sizeof(float *)), **wk = malloc(layers * sizeof(float *)),
          **wv = malloc(layers * sizeof(float *)), **wo = malloc(layers * sizeof(float *)),
          **w1 = malloc(layers * sizeof(float *)), **w2 = malloc(layers * sizeof(float *)),
          **w3 = malloc(layers * sizeof(float *));
    for (int l = 0; l < layers; l++) {
        wq[l] = alloc_rand((size_t)dim * dim); wk[l] = alloc_rand((size_t)dim * dim);
        wv[l] = alloc_rand((size_t)dim * dim); wo[l] = alloc_rand((size_t)dim * dim);
        w1[l] = alloc_rand((size_t)hidden * dim); w2[l] = alloc_rand((size_t)dim * hidden);
        w3[l] = alloc_rand((size_t)hidden * dim);
    }
    nq = 0;
    if (Q8) {
        add_q(embed, (size_t)vocab * dim);
        for (int l = 0; l < layers; l++) {
            add_q(wq[l], (size_t)dim * dim); add_q(wk[l], (size_t)dim * dim); add_q(wv[l], (size_t)dim * dim);
            add_q(wo[l], (size_t)dim * dim); add_q(w1[l], (size_t)hidden * dim); add_q(w2[l], (size_t)dim * hidden);
            add_q(w3[l], (size_t)hidden * dim);
        }
    }
    float *kc = calloc((size_t)layers * ctx * dim, sizeof(float)), *vc = calloc((size_t)layers * ctx * dim, sizeof(float));
    float *x = malloc(dim * 4), *xb = malloc(dim * 4), *xb2 = malloc(dim * 4), *q = malloc(dim * 4);
    float *hb = malloc(hidden * 4), *hb2 = malloc(hidden * 4), *att = malloc(ctx * 4), *logits = malloc(vocab * 4);
    int token = 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int pos = 0; pos < 256; pos++) {
        memcpy(x, embed + (size_t)token * dim, dim * 4);
        for (int l = 0; l < layers; l++) {
            float *k = kc + ((size_t)l * ctx + pos) * dim, *v = vc + ((size_t)l * ctx + pos) * dim;
            rmsnorm(xb, x, dim);
            matvec(q, wq[l], xb, dim, dim); matvec(k, wk[l], xb, dim, dim); matvec(v, wv[l], xb, dim, dim);
            for (int i = 0; i < dim; i += 2) {
                float f = 1.0f / powf(10000.0f, (float)(i % hs) / hs), a = pos * f, c = cosf(a), s = sinf(a);
                float q0 = q[i], q1 = q[i + 1], k0 = k[i], k1 = k[i + 1];
                q[i] = q0 * c - q1 * s; q[i + 1] = q0 * s + q1 * c;
                k[i] = k0 * c - k1 * s; k[i + 1] = k0 * s + k1 * c;
            }
            for (int h = 0; h < heads; h++) {
                for (int t = 0; t <= pos; t++) {
                    float s = 0.0f, *kt = kc + ((size_t)l * ctx + t) * dim + h * hs;
                    for (int i = 0; i < hs; i++) s += q[h * hs + i] * kt[i];
                    att[t] = s / sqrtf((float)hs);
                }
                softmax(att, pos + 1);
                float *o = xb + h * hs;
                memset(o, 0, hs * 4);
                for (int t = 0; t <= pos; t++) {
                    float *vt = vc + ((size_t)l * ctx + t) * dim + h * hs;
                    for (int i = 0; i < hs; i++) o[i] += att[t] * vt[i];
                }
            }
            matvec(xb2, wo[l], xb, dim, dim);
            for (int i = 0; i < dim; i++) x[i] += xb2[i];
            rmsnorm(xb, x, dim);
            matvec(hb, w1[l], xb, hidden, dim); matvec(hb2, w3[l], xb, hidden, dim);
            for (int i = 0; i < hidden; i++) { float g = hb[i]; hb[i] = g / (1.0f + expf(-g)) * hb2[i]; }
            matvec(xb, w2[l], hb, dim, hidden);
            for (int i = 0; i < dim; i++) x[i] += xb[i];
        }
        rmsnorm(xb, x, dim);
        matvec(logits, embed, xb, vocab, dim);
        int best = 0;
        for (int i = 1; i < vocab; i++) if (logits[i] > logits[best]) best = i;
        token = best;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return 256.0 / ((t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9);
}
int main(int argc, char **argv) {
    Q8 = argc > 1 && strcmp(argv[1], "q8") == 0;
    const char *names[3] = {"15M", "42M", "110M"};
    int shapes[3][4] = {{288, 768, 6, 256}, {512, 1376, 8, 1024}, {768, 2048, 12, 1024}};
    for (int s = 0; s < 3; s++)
        printf("{\"shape\": \"%s\", \"dtype\": \"%s\", \"tokens_per_second\": %.1f}\n", names[s], Q8 ? "q8" : "f32",
               run(shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3]));
    return 0;
}
