// A cost that names a metric the governor does not limit must not compile, and the error
// must name the mistake.
#include <rategov/governor/governor.hpp>

namespace m = rategov::metric;
using llm = rategov::metrics<m::total_prompt, m::generated>;

int main() {
    rategov::governor<llm> gov(rategov::per_minute(3'600'000), rategov::per_minute(36'000));
#ifdef RATEGOV_COMPILE_FAIL
    rategov::cost<llm> c{rategov::amount<m::requests>{1}}; // requests is not in llm
#else
    rategov::cost<llm> c{rategov::amount<m::generated>{1}};
#endif
    return gov.try_acquire(c) ? 0 : 1;
}
