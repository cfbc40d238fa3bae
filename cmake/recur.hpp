// <recur.hpp>: the C++ API (installed beside runtime/recur.hpp, which it forwards to).
#pragma once
#include "runtime/recur.hpp"
