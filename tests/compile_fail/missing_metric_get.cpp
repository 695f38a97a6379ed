// Reading or setting a metric the cost does not have is rejected the same way.
#include <rategov/governor/metrics.hpp>

namespace m = rategov::metric;
using llm = rategov::metrics<m::total_prompt, m::generated>;

int main() {
    rategov::cost<llm> c;
#ifdef RATEGOV_COMPILE_FAIL
    c.set<m::uncached_prompt>(5);
#else
    c.set<m::total_prompt>(5);
#endif
    return c.get<m::total_prompt>() == 5 ? 0 : 1;
}
