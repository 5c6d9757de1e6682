// CMocka from C++: its header needs these C headers first and C linkage.
#pragma once
// C++ headers first: cmocka defines macros (fail, ...) that clash with <iostream>.
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
extern "C" {
#include <cmocka.h>
}
