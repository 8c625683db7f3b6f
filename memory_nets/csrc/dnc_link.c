/* DNC temporal link update fused with the forward / backward read weightings, and its gradient.
 *
 * Graves et al. 2016, Methods: L_t[i,j] = (1 - w[i] - w[j]) L_{t-1}[i,j] + w[i] p_{t-1}[j] with a
 * zero diagonal; f_t = L_t r, b_t = L_t^T r for every read head (r = previous read weighting).
 *
 * One batch element's N x N link matrix is walked once, row-major, four rows at a time, with
 * every row reduction (f, gradients along rows) and column reduction (b, gradients along
 * columns) accumulated in the same sweep. torch would make four to ten passes over the matrix
 * per step; this is what makes the DNC's O(N^2) step memory-bound instead of pass-bound.
 *
 * Compiled once per dtype with -DREAL=float or -DREAL=double (see memory_nets/fused_link.py).
 * Shapes: S "slots" = batch x write heads, N memory slots, R read heads; all arrays contiguous.
 *   L, out, G, gL: [S, N, N]    p, w, gp, gw: [S, N]    r, f, b, gf, gb, gr: [S, R, N]
 */
#include <stdlib.h>
#include <string.h>

#ifndef REAL
#error "compile with -DREAL=float or -DREAL=double"
#endif
typedef REAL real;

#define ROWS 4 /* rows per block: the column accumulators are loaded and stored once per block */

/* out rows i0 .. i0+m-1 of the new link matrix (diagonal zeroed). */
static void new_rows(long n, long i0, long m, const real *restrict L, const real *restrict p,
                     const real *restrict w, real *restrict out) {
    for (long q = 0; q < m; q++) {
        const long i = i0 + q;
        const real wi = w[i], keep = 1 - wi;
        const real *restrict Li = L + i * n;
        real *restrict oi = out + i * n;
#pragma omp simd
        for (long j = 0; j < n; j++) oi[j] = (keep - w[j]) * Li[j] + wi * p[j];
        oi[i] = 0;
    }
}

static void forward_one(long n, long R, const real *restrict L, const real *restrict p,
                        const real *restrict w, const real *restrict r, real *restrict out,
                        real *restrict f, real *restrict b) {
    memset(b, 0, (size_t)(R * n) * sizeof(real));
    long i0 = 0;
    for (; i0 + ROWS <= n; i0 += ROWS) {
        new_rows(n, i0, ROWS, L, p, w, out);
        const real *restrict o0 = out + i0 * n, *restrict o1 = o0 + n, *restrict o2 = o1 + n,
                            *restrict o3 = o2 + n;
        for (long k = 0; k < R; k++) {
            const real *restrict rk = r + k * n;
            real *restrict bk = b + k * n;
            const real c0 = rk[i0], c1 = rk[i0 + 1], c2 = rk[i0 + 2], c3 = rk[i0 + 3];
            real a0 = 0, a1 = 0, a2 = 0, a3 = 0;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
            for (long j = 0; j < n; j++) {
                const real x = rk[j], v0 = o0[j], v1 = o1[j], v2 = o2[j], v3 = o3[j];
                a0 += v0 * x;
                a1 += v1 * x;
                a2 += v2 * x;
                a3 += v3 * x;
                bk[j] += c0 * v0 + c1 * v1 + c2 * v2 + c3 * v3;
            }
            real *restrict fk = f + k * n + i0;
            fk[0] = a0;
            fk[1] = a1;
            fk[2] = a2;
            fk[3] = a3;
        }
    }
    for (; i0 < n; i0++) { /* the last n % ROWS rows */
        new_rows(n, i0, 1, L, p, w, out);
        const real *restrict oi = out + i0 * n;
        for (long k = 0; k < R; k++) {
            const real *restrict rk = r + k * n;
            real *restrict bk = b + k * n;
            const real c = rk[i0];
            real a = 0;
#pragma omp simd reduction(+ : a)
            for (long j = 0; j < n; j++) {
                a += oi[j] * rk[j];
                bk[j] += c * oi[j];
            }
            f[k * n + i0] = a;
        }
    }
}

void dnc_link_forward(long slots, long n, long R, int threads, const real *L, const real *p,
                      const real *w, const real *r, real *out, real *f, real *b) {
    const long nn = n * n, rn = R * n;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (long s = 0; s < slots; s++)
        forward_one(n, R, L + s * nn, p + s * n, w + s * n, r + s * rn, out + s * nn, f + s * rn,
                    b + s * rn);
}

/* Gradient of one block of ROWS rows starting at i0 (rows past n are zero "dummy" rows, so one
 * code path serves the last, partial block). L_t's rows are recomputed from L_{t-1} into o
 * (cheaper than reading them back from memory); g accumulates the rows of dLoss/dL_t: the
 * incoming G plus the terms of f and b. */
static void backward_block(long n, long R, long i0, const real *restrict G, const real *restrict L,
                           const real *restrict p, const real *restrict w,
                           const real *restrict r, const real *restrict gf,
                           const real *restrict gb, real *restrict gL, real *restrict gp,
                           real *restrict gw, real *restrict gr, real *restrict scratch) {
    real *restrict g = scratch;               /* [ROWS, n] */
    real *restrict o = scratch + ROWS * n;    /* [ROWS, n] */
    real *restrict zero = o + ROWS * n;       /* [n], all zero */
    real *restrict junk = zero + n;           /* [n], written and never read */
    const real *Lq[ROWS];
    real *gLq[ROWS];
    long iq[ROWS];
    real wq[ROWS];
    for (long q = 0; q < ROWS; q++) {
        const long i = i0 + q;
        const int real_row = i < n;
        iq[q] = real_row ? i : -1;
        Lq[q] = real_row ? L + i * n : zero;
        gLq[q] = real_row ? gL + i * n : junk;
        wq[q] = real_row ? w[i] : 0;
        const real *Gi = (G && real_row) ? G + i * n : zero;
        memcpy(g + q * n, Gi, (size_t)n * sizeof(real));
    }
    memset(o, 0, (size_t)(ROWS * n) * sizeof(real)); /* dummy rows stay zero */
    for (long q = 0; q < ROWS; q++)
        if (iq[q] >= 0) {
            const real wi = wq[q], keep = 1 - wi;
            const real *restrict Li = Lq[q];
            real *restrict oq = o + q * n;
#pragma omp simd
            for (long j = 0; j < n; j++) oq[j] = (keep - w[j]) * Li[j] + wi * p[j];
            oq[iq[q]] = 0;
        }
    real *restrict g0 = g, *restrict g1 = g + n, *restrict g2 = g + 2 * n, *restrict g3 = g + 3 * n;
    const real *restrict o0 = o, *restrict o1 = o + n, *restrict o2 = o + 2 * n, *restrict o3 = o + 3 * n;
    for (long k = 0; k < R; k++) {
        /* f[k,i] = sum_j L_t[i,j] r[k,j]  and  b[k,j] = sum_i L_t[i,j] r[k,i], so
         * dL_t[i,j] += gf[k,i] r[k,j] + r[k,i] gb[k,j];  dr[k,j] += gf[k,i] L_t[i,j];
         * dr[k,i] += sum_j gb[k,j] L_t[i,j]. */
        const real *restrict rk = r + k * n, *restrict gbk = gb + k * n, *restrict gfk = gf + k * n;
        real *restrict grk = gr + k * n;
        real a[ROWS], c[ROWS];
        for (long q = 0; q < ROWS; q++) {
            a[q] = iq[q] >= 0 ? gfk[iq[q]] : 0;
            c[q] = iq[q] >= 0 ? rk[iq[q]] : 0;
        }
        const real a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
        const real c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
        real s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
        for (long j = 0; j < n; j++) {
            const real x = rk[j], y = gbk[j];
            const real v0 = o0[j], v1 = o1[j], v2 = o2[j], v3 = o3[j];
            g0[j] += a0 * x + c0 * y;
            g1[j] += a1 * x + c1 * y;
            g2[j] += a2 * x + c2 * y;
            g3[j] += a3 * x + c3 * y;
            grk[j] += a0 * v0 + a1 * v1 + a2 * v2 + a3 * v3;
            s0 += y * v0;
            s1 += y * v1;
            s2 += y * v2;
            s3 += y * v3;
        }
        const real sums[ROWS] = {s0, s1, s2, s3};
        for (long q = 0; q < ROWS; q++)
            if (iq[q] >= 0) grk[iq[q]] += sums[q];
    }
    /* L_t[i,j] = (1 - w[i] - w[j]) L_{t-1}[i,j] + w[i] p[j] off the diagonal, 0 on it. */
    for (long q = 0; q < ROWS; q++)
        if (iq[q] >= 0) g[q * n + iq[q]] = 0;
    const real *restrict L0 = Lq[0], *restrict L1 = Lq[1], *restrict L2 = Lq[2], *restrict L3 = Lq[3];
    real *restrict h0 = gLq[0], *restrict h1 = gLq[1], *restrict h2 = gLq[2], *restrict h3 = gLq[3];
    const real w0 = wq[0], w1 = wq[1], w2 = wq[2], w3 = wq[3];
    const real k0 = 1 - w0, k1 = 1 - w1, k2 = 1 - w2, k3 = 1 - w3;
    real s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (long j = 0; j < n; j++) {
        const real wj = w[j], pj = p[j];
        const real x0 = g0[j], x1 = g1[j], x2 = g2[j], x3 = g3[j];
        const real l0 = L0[j], l1 = L1[j], l2 = L2[j], l3 = L3[j];
        h0[j] = x0 * (k0 - wj);
        h1[j] = x1 * (k1 - wj);
        h2[j] = x2 * (k2 - wj);
        h3[j] = x3 * (k3 - wj);
        s0 += x0 * (pj - l0);
        s1 += x1 * (pj - l1);
        s2 += x2 * (pj - l2);
        s3 += x3 * (pj - l3);
        gw[j] -= x0 * l0 + x1 * l1 + x2 * l2 + x3 * l3;
        gp[j] += x0 * w0 + x1 * w1 + x2 * w2 + x3 * w3;
    }
    const real sums[ROWS] = {s0, s1, s2, s3};
    for (long q = 0; q < ROWS; q++)
        if (iq[q] >= 0) gw[iq[q]] += sums[q];
}

static void backward_one(long n, long R, const real *G, const real *L, const real *p,
                         const real *w, const real *r, const real *gf, const real *gb, real *gL,
                         real *gp, real *gw, real *gr, real *scratch) {
    memset(gp, 0, (size_t)n * sizeof(real));
    memset(gw, 0, (size_t)n * sizeof(real));
    memset(gr, 0, (size_t)(R * n) * sizeof(real));
    for (long i0 = 0; i0 < n; i0 += ROWS)
        backward_block(n, R, i0, G, L, p, w, r, gf, gb, gL, gp, gw, gr, scratch);
}

/* G may be NULL (no gradient reached L_t); gf and gb must be given (zeros if unused).
 * Returns 0, or -1 if the scratch rows could not be allocated. */
int dnc_link_backward(long slots, long n, long R, int threads, const real *G, const real *L,
                      const real *p, const real *w, const real *r, const real *gf,
                      const real *gb, real *gL, real *gp, real *gw, real *gr) {
    const long nn = n * n, rn = R * n;
    int failed = 0;
#pragma omp parallel num_threads(threads)
    {
        real *scratch = calloc((size_t)((2 * ROWS + 2) * n), sizeof(real));
        if (!scratch) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(static)
        for (long s = 0; s < slots; s++)
            if (scratch)
                backward_one(n, R, G ? G + s * nn : NULL, L + s * nn, p + s * n, w + s * n,
                             r + s * rn, gf + s * rn, gb + s * rn, gL + s * nn, gp + s * n,
                             gw + s * n, gr + s * rn, scratch);
        free(scratch);
    }
    return failed ? -1 : 0;
}
