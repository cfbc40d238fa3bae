/* <recur.h>: the C API (installed beside runtime/recur.h, which it forwards to). */
#include "runtime/recur.h"
