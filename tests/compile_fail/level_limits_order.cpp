// A level's limits come in its metrics' order: a quota for each rate metric, at_most(n) for
// metric::in_flight. Swapped, the error says so.
#include <rategov/nested/nested.hpp>

namespace m = rategov::metric;

int main() {
    using model = rategov::level<rategov::metrics<m::generated, m::in_flight>>;
#ifdef RATEGOV_COMPILE_FAIL
    model mdl(rategov::at_most(64), rategov::per_minute(36'000));
#else
    model mdl(rategov::per_minute(36'000), rategov::at_most(64));
#endif
    return mdl.slots.limit() == 64 ? 0 : 1;
}
