// HiPPO and S4D in double precision: transition matrices, discretisation, the LegS
// scale-invariant memory, Legendre reconstruction, diagonal (S4D) initialisations and the
// convolution kernel. None of this is per-sample work: blocks call it once at load, tests call it
// as the independent side of every identity in ../shared/docs/MATH.md. The per-sample kernels are
// in ops/hippo_scan.h (memory update) and ops/s4d_scan.h (complex diagonal recurrence).
//
// Conventions. The HiPPO paper writes c'(t) = -A c + B u with A's diagonal positive
// (Convention::kPaper). Su Jianlin and the state-spaces code write x' = A x + B u with the sign
// folded into A (Convention::kStateSpaces: A_ss = -A_paper, B unchanged). Transition() returns
// either; Discretise() always takes the state-spaces form (the dynamics matrix itself).
#pragma once

#include <complex>
#include <cstddef>
#include <string>
#include <vector>

#include "formats/status.h"

namespace recur::ops::hippo {

enum class Measure { kLegT, kLegS, kLagT, kFouT };
enum class Convention { kPaper, kStateSpaces };
enum class Method { kEuler, kBackward, kBilinear, kZoh };

// "legt", "legs", "lagt", "fourier" (also "fout"); InvalidArgument names the bad value.
Result<Measure> ParseMeasure(const std::string& name);
// "euler", "backward", "bilinear", "zoh" ("exact" is an alias of "zoh").
Result<Method> ParseMethod(const std::string& name);
const char* MeasureName(Measure m);
const char* MethodName(Method m);

// A dense row-major n x n matrix.
struct Matrix {
  size_t n = 0;
  std::vector<double> a;  // [n, n]
  Matrix() = default;
  explicit Matrix(size_t n_) : n(n_), a(n_ * n_, 0.0) {}
  double& operator()(size_t r, size_t c) { return a[r * n + c]; }
  double operator()(size_t r, size_t c) const { return a[r * n + c]; }
  static Matrix Identity(size_t n);
};

// A continuous (or discretised) state-space pair: A: [n, n], B: [n].
struct StateSpace {
  Matrix A;
  std::vector<double> B;
};

// The HiPPO transition (A, B) of `measure` with n coefficients. theta is LegT's window (ignored
// elsewhere). FouT follows state-spaces' `transition('fourier')` (pairs of cos/sin modes with
// frequencies pi k, state 0 the mean), for any n >= 1.
StateSpace Transition(Measure measure, size_t n, double theta,
                      Convention convention = Convention::kPaper);

// Dense helpers (small n; double).
std::vector<double> MatVec(const Matrix& A, const std::vector<double>& x);
Matrix MatMul(const Matrix& A, const Matrix& B);
// Solves A X = B for each column of B (LU with partial pivoting); false when A is singular.
bool Solve(const Matrix& A, std::vector<double>* b);
bool Solve(const Matrix& A, Matrix* B);
// e^A by scaling and squaring with the [8/8] Pade approximant (error below 1e-15 relative for
// ||A / 2^s||_1 <= 1/2, the scaling chosen here).
Matrix Expm(const Matrix& A);

// (Abar, Bbar) for x' = A x + B u (state-spaces sign), step dt, input held over the step.
// ZOH is computed from the exponential of the augmented matrix [[A, B], [0, 0]] dt, so a singular
// A (FouT) needs no inverse. InvalidArgument when dt is not positive and finite, or a matrix to
// invert is singular.
Result<StateSpace> Discretise(const StateSpace& continuous, double dt, Method method);

// ---- LegS, the scale-invariant memory c' = -(1/t) A c + (1/t) B u (paper A).
// A_su v = -A v in O(n): (A_su v)_n = n v_n - sqrt(2n+1) sum_{k<=n} sqrt(2k+1) v_k.
void LegsMatVec(const double* v, double* out, size_t n);
// Solves (I - l A_su) z = v in O(n) (forward substitution on the rank-one-plus-diagonal rows).
void LegsSolve(double l, const double* v, double* z, size_t n);

// One sample u of the LegS memory, sample index k >= 0 (k = 0 seeds c = e_0 u; see MATH.md).
// c: [n] in place. Euler: c += (A_su c + B u) / k. Bilinear: (I - A_su/(2k)) c+ =
// (I + A_su/(2k)) c + B u / k. Both O(n).
void LegsStepEuler(double* c, double u, size_t k, size_t n);
void LegsStepBilinear(double* c, double u, size_t k, size_t n);
// The exact update for an input constant on [k, k+1): c+ = E c + A_su^-1 (E - I) B u with
// E = exp(ln((k+1)/k) A_su). Dense (an expm per call); for tests and offline use.
void LegsStepExact(double* c, double u, size_t k, size_t n);

// Legendre reconstruction: f(x_j) = sum_n c_n sqrt(2n+1) P_n(x_j), x_j in [-1, 1].
// For LegS at time t, u(r t) is f(2r - 1), r in [0, 1]; for LegT (window theta ending at t),
// u(t - theta s) is f(1 - 2s), s in [0, 1] (LegtReconstruct).
std::vector<double> LegendreReconstruct(const double* c, size_t n, const std::vector<double>& x);
// LegT: u(t - theta s) for s in [0, 1] (s = 0 is now).
std::vector<double> LegtReconstruct(const double* c, size_t n, const std::vector<double>& s);
// P_0..P_{n-1} at x (three-term recurrence).
void Legendre(double x, size_t n, double* p);

// ---- S4D: diagonal complex SSMs (N/2 modes, y = 2 Re(C x)) or real ones.
enum class S4dInit { kLin, kInv, kReal };
Result<S4dInit> ParseS4dInit(const std::string& name);
// The n_modes diagonal entries of A (n_modes = N/2 for lin/inv, N for real).
std::vector<std::complex<double>> S4dA(S4dInit init, size_t n_modes, size_t N);
// Diagonal discretisation: ZOH Abar = e^{dA}, Bbar = (e^{dA} - 1)/A B; bilinear Abar =
// (1 + dA/2)/(1 - dA/2), Bbar = d B/(1 - dA/2). method: kZoh or kBilinear.
void S4dDiscretise(const std::complex<double>* A, const std::complex<double>* B, size_t n_modes,
                   double dt, Method method, std::complex<double>* Abar,
                   std::complex<double>* Bbar);
// K_l = 2 Re(sum_m C_m Abar_m^l Bbar_m), l < L (the factor is 1 when `real` is true).
std::vector<double> S4dKernel(const std::complex<double>* C, const std::complex<double>* Abar,
                              const std::complex<double>* Bbar, size_t n_modes, size_t L,
                              bool real = false);

// y_k = sum_{l<=k} K_l u_{k-l}, k < u.size(), by FFT (radix 2, zero-padded to >= 2L so the
// circular convolution is the causal one). O(L log L) instead of the direct O(L^2).
std::vector<double> CausalConvolveFft(const std::vector<double>& u, const std::vector<double>& K);

}  // namespace recur::ops::hippo
