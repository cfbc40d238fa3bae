#include "runtime/threads.h"
