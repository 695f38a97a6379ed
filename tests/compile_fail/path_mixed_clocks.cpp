// The levels of a path share one clock type: the error names it.
#include <rategov/nested/nested.hpp>
#include <rategov/testing/manual_clock.hpp>

namespace m = rategov::metric;

int main() {
    using account = rategov::level<rategov::metrics<m::requests>>;
#ifdef RATEGOV_COMPILE_FAIL
    using model = rategov::level<rategov::metrics<m::generated>, rategov::testing::manual_clock>;
#else
    using model = rategov::level<rategov::metrics<m::generated>>;
#endif
    account acct(rategov::per_minute(6'000));
    model mdl(rategov::per_minute(36'000));
    rategov::path route(acct, mdl);
    return route.try_acquire({rategov::amount<m::requests>{1}}) ? 0 : 1;
}
