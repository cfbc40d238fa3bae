// Double-precision HiPPO / S4D construction (see ops/hippo.h). Plain C++: none of this runs per
// sample, and the tests use it as the independent side of the SIMD kernels' checks.
#include "ops/hippo.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace recur::ops::hippo {
namespace {

constexpr double kPi = std::numbers::pi;

double Norm1(const Matrix& A) {
  double best = 0.0;
  for (size_t c = 0; c < A.n; ++c) {
    double s = 0.0;
    for (size_t r = 0; r < A.n; ++r) s += std::abs(A(r, c));
    best = std::max(best, s);
  }
  return best;
}

// LU factorisation with partial pivoting in place; perm[i] = source row. False when singular.
bool Lu(Matrix* A, std::vector<size_t>* perm) {
  const size_t n = A->n;
  perm->resize(n);
  for (size_t i = 0; i < n; ++i) (*perm)[i] = i;
  // A pivot within rounding of zero means a singular matrix: elimination leaves a singular
  // matrix's last pivot at exactly 0 or at a few ulps of its entries, depending on rounding (and
  // on whether the compiler fuses the multiply-subtracts below, as GCC does on aarch64).
  double max_abs = 0.0;
  for (double v : A->a) max_abs = std::max(max_abs, std::abs(v));
  const double tiny = static_cast<double>(n) * std::numeric_limits<double>::epsilon() * max_abs;
  for (size_t k = 0; k < n; ++k) {
    size_t p = k;
    for (size_t r = k + 1; r < n; ++r) {
      if (std::abs((*A)(r, k)) > std::abs((*A)(p, k))) p = r;
    }
    if (!(std::abs((*A)(p, k)) > tiny) || !std::isfinite((*A)(p, k))) return false;
    if (p != k) {
      for (size_t c = 0; c < n; ++c) std::swap((*A)(p, c), (*A)(k, c));
      std::swap((*perm)[p], (*perm)[k]);
    }
    for (size_t r = k + 1; r < n; ++r) {
      const double f = (*A)(r, k) / (*A)(k, k);
      (*A)(r, k) = f;
      for (size_t c = k + 1; c < n; ++c) (*A)(r, c) -= f * (*A)(k, c);
    }
  }
  return true;
}

void LuSolve(const Matrix& lu, const std::vector<size_t>& perm, double* b, size_t stride) {
  const size_t n = lu.n;
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = b[perm[i] * stride];
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = 0; k < i; ++k) x[i] -= lu(i, k) * x[k];
  }
  for (size_t i = n; i-- > 0;) {
    for (size_t k = i + 1; k < n; ++k) x[i] -= lu(i, k) * x[k];
    x[i] /= lu(i, i);
  }
  for (size_t i = 0; i < n; ++i) b[i * stride] = x[i];
}

Matrix Scaled(const Matrix& A, double s) {
  Matrix r = A;
  for (double& v : r.a) v *= s;
  return r;
}

Matrix Add(const Matrix& A, const Matrix& B, double sb) {
  Matrix r = A;
  for (size_t i = 0; i < r.a.size(); ++i) r.a[i] += sb * B.a[i];
  return r;
}

// exp(s M) for M = [[A, B], [0, 0]]: returns e^{sA} and (int_0^s e^{tA} dt) B.
StateSpace AugmentedExp(const Matrix& A, const std::vector<double>& B, double s) {
  const size_t n = A.n;
  Matrix M(n + 1);
  for (size_t r = 0; r < n; ++r) {
    for (size_t c = 0; c < n; ++c) M(r, c) = s * A(r, c);
    M(r, n) = s * B[r];
  }
  const Matrix E = Expm(M);
  StateSpace out{Matrix(n), std::vector<double>(n)};
  for (size_t r = 0; r < n; ++r) {
    for (size_t c = 0; c < n; ++c) out.A(r, c) = E(r, c);
    out.B[r] = E(r, n);
  }
  return out;
}

}  // namespace

Result<Measure> ParseMeasure(const std::string& name) {
  if (name == "legt") return Measure::kLegT;
  if (name == "legs") return Measure::kLegS;
  if (name == "lagt") return Measure::kLagT;
  if (name == "fourier" || name == "fout") return Measure::kFouT;
  return InvalidArgument("unknown HiPPO measure '" + name + "' (legt, legs, lagt or fourier)");
}

Result<Method> ParseMethod(const std::string& name) {
  if (name == "euler") return Method::kEuler;
  if (name == "backward") return Method::kBackward;
  if (name == "bilinear") return Method::kBilinear;
  if (name == "zoh" || name == "exact") return Method::kZoh;
  return InvalidArgument("unknown discretisation '" + name +
                         "' (euler, backward, bilinear or zoh)");
}

const char* MeasureName(Measure m) {
  switch (m) {
    case Measure::kLegT:
      return "legt";
    case Measure::kLegS:
      return "legs";
    case Measure::kLagT:
      return "lagt";
    case Measure::kFouT:
      return "fourier";
  }
  return "?";
}

const char* MethodName(Method m) {
  switch (m) {
    case Method::kEuler:
      return "euler";
    case Method::kBackward:
      return "backward";
    case Method::kBilinear:
      return "bilinear";
    case Method::kZoh:
      return "zoh";
  }
  return "?";
}

Matrix Matrix::Identity(size_t n) {
  Matrix I(n);
  for (size_t i = 0; i < n; ++i) I(i, i) = 1.0;
  return I;
}

StateSpace Transition(Measure measure, size_t n, double theta, Convention convention) {
  StateSpace ss{Matrix(n), std::vector<double>(n)};
  Matrix& A = ss.A;
  std::vector<double>& B = ss.B;
  switch (measure) {
    case Measure::kLegS:
      for (size_t r = 0; r < n; ++r) {
        for (size_t c = 0; c < r; ++c) A(r, c) = std::sqrt((2.0 * r + 1) * (2.0 * c + 1));
        A(r, r) = static_cast<double>(r + 1);
        B[r] = std::sqrt(2.0 * r + 1);
      }
      break;
    case Measure::kLegT:
      for (size_t r = 0; r < n; ++r) {
        for (size_t c = 0; c < n; ++c) {
          const double sign = r >= c ? 1.0 : ((c - r) % 2 == 0 ? 1.0 : -1.0);
          A(r, c) = sign * std::sqrt((2.0 * r + 1) * (2.0 * c + 1)) / theta;
        }
        B[r] = std::sqrt(2.0 * r + 1) / theta;
      }
      break;
    case Measure::kLagT:
      for (size_t r = 0; r < n; ++r) {
        for (size_t c = 0; c <= r; ++c) A(r, c) = 1.0;
        B[r] = 1.0;
      }
      break;
    case Measure::kFouT: {
      // state-spaces: A_ss = pi (-diag(d, 1) + diag(d, -1)) - B B^T with d = [0, 0, 1, 0, 2, ...]
      // and B = [1, sqrt2, 0, sqrt2, 0, ...]; the paper's A is its negative.
      for (size_t r = 0; r < n; ++r) B[r] = r == 0 ? 1.0 : (r % 2 == 1 ? std::sqrt(2.0) : 0.0);
      for (size_t i = 0; i + 1 < n; ++i) {
        const double d = i % 2 == 0 ? static_cast<double>(i / 2) : 0.0;
        A(i, i + 1) = kPi * d;   // paper sign: -(-pi d)
        A(i + 1, i) = -kPi * d;  // paper sign: -(pi d)
      }
      for (size_t r = 0; r < n; ++r) {
        for (size_t c = 0; c < n; ++c) A(r, c) += B[r] * B[c];
      }
      break;
    }
  }
  if (convention == Convention::kStateSpaces) {
    for (double& v : A.a) v = -v;
  }
  return ss;
}

std::vector<double> MatVec(const Matrix& A, const std::vector<double>& x) {
  std::vector<double> y(A.n, 0.0);
  for (size_t r = 0; r < A.n; ++r) {
    double s = 0.0;
    for (size_t c = 0; c < A.n; ++c) s += A(r, c) * x[c];
    y[r] = s;
  }
  return y;
}

Matrix MatMul(const Matrix& A, const Matrix& B) {
  Matrix C(A.n);
  for (size_t r = 0; r < A.n; ++r) {
    for (size_t k = 0; k < A.n; ++k) {
      const double a = A(r, k);
      if (a == 0.0) continue;
      for (size_t c = 0; c < A.n; ++c) C(r, c) += a * B(k, c);
    }
  }
  return C;
}

bool Solve(const Matrix& A, std::vector<double>* b) {
  Matrix lu = A;
  std::vector<size_t> perm;
  if (!Lu(&lu, &perm)) return false;
  LuSolve(lu, perm, b->data(), 1);
  return true;
}

bool Solve(const Matrix& A, Matrix* B) {
  Matrix lu = A;
  std::vector<size_t> perm;
  if (!Lu(&lu, &perm)) return false;
  for (size_t c = 0; c < B->n; ++c) LuSolve(lu, perm, B->a.data() + c, B->n);
  return true;
}

Matrix Expm(const Matrix& A) {
  const size_t n = A.n;
  // Scale so that ||A / 2^s||_1 <= 1/2: the [8/8] Pade error there is ~1e-24, far below double
  // rounding, and squaring s times then loses only about s ulps.
  const double norm = Norm1(A);
  int s = 0;
  if (norm > 0.5) s = static_cast<int>(std::ceil(std::log2(norm / 0.5)));
  const Matrix X = Scaled(A, std::ldexp(1.0, -s));
  constexpr int q = 8;
  // c_k = (2q - k)! q! / ((2q)! k! (q - k)!), built by the ratio c_k / c_{k-1}.
  Matrix N = Matrix::Identity(n), D = Matrix::Identity(n), P = Matrix::Identity(n);
  double c = 1.0;
  for (int k = 1; k <= q; ++k) {
    c *= static_cast<double>(q - k + 1) / (static_cast<double>(k) * (2 * q - k + 1));
    P = MatMul(P, X);
    N = Add(N, P, c);
    D = Add(D, P, (k % 2 == 0) ? c : -c);
  }
  // e^X ~ D^-1 N.
  if (!Solve(D, &N)) return N;  // D is near I for ||X|| <= 1/2; cannot be singular.
  for (int i = 0; i < s; ++i) N = MatMul(N, N);
  return N;
}

Result<StateSpace> Discretise(const StateSpace& cont, double dt, Method method) {
  if (!(dt > 0.0) || !std::isfinite(dt)) {
    return InvalidArgument("discretisation step dt must be positive and finite, not " +
                           std::to_string(dt));
  }
  const size_t n = cont.A.n;
  const Matrix I = Matrix::Identity(n);
  StateSpace out;
  std::vector<double> dB(n);
  for (size_t i = 0; i < n; ++i) dB[i] = dt * cont.B[i];
  switch (method) {
    case Method::kEuler:
      out.A = Add(I, cont.A, dt);
      out.B = dB;
      return out;
    case Method::kBackward: {
      const Matrix M = Add(I, cont.A, -dt);
      out.A = I;
      out.B = dB;
      if (!Solve(M, &out.A) || !Solve(M, &out.B)) {
        return InvalidArgument("backward Euler: I - dt A is singular");
      }
      return out;
    }
    case Method::kBilinear: {
      const Matrix M = Add(I, cont.A, -dt / 2);
      out.A = Add(I, cont.A, dt / 2);
      out.B = dB;
      if (!Solve(M, &out.A) || !Solve(M, &out.B)) {
        return InvalidArgument("bilinear: I - dt A / 2 is singular");
      }
      return out;
    }
    case Method::kZoh:
      return AugmentedExp(cont.A, cont.B, dt);
  }
  return InvalidArgument("unknown discretisation method");
}

void LegsMatVec(const double* v, double* out, size_t n) {
  double S = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double s = std::sqrt(2.0 * i + 1);
    S += s * v[i];
    out[i] = static_cast<double>(i) * v[i] - s * S;
  }
}

void LegsSolve(double l, const double* v, double* z, size_t n) {
  // Row i: z_i (1 - l i) + l s_i (S_{i-1} + s_i z_i) = v_i, S the prefix sum of s_k z_k.
  double S = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double s = std::sqrt(2.0 * i + 1);
    const double zi = (v[i] - l * s * S) / (1.0 + l * static_cast<double>(i + 1));
    S += s * zi;
    z[i] = zi;
  }
}

void LegsStepEuler(double* c, double u, size_t k, size_t n) {
  if (k == 0) {
    for (size_t i = 0; i < n; ++i) c[i] = i == 0 ? u : 0.0;
    return;
  }
  std::vector<double> ac(n);
  LegsMatVec(c, ac.data(), n);
  const double inv_k = 1.0 / static_cast<double>(k);
  for (size_t i = 0; i < n; ++i) c[i] += inv_k * (ac[i] + std::sqrt(2.0 * i + 1) * u);
}

void LegsStepBilinear(double* c, double u, size_t k, size_t n) {
  if (k == 0) {
    LegsStepEuler(c, u, 0, n);
    return;
  }
  std::vector<double> v(n);
  LegsMatVec(c, v.data(), n);
  const double inv_k = 1.0 / static_cast<double>(k);
  for (size_t i = 0; i < n; ++i)
    v[i] = c[i] + 0.5 * inv_k * v[i] + inv_k * std::sqrt(2.0 * i + 1) * u;
  LegsSolve(0.5 * inv_k, v.data(), c, n);
}

void LegsStepExact(double* c, double u, size_t k, size_t n) {
  if (k == 0) {
    LegsStepEuler(c, u, 0, n);
    return;
  }
  const StateSpace su = Transition(Measure::kLegS, n, 1.0, Convention::kStateSpaces);
  const double s = std::log(static_cast<double>(k + 1) / static_cast<double>(k));
  const StateSpace e = AugmentedExp(su.A, su.B, s);
  std::vector<double> x(c, c + n);
  x = MatVec(e.A, x);
  for (size_t i = 0; i < n; ++i) c[i] = x[i] + e.B[i] * u;
}

void Legendre(double x, size_t n, double* p) {
  if (n == 0) return;
  p[0] = 1.0;
  if (n > 1) p[1] = x;
  for (size_t m = 1; m + 1 < n; ++m) {
    p[m + 1] =
        ((2.0 * m + 1) * x * p[m] - static_cast<double>(m) * p[m - 1]) / static_cast<double>(m + 1);
  }
}

std::vector<double> LegendreReconstruct(const double* c, size_t n, const std::vector<double>& x) {
  std::vector<double> out(x.size());
  std::vector<double> p(n);
  for (size_t j = 0; j < x.size(); ++j) {
    Legendre(x[j], n, p.data());
    double s = 0.0;
    for (size_t i = 0; i < n; ++i) s += c[i] * std::sqrt(2.0 * i + 1) * p[i];
    out[j] = s;
  }
  return out;
}

std::vector<double> LegtReconstruct(const double* c, size_t n, const std::vector<double>& s) {
  // This LegT (B_n > 0 for every n) puts "now" at P_n(1) and the window's far end at P_n(-1).
  std::vector<double> x(s.size());
  for (size_t j = 0; j < s.size(); ++j) x[j] = 1.0 - 2.0 * s[j];
  return LegendreReconstruct(c, n, x);
}

Result<S4dInit> ParseS4dInit(const std::string& name) {
  if (name == "lin") return S4dInit::kLin;
  if (name == "inv") return S4dInit::kInv;
  if (name == "real") return S4dInit::kReal;
  return InvalidArgument("unknown S4D init '" + name + "' (lin, inv or real)");
}

std::vector<std::complex<double>> S4dA(S4dInit init, size_t n_modes, size_t N) {
  std::vector<std::complex<double>> A(n_modes);
  for (size_t m = 0; m < n_modes; ++m) {
    const double md = static_cast<double>(m);
    switch (init) {
      case S4dInit::kLin:
        A[m] = {-0.5, kPi * md};
        break;
      case S4dInit::kInv: {
        const double Nd = static_cast<double>(N);
        A[m] = {-0.5, Nd / kPi * (Nd / (2.0 * md + 1.0) - 1.0)};
        break;
      }
      case S4dInit::kReal:
        A[m] = {-(md + 1.0), 0.0};
        break;
    }
  }
  return A;
}

void S4dDiscretise(const std::complex<double>* A, const std::complex<double>* B, size_t n_modes,
                   double dt, Method method, std::complex<double>* Abar,
                   std::complex<double>* Bbar) {
  for (size_t m = 0; m < n_modes; ++m) {
    const std::complex<double> dA = dt * A[m];
    if (method == Method::kBilinear) {
      Abar[m] = (1.0 + dA / 2.0) / (1.0 - dA / 2.0);
      Bbar[m] = dt * B[m] / (1.0 - dA / 2.0);
    } else {
      Abar[m] = std::exp(dA);
      // (e^{dA} - 1) / A, by expm1 on the real part to keep small dA accurate.
      const std::complex<double> em1 =
          std::abs(dA) < 1e-5 ? dA * (1.0 + dA / 2.0 + dA * dA / 6.0) : Abar[m] - 1.0;
      Bbar[m] = A[m] == 0.0 ? dt * B[m] : em1 / A[m] * B[m];
    }
  }
}

std::vector<double> S4dKernel(const std::complex<double>* C, const std::complex<double>* Abar,
                              const std::complex<double>* Bbar, size_t n_modes, size_t L,
                              bool real) {
  std::vector<double> K(L, 0.0);
  const double scale = real ? 1.0 : 2.0;
  for (size_t m = 0; m < n_modes; ++m) {
    std::complex<double> p = C[m] * Bbar[m];
    for (size_t l = 0; l < L; ++l) {
      K[l] += scale * p.real();
      p *= Abar[m];
    }
  }
  return K;
}

namespace {

// In-place iterative radix-2 FFT; inverse when `inverse` (unscaled).
void Fft(std::vector<std::complex<double>>* a, bool inverse) {
  const size_t n = a->size();
  for (size_t i = 1, j = 0; i < n; ++i) {
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap((*a)[i], (*a)[j]);
  }
  for (size_t len = 2; len <= n; len <<= 1) {
    const double ang = 2 * kPi / static_cast<double>(len) * (inverse ? 1 : -1);
    for (size_t i = 0; i < n; i += len) {
      for (size_t k = 0; k < len / 2; ++k) {
        // Twiddles from the angle directly (not by repeated multiplication) to keep double
        // accuracy at every length.
        const std::complex<double> w = std::polar(1.0, ang * static_cast<double>(k));
        const std::complex<double> x = (*a)[i + k], y = (*a)[i + k + len / 2] * w;
        (*a)[i + k] = x + y;
        (*a)[i + k + len / 2] = x - y;
      }
    }
  }
}

}  // namespace

std::vector<double> CausalConvolveFft(const std::vector<double>& u, const std::vector<double>& K) {
  const size_t L = u.size();
  if (L == 0) return {};
  size_t n = 1;
  while (n < 2 * L) n <<= 1;
  std::vector<std::complex<double>> a(n), b(n);
  for (size_t i = 0; i < L; ++i) a[i] = u[i];
  for (size_t i = 0; i < L && i < K.size(); ++i) b[i] = K[i];
  Fft(&a, false);
  Fft(&b, false);
  for (size_t i = 0; i < n; ++i) a[i] *= b[i];
  Fft(&a, true);
  std::vector<double> y(L);
  for (size_t i = 0; i < L; ++i) y[i] = a[i].real() / static_cast<double>(n);
  return y;
}

}  // namespace recur::ops::hippo
