// Rotary position embedding (RoFormer; MATH.md "RoPE"): pair i of each head is rotated by the
// angle position * theta_i, theta_i = base^(-2i/d). Two layouts: interleaved pairs (2i, 2i+1), and
// half-split pairs (i, i + d/2) as LLaMA / Hugging Face use (Highway-dispatched; scalar twin in
// ops/reference/rope.h).
#pragma once

#include <cstddef>

namespace recur::ops {

// cos and sin of position * theta_i for the head_dim / 2 pairs, computed in double and rounded
// once (so long contexts lose no precision in the angle).  cos, sin: [head_dim / 2]
void RopeAngles(double position, size_t head_dim, float base, float* cos, float* sin);

// Rotates every head of x in place: (x_a, x_b) <- (x_a c - x_b s, x_b c + x_a s) with
// (a, b) = (2i, 2i + 1) when interleaved, else (i, i + head_dim / 2). head_dim must be even.
// x: [n_heads, head_dim]; cos, sin: [head_dim / 2].
void ApplyRope(float* x, size_t n_heads, size_t head_dim, const float* cos, const float* sin,
               bool interleaved);

}  // namespace recur::ops
