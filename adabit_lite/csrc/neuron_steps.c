/* The refined neuron's T steps for one shared parameter slot, fused into one pass over memory.
 *
 * Used by adabit_lite/fused.py on CPU float32 tensors.  The arithmetic is that of the neuron's
 * definition (adabit_lite/neuron.py: neuron_step, run T times by squeeze), operation by operation
 * and in the same order, so both give the same bits (tests/test_fused.py); compiled with
 * -ffp-contract=off (no fused multiply-add) and without -ffast-math.  For t = 0 .. T-1 and every
 * element:
 *
 *   v_0 = x,   v_t = ((v_{t-1} / tau) - out_{t-1}) + x          (no division when tau = 1)
 *   u_t = v_t / Vth1,   a_t = R(u_t),   S_t = clip(a_t, qmin, qmax)
 *       R: floor(u + 0.5) (mode 0), sign(u) floor(|u| + 0.5) (mode 1), floor(u) (mode 2)
 *   m_t = [a_t == S_t],   c_t = sign(a_t - S_t),   out_t = S_t * Vth1
 *   r = (sum_t out_t) / T,   n_in = sum_t m_t,   d_vth = sum_t (S_t + (-u_t) m_t),   n_clip = sum_t c_t
 *
 * Each sum starts from its t = 0 term and adds the next ones in step order, as squeeze does.
 * Returns the number of non-zero S_t over all elements and steps.  The elements are processed in
 * blocks small enough for the first-level cache.
 */
#include <math.h>
#include <stdint.h>

#define BLOCK 512

typedef struct {
    const float *x;
    float *r, *n_in, *d_vth, *n_clip; /* the three sums may be NULL: not written */
    float vth, qmin, qmax, tau;
    int T, mode;
    int64_t numel;
} job_t;

#define FIRE(MODE, u)                                                                         \
    ((MODE) == 0   ? floorf((u) + 0.5f)                                                       \
     : (MODE) == 1 ? copysignf(floorf(fabsf(u) + 0.5f), (u))                                  \
                   : floorf(u))

/* one step over the n elements of a block; FIRST: t = 0; TAU_ONE: tau = 1 */
#define STEP(MODE, FIRST, TAU_ONE)                                                            \
    for (int64_t i = 0; i < n; i++) {                                                         \
        float vi = (FIRST) ? x[i] : (((TAU_ONE) ? v[i] : v[i] / tau) - out[i]) + x[i];        \
        float u = vi / vth;                                                                   \
        float a = FIRE(MODE, u);                                                              \
        float s = a < qmin ? qmin : a;                                                        \
        s = s > qmax ? qmax : s;                                                              \
        float m = (a == s) ? 1.0f : 0.0f;                                                     \
        float d = a - s;                                                                      \
        float c = (d > 0.0f ? 1.0f : 0.0f) - (d < 0.0f ? 1.0f : 0.0f);                        \
        float g = s + ((-1.0f * u) * m);                                                      \
        float o = s * vth;                                                                    \
        nz[i] = ((FIRST) ? 0.0f : nz[i]) + ((s != 0.0f) ? 1.0f : 0.0f);                       \
        if (FIRST) {                                                                          \
            tot[i] = o; nin[i] = m; dv[i] = g; nc[i] = c;                                     \
        } else {                                                                              \
            tot[i] = tot[i] + o; nin[i] = nin[i] + m; dv[i] = dv[i] + g; nc[i] = nc[i] + c;   \
        }                                                                                     \
        v[i] = vi;                                                                            \
        out[i] = o;                                                                           \
    }

#define STORE(DST, SRC)                                                                       \
    if (DST) {                                                                                \
        float *p = (DST) + b0;                                                                \
        for (int64_t i = 0; i < n; i++) p[i] = (SRC)[i];                                      \
    }

#define BLOCK_FN(NAME, MODE)                                                                  \
    static int64_t NAME(const job_t *j, int64_t b0) {                                         \
        float v[BLOCK], out[BLOCK], tot[BLOCK], nin[BLOCK], dv[BLOCK], nc[BLOCK], nz[BLOCK];  \
        const float vth = j->vth, qmin = j->qmin, qmax = j->qmax, tau = j->tau;               \
        const int64_t n = (j->numel - b0) < BLOCK ? (j->numel - b0) : BLOCK;                  \
        const float *x = j->x + b0;                                                           \
        STEP(MODE, 1, 1)                                                                      \
        for (int t = 1; t < j->T; t++) {                                                      \
            if (tau == 1.0f) { STEP(MODE, 0, 1) } else { STEP(MODE, 0, 0) }                   \
        }                                                                                     \
        const float Tf = (float)j->T;                                                         \
        float *r = j->r + b0;                                                                 \
        for (int64_t i = 0; i < n; i++) r[i] = tot[i] / Tf;                                   \
        STORE(j->n_in, nin)                                                                   \
        STORE(j->d_vth, dv)                                                                   \
        STORE(j->n_clip, nc)                                                                  \
        float count = 0.0f; /* at most BLOCK * T: exact in float for T < 32768 */             \
        for (int64_t i = 0; i < n; i++) count += nz[i];                                       \
        return (int64_t)count;                                                                \
    }

BLOCK_FN(block_round, 0)
BLOCK_FN(block_round_signed, 1)
BLOCK_FN(block_floor, 2)

/* Built with -fopenmp the blocks are shared out over the OpenMP threads, the same runtime and
 * thread pool as torch's own operations (libgomp is loaded once per process); without OpenMP the
 * pragma is ignored and one thread does all. */
int64_t neuron_steps(const float *x, float *r, float *n_in, float *d_vth, float *n_clip,
                     int64_t numel, float vth, float qmin, float qmax, float tau, int T, int mode,
                     int threads) {
    const job_t j = {x, r, n_in, d_vth, n_clip, vth, qmin, qmax, tau, T, mode, numel};
    const int64_t blocks = (numel + BLOCK - 1) / BLOCK;
    int64_t nonzero = 0;
#pragma omp parallel for schedule(static) num_threads(threads > 0 ? threads : 1) reduction(+ : nonzero)
    for (int64_t k = 0; k < blocks; k++) {
        const int64_t b0 = k * BLOCK;
        nonzero += mode == 0 ? block_round(&j, b0)
                 : mode == 1 ? block_round_signed(&j, b0)
                             : block_floor(&j, b0);
    }
    return nonzero;
}

int built_with_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
