// Tests ops/hippo.h against the identities of ../shared/docs/MATH.md (HiPPO and S4/S4D), each
// with an independent computation, and the SIMD kernels of ops/hippo_scan.h and ops/s4d_scan.h
// against their scalar twins on every compiled target.
#include "ops/hippo.h"

#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <random>
#include <vector>

#include "ops/hippo_scan.h"
#include "ops/reference/hippo_scan.h"
#include "ops/reference/s4d_scan.h"
#include "ops/s4d_scan.h"
#include "tests/ops/elem_test_util.h"

namespace recur::ops::hippo {
namespace {

using cd = std::complex<double>;

double MaxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

double MaxAbsDiff(const Matrix& a, const Matrix& b) { return MaxAbsDiff(a.a, b.a); }

std::vector<double> Scale(std::vector<double> v, double s = -1.0) {
  for (double& x : v) x *= s;
  return v;
}

// An independent e^A: Taylor series in long double after scaling by 2^-s with ||A/2^s|| < 1/16,
// summed until the terms vanish, then squared back.
Matrix ExpmTaylorLongDouble(const Matrix& A) {
  const size_t n = A.n;
  long double norm = 0;
  for (double v : A.a) norm = std::max(norm, static_cast<long double>(std::abs(v)) * n);
  int s = 0;
  while (norm > 1.0L / 16) {
    norm /= 2;
    ++s;
  }
  std::vector<long double> X(n * n), term(n * n), sum(n * n), tmp(n * n);
  for (size_t i = 0; i < n * n; ++i) X[i] = std::ldexp(static_cast<long double>(A.a[i]), -s);
  for (size_t i = 0; i < n; ++i) term[i * n + i] = sum[i * n + i] = 1;
  auto mul = [&](const std::vector<long double>& P, const std::vector<long double>& Q) {
    std::fill(tmp.begin(), tmp.end(), 0.0L);
    for (size_t r = 0; r < n; ++r)
      for (size_t k = 0; k < n; ++k)
        for (size_t c = 0; c < n; ++c) tmp[r * n + c] += P[r * n + k] * Q[k * n + c];
    return tmp;
  };
  for (int k = 1; k < 30; ++k) {
    term = mul(term, X);
    for (long double& v : term) v /= k;
    for (size_t i = 0; i < n * n; ++i) sum[i] += term[i];
  }
  for (int i = 0; i < s; ++i) sum = mul(sum, sum);
  Matrix out(n);
  for (size_t i = 0; i < n * n; ++i) out.a[i] = static_cast<double>(sum[i]);
  return out;
}

double MaxAbs(const Matrix& A) {
  double m = 0;
  for (double v : A.a) m = std::max(m, std::abs(v));
  return m;
}

TEST_CASE("hippo: A e_0 = B for every measure and convention") {
  for (Measure m : {Measure::kLegT, Measure::kLegS, Measure::kLagT, Measure::kFouT}) {
    for (size_t n : {1, 2, 7, 16, 33}) {
      const StateSpace ss = Transition(m, n, 2.5);
      double err = 0;
      for (size_t r = 0; r < n; ++r) err = std::max(err, std::abs(ss.A(r, 0) - ss.B[r]));
      INFO("measure ", MeasureName(m), " n ", n);
      CHECK(err < 1e-14);
      const StateSpace su = Transition(m, n, 2.5, Convention::kStateSpaces);
      CHECK(MaxAbsDiff(su.A.a, Scale(ss.A.a)) == 0.0);
    }
  }
}

TEST_CASE("hippo: LegS eigenvalues are 1..N and the O(N) kernels equal the dense ones") {
  for (size_t n : {1, 5, 16, 64}) {
    const StateSpace ss = Transition(Measure::kLegS, n, 1.0);
    // Each j = 1..n: a null vector of A - jI by forward substitution (A is lower triangular with
    // diagonal 1..n), checked through the dense product.
    double worst = 0;
    for (size_t j = 1; j <= n; ++j) {
      std::vector<double> v(n, 0.0);
      v[j - 1] = 1.0;
      for (size_t r = j; r < n; ++r) {
        double s = 0;
        for (size_t c = 0; c < r; ++c) s += ss.A(r, c) * v[c];
        v[r] = s / (static_cast<double>(j) - ss.A(r, r));
      }
      const std::vector<double> Av = MatVec(ss.A, v);
      double vmax = 0;
      for (double x : v) vmax = std::max(vmax, std::abs(x));
      for (size_t r = 0; r < n; ++r) worst = std::max(worst, std::abs(Av[r] - j * v[r]) / vmax);
    }
    CHECK(worst < 1e-12);
    // trace(A^2) = sum j^2 (an eigenvalue invariant independent of the triangular structure).
    const Matrix A2 = MatMul(ss.A, ss.A);
    double tr = 0, want = 0;
    for (size_t i = 0; i < n; ++i) tr += A2(i, i), want += (i + 1.0) * (i + 1.0);
    CHECK(tr == doctest::Approx(want).epsilon(1e-13));

    const StateSpace su = Transition(Measure::kLegS, n, 1.0, Convention::kStateSpaces);
    std::mt19937 rng(7);
    std::normal_distribution<double> g;
    std::vector<double> v(n), fast(n);
    for (double& x : v) x = g(rng);
    LegsMatVec(v.data(), fast.data(), n);
    const std::vector<double> dense = MatVec(su.A, v);
    MESSAGE("LegS O(N) matvec vs dense, n=", n, ": ", MaxAbsDiff(fast, dense));
    CHECK(MaxAbsDiff(fast, dense) < 1e-12 * n);
    for (double l : {0.5, 0.01, 3.0}) {
      Matrix M = Matrix::Identity(n);
      for (size_t i = 0; i < n * n; ++i) M.a[i] -= l * su.A.a[i];
      std::vector<double> z = v;
      REQUIRE(Solve(M, &z));
      LegsSolve(l, v.data(), fast.data(), n);
      CHECK(MaxAbsDiff(fast, z) < 1e-12 * n);
    }
  }
}

TEST_CASE("hippo: LegS reconstructs polynomials of degree below N exactly, and not degree N") {
  const size_t N = 12;
  const StateSpace ss = Transition(Measure::kLegS, N, 1.0);
  for (size_t deg = 0; deg <= N; ++deg) {
    // For u = t^d the LegS state is t^d m with (A + d I) m = B (the ODE's exact solution).
    Matrix M = ss.A;
    for (size_t i = 0; i < N; ++i) M(i, i) += static_cast<double>(deg);
    std::vector<double> m = ss.B;
    REQUIRE(Solve(M, &m));
    // The closed form m_n = sqrt(2n+1) (d!)^2 / ((d-n)! (d+n+1)!) for n <= d.
    for (size_t i = 0; i < N; ++i) {
      double want = 0;
      if (i <= deg) {
        want = std::sqrt(2.0 * i + 1) *
               std::exp(2 * std::lgamma(deg + 1.0) - std::lgamma(deg - i + 1.0) -
                        std::lgamma(deg + i + 2.0));
      }
      CHECK(std::abs(m[i] - want) < 1e-12);
    }
    std::vector<double> x;
    for (int j = 0; j <= 50; ++j) x.push_back(-1.0 + j / 25.0);
    const std::vector<double> rec = LegendreReconstruct(m.data(), N, x);
    double err = 0;
    for (size_t j = 0; j < x.size(); ++j) {
      err = std::max(err, std::abs(rec[j] - std::pow((x[j] + 1) / 2, static_cast<double>(deg))));
    }
    INFO("degree ", deg, " error ", err);
    if (deg < N) {
      CHECK(err < 1e-11);
    } else {
      MESSAGE("LegS N=", N, " degree N reconstruction error: ", err);
      CHECK(err > 1e-8);
    }
  }
}

// The closed-form LegS projection of a piecewise-constant input (u_j on [j, j+1)) onto [0, t]:
// c_n = (sqrt(2n+1)/2) sum_j u_j [Q_n(x_{j+1}) - Q_n(x_j)], Q_n = (P_{n+1} - P_{n-1})/(2n+1).
std::vector<double> ClosedFormProjection(const std::vector<double>& u, size_t N) {
  const double t = static_cast<double>(u.size());
  std::vector<double> c(N, 0.0), p(N + 1);
  auto Q = [&](double x, std::vector<double>* q) {
    Legendre(x, N + 1, p.data());
    for (size_t n = 0; n < N; ++n) {
      (*q)[n] = n == 0 ? x : (p[n + 1] - p[n - 1]) / (2.0 * n + 1);
    }
  };
  std::vector<double> q0(N), q1(N);
  for (size_t j = 0; j < u.size(); ++j) {
    Q(2.0 * j / t - 1.0, &q0);
    Q(2.0 * (j + 1) / t - 1.0, &q1);
    for (size_t n = 0; n < N; ++n) c[n] += u[j] * (q1[n] - q0[n]);
  }
  for (size_t n = 0; n < N; ++n) c[n] *= std::sqrt(2.0 * n + 1) / 2.0;
  return c;
}

TEST_CASE("hippo: exact log-time LegS equals the closed-form projection") {
  const size_t N = 16;
  std::mt19937 rng(3);
  std::normal_distribution<double> g;
  std::vector<double> u(200);
  for (double& x : u) x = g(rng);
  std::vector<double> c(N, 0.0);
  double worst = 0;
  for (size_t k = 0; k < u.size(); ++k) {
    LegsStepExact(c.data(), u[k], k, N);
    if (k % 37 == 0 || k + 1 == u.size()) {
      const std::vector<double> want(ClosedFormProjection({u.begin(), u.begin() + k + 1}, N));
      worst = std::max(worst, MaxAbsDiff(c, want));
    }
  }
  MESSAGE("exact LegS vs closed-form projection, N=16, 200 samples: ", worst);
  CHECK(worst < 1e-11);
  // Euler and bilinear converge to it (the bilinear update is second order in 1/k).
  std::vector<double> ce(N, 0.0), cb(N, 0.0);
  for (size_t k = 0; k < u.size(); ++k) {
    LegsStepEuler(ce.data(), u[k], k, N);
    LegsStepBilinear(cb.data(), u[k], k, N);
  }
  CHECK(MaxAbsDiff(cb, c) < MaxAbsDiff(ce, c));
}

TEST_CASE("hippo: expm matches a long-double Taylor exponential") {
  std::mt19937 rng(11);
  std::normal_distribution<double> g;
  for (size_t n : {1, 3, 8, 20}) {
    for (double scale : {0.01, 1.0, 10.0}) {
      Matrix A(n);
      for (double& v : A.a) v = scale * g(rng) / std::sqrt(static_cast<double>(n));
      const Matrix E = Expm(A), R = ExpmTaylorLongDouble(A);
      INFO("n ", n, " scale ", scale);
      CHECK(MaxAbsDiff(E, R) <= 1e-12 * std::max(1.0, MaxAbs(R)));
    }
  }
  for (Measure m : {Measure::kLegT, Measure::kLegS, Measure::kLagT, Measure::kFouT}) {
    const StateSpace su = Transition(m, 16, 1.0, Convention::kStateSpaces);
    const Matrix A = [&] {
      Matrix r = su.A;
      for (double& v : r.a) v *= 0.05;
      return r;
    }();
    const Matrix E = Expm(A), R = ExpmTaylorLongDouble(A);
    CHECK(MaxAbsDiff(E, R) <= 1e-12 * std::max(1.0, MaxAbs(R)));
  }
}

TEST_CASE("hippo: each discretisation equals an independent construction") {
  const double dt = 0.01;
  for (Measure m : {Measure::kLegT, Measure::kLagT, Measure::kFouT, Measure::kLegS}) {
    INFO("measure ", MeasureName(m));
    const StateSpace su = Transition(m, 10, 1.0, Convention::kStateSpaces);
    const size_t n = su.A.n;
    // ZOH: e^{dt A} and A^-1 (e^{dt A} - I) B (A invertible for these measures) from the Taylor
    // exponential.
    Matrix dA = su.A;
    for (double& v : dA.a) v *= dt;
    const Matrix E = ExpmTaylorLongDouble(dA);
    auto zoh = Discretise(su, dt, Method::kZoh);
    REQUIRE(zoh.ok());
    CHECK(MaxAbsDiff(zoh->A, E) < 1e-13);
    Matrix EmI = E;
    for (size_t i = 0; i < n; ++i) EmI(i, i) -= 1.0;
    std::vector<double> bz = MatVec(EmI, su.B);
    if (Solve(su.A, &bz)) CHECK(MaxAbsDiff(zoh->B, bz) < 1e-11);
    // Forward, backward Euler and bilinear satisfy their defining equations.
    auto fe = Discretise(su, dt, Method::kEuler);
    auto be = Discretise(su, dt, Method::kBackward);
    auto bl = Discretise(su, dt, Method::kBilinear);
    REQUIRE(fe.ok());
    REQUIRE(be.ok());
    REQUIRE(bl.ok());
    std::vector<double> x(n), u_in(1, 0.7);
    std::mt19937 rng(5);
    std::normal_distribution<double> g;
    for (double& v : x) v = g(rng);
    const double u = 0.7;
    const std::vector<double> Ax = MatVec(su.A, x);
    // forward: x+ = x + dt (A x + B u)
    std::vector<double> xf = MatVec(fe->A, x);
    for (size_t i = 0; i < n; ++i) xf[i] += fe->B[i] * u;
    double ef = 0;
    for (size_t i = 0; i < n; ++i)
      ef = std::max(ef, std::abs(xf[i] - (x[i] + dt * (Ax[i] + su.B[i] * u))));
    CHECK(ef < 1e-14);
    // backward: x+ - dt A x+ = x + dt B u
    std::vector<double> xb = MatVec(be->A, x);
    for (size_t i = 0; i < n; ++i) xb[i] += be->B[i] * u;
    const std::vector<double> Axb = MatVec(su.A, xb);
    double eb = 0;
    for (size_t i = 0; i < n; ++i)
      eb = std::max(eb, std::abs(xb[i] - dt * Axb[i] - x[i] - dt * su.B[i] * u));
    CHECK(eb < 1e-13);
    // bilinear: x+ - dt/2 A x+ = x + dt/2 A x + dt B u
    std::vector<double> xl = MatVec(bl->A, x);
    for (size_t i = 0; i < n; ++i) xl[i] += bl->B[i] * u;
    const std::vector<double> Axl = MatVec(su.A, xl);
    double el = 0;
    for (size_t i = 0; i < n; ++i) {
      el = std::max(el,
                    std::abs(xl[i] - dt / 2 * Axl[i] - x[i] - dt / 2 * Ax[i] - dt * su.B[i] * u));
    }
    CHECK(el < 1e-13);
  }
  CHECK(!Discretise(Transition(Measure::kLegS, 4, 1.0), -1.0, Method::kZoh).ok());
}

TEST_CASE("hippo: ZOH step response is exact and bilinear-vs-ZOH shrinks 4x per halving") {
  const StateSpace su = Transition(Measure::kLegT, 8, 1.0, Convention::kStateSpaces);
  const size_t n = 8;
  const double dt = 0.05;
  auto zoh = Discretise(su, dt, Method::kZoh);
  REQUIRE(zoh.ok());
  // u == 1: x_k = A^-1 (e^{k dt A} - I) B.
  std::vector<double> x(n, 0.0);
  double worst = 0;
  for (int k = 1; k <= 60; ++k) {
    std::vector<double> nx = MatVec(zoh->A, x);
    for (size_t i = 0; i < n; ++i) nx[i] += zoh->B[i];
    x = nx;
    Matrix kA = su.A;
    for (double& v : kA.a) v *= k * dt;
    Matrix E = ExpmTaylorLongDouble(kA);
    for (size_t i = 0; i < n; ++i) E(i, i) -= 1.0;
    std::vector<double> want = MatVec(E, su.B);
    REQUIRE(Solve(su.A, &want));
    worst = std::max(worst, MaxAbsDiff(x, want));
  }
  MESSAGE("ZOH step response vs closed form (LegT N=8, 60 steps): ", worst);
  CHECK(worst < 1e-12);
  double prev = 0;
  // One step's gap is O(dt^3); over a fixed span of 1/dt steps it is O(dt^2).
  for (double h : {0.002, 0.001, 0.0005}) {
    auto a = Discretise(su, h, Method::kZoh);
    auto b = Discretise(su, h, Method::kBilinear);
    const double gap = MaxAbsDiff(a->A, b->A) / h;
    if (prev > 0) {
      MESSAGE("bilinear vs ZOH gap ratio at dt=", h, ": ", prev / gap);
      CHECK(prev / gap > 3.5);
      CHECK(prev / gap < 4.5);
    }
    prev = gap;
  }
}

TEST_CASE("hippo: LegT reconstructs a slow signal over its window") {
  const size_t N = 16;
  const double theta = 1.0, dt = 1e-3;
  const StateSpace su = Transition(Measure::kLegT, N, theta, Convention::kStateSpaces);
  auto zoh = Discretise(su, dt, Method::kZoh);
  REQUIRE(zoh.ok());
  std::vector<double> c(N, 0.0);
  auto f = [](double t) { return std::sin(3.0 * t) + 0.5 * t; };
  const int steps = 3000;
  for (int k = 0; k < steps; ++k) {
    std::vector<double> nc = MatVec(zoh->A, c);
    const double u = f((k + 0.5) * dt);
    for (size_t i = 0; i < N; ++i) nc[i] += zoh->B[i] * u;
    c = nc;
  }
  const double t = steps * dt;
  std::vector<double> s;
  for (int j = 1; j < 10; ++j) s.push_back(j / 10.0);
  const std::vector<double> rec = LegtReconstruct(c.data(), N, s);
  double err = 0;
  for (size_t j = 0; j < s.size(); ++j) err = std::max(err, std::abs(rec[j] - f(t - theta * s[j])));
  MESSAGE("LegT N=16 window reconstruction error: ", err);
  CHECK(err < 1e-2);
}

TEST_CASE("s4d: recurrence equals convolution, ZOH step response, bilinear gap, similarity") {
  for (S4dInit init : {S4dInit::kLin, S4dInit::kInv, S4dInit::kReal}) {
    const size_t N = 16;
    const bool real = init == S4dInit::kReal;
    const size_t M = real ? N : N / 2;
    const std::vector<cd> A = S4dA(init, M, N);
    std::vector<cd> B(M, 1.0), C(M), Ab(M), Bb(M);
    std::mt19937 rng(9);
    std::normal_distribution<double> g;
    for (cd& c : C) c = {g(rng), real ? 0.0 : g(rng)};
    const double dt = 0.03;
    S4dDiscretise(A.data(), B.data(), M, dt, Method::kZoh, Ab.data(), Bb.data());
    const size_t L = 100;
    std::vector<double> u(L);
    for (double& v : u) v = g(rng);
    const std::vector<double> K = S4dKernel(C.data(), Ab.data(), Bb.data(), M, L, real);
    std::vector<cd> x(M, 0.0);
    double worst = 0;
    for (size_t k = 0; k < L; ++k) {
      cd y = 0;
      for (size_t m = 0; m < M; ++m) {
        x[m] = Ab[m] * x[m] + Bb[m] * u[k];
        y += C[m] * x[m];
      }
      const double yr = (real ? 1.0 : 2.0) * y.real();
      double conv = 0;
      for (size_t l = 0; l <= k; ++l) conv += K[l] * u[k - l];
      worst = std::max(worst, std::abs(yr - conv));
    }
    CHECK(worst < 1e-11);
    // The same outputs by FFT convolution.
    {
      const std::vector<double> yf = CausalConvolveFft(u, K);
      std::vector<cd> xr(M, 0.0);
      double fft_err = 0;
      for (size_t k = 0; k < L; ++k) {
        cd y = 0;
        for (size_t m = 0; m < M; ++m) {
          xr[m] = Ab[m] * xr[m] + Bb[m] * u[k];
          y += C[m] * xr[m];
        }
        fft_err = std::max(fft_err, std::abs((real ? 1.0 : 2.0) * y.real() - yf[k]));
      }
      CHECK(fft_err < 1e-11);
    }
    // ZOH step response: x_k = A^-1 (e^{k dt A} - 1) B.
    std::vector<cd> xs(M, 0.0);
    double step_err = 0;
    for (int k = 1; k <= 50; ++k) {
      for (size_t m = 0; m < M; ++m) {
        xs[m] = Ab[m] * xs[m] + Bb[m];
        step_err =
            std::max(step_err, std::abs(xs[m] - (std::exp(k * dt * A[m]) - 1.0) / A[m] * B[m]));
      }
    }
    CHECK(step_err < 1e-11);
    // Bilinear vs ZOH kernels differ O(dt^2): halving dt roughly quarters the gap.
    double prev = 0;
    for (double h : {0.004, 0.002, 0.001}) {
      std::vector<cd> za(M), zb(M), ba(M), bb(M);
      S4dDiscretise(A.data(), B.data(), M, h, Method::kZoh, za.data(), zb.data());
      S4dDiscretise(A.data(), B.data(), M, h, Method::kBilinear, ba.data(), bb.data());
      // Compare kernels over a fixed time span (per unit of time).
      const size_t Lh = static_cast<size_t>(0.2 / h);
      const std::vector<double> K1 = S4dKernel(C.data(), za.data(), zb.data(), M, Lh, real);
      const std::vector<double> K2 = S4dKernel(C.data(), ba.data(), bb.data(), M, Lh, real);
      const double gap = MaxAbsDiff(K1, K2) / h;
      if (prev > 0) {
        CHECK(prev / gap > 3.0);
        CHECK(prev / gap < 5.0);
      }
      prev = gap;
    }
  }
  // A similarity transform (P A P^-1, P B, C P^-1) of a dense LTI system leaves y unchanged.
  const StateSpace su = Transition(Measure::kLegT, 6, 1.0, Convention::kStateSpaces);
  auto d = Discretise(su, 0.1, Method::kZoh);
  REQUIRE(d.ok());
  Matrix P(6);
  std::mt19937 rng(2);
  std::normal_distribution<double> g;
  for (double& v : P.a) v = g(rng);
  for (size_t i = 0; i < 6; ++i) P(i, i) += 4.0;
  Matrix Pinv = Matrix::Identity(6);
  REQUIRE(Solve(P, &Pinv));
  const Matrix A2 = MatMul(MatMul(P, d->A), Pinv);
  const std::vector<double> B2 = MatVec(P, d->B);
  std::vector<double> Cv(6);
  for (double& v : Cv) v = g(rng);
  // C2 = C P^-1 (row vector).
  std::vector<double> C2(6, 0.0);
  for (size_t c = 0; c < 6; ++c)
    for (size_t k = 0; k < 6; ++k) C2[c] += Cv[k] * Pinv(k, c);
  std::vector<double> x1(6, 0.0), x2(6, 0.0);
  double worst = 0;
  for (int k = 0; k < 50; ++k) {
    const double u = std::sin(0.3 * k);
    x1 = MatVec(d->A, x1);
    x2 = MatVec(A2, x2);
    double y1 = 0, y2 = 0;
    for (size_t i = 0; i < 6; ++i) {
      x1[i] += d->B[i] * u;
      x2[i] += B2[i] * u;
    }
    for (size_t i = 0; i < 6; ++i) y1 += Cv[i] * x1[i], y2 += C2[i] * x2[i];
    worst = std::max(worst, std::abs(y1 - y2));
  }
  CHECK(worst < 1e-10);
}

// ---- SIMD kernels vs scalar twins, every target.

TEST_CASE("hippo_scan: LegS and dense kernels match the scalar twins on every target") {
  using testing::ForEachTarget;
  for (size_t n : {1, 3, 16, 33}) {
    for (size_t d : {1, 3, 4, 7, 8, 9, 16, 17, 64}) {
      const size_t T = 9;
      std::vector<float> u = testing::RandomVector(T * (d + 2), -1.0f, 1.0f, 17);
      const StateSpace su = Transition(Measure::kLegT, n, 4.0, Convention::kStateSpaces);
      auto dd = Discretise(su, 0.1, Method::kBilinear);
      REQUIRE(dd.ok());
      std::vector<float> Ad(dd->A.a.begin(), dd->A.a.end()), Bd(dd->B.begin(), dd->B.end());
      std::vector<float> scratch(HippoScanScratchFloats(n, d) + 16);
      ForEachTarget([&](const std::string&) {
        for (LegsMethod m : {LegsMethod::kEuler, LegsMethod::kBackward, LegsMethod::kBilinear}) {
          for (uint64_t k0 : {uint64_t{0}, uint64_t{5}}) {
            std::vector<float> s1(n * d + 16, -7.0f), s2(n * d + 16, -7.0f);
            std::vector<float> init = testing::RandomVector(n * d, -1.0f, 1.0f, 3);
            std::copy(init.begin(), init.end(), s1.begin());
            std::copy(init.begin(), init.end(), s2.begin());
            HippoLegsChunk(s1.data(), n, d, u.data(), d + 2, T, k0, m, scratch.data());
            ref::HippoLegsChunk(s2.data(), n, d, u.data(), d + 2, T, k0, m);
            // Relative to the state's size: forward Euler grows like k! for the first samples
            // (I + A_su has eigenvalues down to 1 - n at k = 1), the other methods stay O(1).
            double err = 0, scale = 1.0;
            for (size_t i = 0; i < n * d; ++i) {
              err = std::max(err, std::abs(double(s1[i]) - s2[i]));
              scale = std::max(scale, std::abs(double(s2[i])));
            }
            INFO("legs n ", n, " d ", d, " method ", static_cast<int>(m), " k0 ", k0);
            CHECK(err / scale < 2e-6 * n);
            for (size_t i = n * d; i < s1.size(); ++i) CHECK(s1[i] == -7.0f);
          }
        }
        std::vector<float> s1(n * d + 16, -7.0f), s2(n * d + 16, -7.0f);
        HippoDenseChunk(s1.data(), n, d, Ad.data(), Bd.data(), u.data(), d + 2, T, scratch.data());
        std::fill(s2.begin(), s2.begin() + n * d, 0.0f);
        std::fill(s1.begin(), s1.begin() + n * d, 0.0f);
        HippoDenseChunk(s1.data(), n, d, Ad.data(), Bd.data(), u.data(), d + 2, T, scratch.data());
        ref::HippoDenseChunk(s2.data(), n, d, Ad.data(), Bd.data(), u.data(), d + 2, T);
        double err = 0;
        for (size_t i = 0; i < n * d; ++i) err = std::max(err, std::abs(double(s1[i]) - s2[i]));
        CHECK(err < 1e-5 * n);
        for (size_t i = n * d; i < s1.size(); ++i) CHECK(s1[i] == -7.0f);
      });
    }
  }
}

TEST_CASE("hippo_scan: empty calls touch nothing; unaligned state and inputs work") {
  using testing::ForEachTarget;
  std::vector<float> state(64, 3.0f), u(64, 1.0f), scratch(HippoScanScratchFloats(8, 8));
  HippoLegsChunk(state.data(), 8, 0, u.data(), 8, 4, 0, LegsMethod::kBilinear, scratch.data());
  HippoLegsChunk(state.data(), 8, 8, u.data(), 8, 0, 0, LegsMethod::kBilinear, scratch.data());
  HippoDenseChunk(state.data(), 0, 8, nullptr, nullptr, u.data(), 8, 4, scratch.data());
  for (float v : state) CHECK(v == 3.0f);
  // Offsets of 1..3 floats from any vector alignment, for state and inputs.
  const size_t n = 5, d = 11, T = 6;
  ForEachTarget([&](const std::string&) {
    for (size_t off = 1; off < 4; ++off) {
      std::vector<float> s1(n * d + off, 0.0f), s2(n * d, 0.0f), in(T * d + off);
      const std::vector<float> r = testing::RandomVector(T * d, -1.0f, 1.0f, 21);
      std::copy(r.begin(), r.end(), in.begin() + off);
      std::vector<float> sc(HippoScanScratchFloats(n, d) + off);
      HippoLegsChunk(s1.data() + off, n, d, in.data() + off, d, T, 0, LegsMethod::kBilinear,
                     sc.data() + off);
      ref::HippoLegsChunk(s2.data(), n, d, r.data(), d, T, 0, LegsMethod::kBilinear);
      for (size_t i = 0; i < n * d; ++i) CHECK(s1[off + i] == doctest::Approx(s2[i]).epsilon(1e-5));
    }
  });
}

TEST_CASE("hippo_scan: the f32 LegS kernel tracks the double LegS updates") {
  const size_t n = 32, d = 5, T = 500;
  std::vector<float> u(T * d);
  for (size_t t = 0; t < T; ++t)
    for (size_t c = 0; c < d; ++c) u[t * d + c] = std::sin(0.01 * t * (c + 1)) + 0.1f * c;
  std::vector<float> state(n * d), scratch(HippoScanScratchFloats(n, d));
  HippoLegsChunk(state.data(), n, d, u.data(), d, T, 0, LegsMethod::kBilinear, scratch.data());
  double err = 0;
  for (size_t c = 0; c < d; ++c) {
    std::vector<double> cd_(n, 0.0);
    for (size_t t = 0; t < T; ++t) LegsStepBilinear(cd_.data(), u[t * d + c], t, n);
    for (size_t i = 0; i < n; ++i) err = std::max(err, std::abs(cd_[i] - state[i * d + c]));
  }
  MESSAGE("f32 LegS bilinear kernel vs double, N=32, 500 samples: ", err);
  CHECK(err < 1e-4);
}

TEST_CASE("s4d_scan: kernel matches the scalar twin on every target") {
  using testing::ForEachTarget;
  for (size_t modes : {1, 4, 32}) {
    for (size_t h : {1, 3, 8, 9, 17, 64}) {
      const size_t T = 7;
      std::vector<float> ar(modes * h), ai(modes * h), br(modes * h), bi(modes * h), cr(modes * h),
          ci(modes * h);
      const std::vector<cd> A = S4dA(S4dInit::kLin, modes, 2 * modes);
      std::mt19937 rng(1);
      std::normal_distribution<float> g;
      for (size_t m = 0; m < modes; ++m) {
        for (size_t c = 0; c < h; ++c) {
          const double dt = 0.01 * (c + 1);
          cd Ab, Bb, one = 1.0;
          S4dDiscretise(&A[m], &one, 1, dt, Method::kZoh, &Ab, &Bb);
          const size_t i = m * h + c;
          ar[i] = Ab.real(), ai[i] = Ab.imag(), br[i] = Bb.real(), bi[i] = Bb.imag();
          cr[i] = g(rng), ci[i] = g(rng);
        }
      }
      ops::S4dParams p{modes, h, ar.data(), ai.data(), br.data(), bi.data(), cr.data(), ci.data()};
      std::vector<float> u = testing::RandomVector(T * h, -1.0f, 1.0f, 4);
      ForEachTarget([&](const std::string&) {
        std::vector<float> x1(modes * h + 16, 0.0f), y1(T * h + 16, -7.0f);
        std::vector<float> x1i(modes * h + 16, 0.0f);
        std::vector<float> x2(modes * h, 0.0f), x2i(modes * h, 0.0f), y2(T * h);
        ops::S4dScanChunk(p, x1.data(), x1i.data(), u.data(), h, T, y1.data(), h);
        ref::S4dScanChunk(p, x2.data(), x2i.data(), u.data(), h, T, y2.data(), h);
        double err = 0;
        for (size_t i = 0; i < T * h; ++i) err = std::max(err, std::abs(double(y1[i]) - y2[i]));
        for (size_t i = 0; i < modes * h; ++i) {
          err = std::max(err, std::abs(double(x1[i]) - x2[i]));
          err = std::max(err, std::abs(double(x1i[i]) - x2i[i]));
        }
        CHECK(err < 1e-5 * modes);
        for (size_t i = T * h; i < y1.size(); ++i) CHECK(y1[i] == -7.0f);
        for (size_t i = modes * h; i < x1.size(); ++i) CHECK(x1[i] == 0.0f);
      });
    }
  }
}

}  // namespace
}  // namespace recur::ops::hippo
