// A cache-line size that is not a power of two must be rejected with a clear message.
#ifdef RATEGOV_COMPILE_FAIL
#define RATEGOV_CACHE_LINE 48
#endif
#include <rategov/config.hpp>

int main() {
    return 0;
}
