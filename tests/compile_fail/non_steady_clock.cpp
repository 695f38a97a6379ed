// A wall clock can jump back and hand out a burst: a bucket over it must not compile, and
// the error must say why and what to use instead.
#include <chrono>

#include <rategov/bucket/bucket.hpp>

#ifdef RATEGOV_COMPILE_FAIL
using clock_type = std::chrono::system_clock;
#else
using clock_type = rategov::steady_clock;
#endif

int main() {
    rategov::bucket<clock_type> b(rategov::per_second(10));
    return b.try_acquire(1) ? 0 : 1;
}
