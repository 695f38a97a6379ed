// A metric listed twice is a mistake in the metrics list, named as such.
#include <rategov/governor/metrics.hpp>

namespace m = rategov::metric;
#ifdef RATEGOV_COMPILE_FAIL
using llm = rategov::metrics<m::generated, m::total_prompt, m::generated>;
#else
using llm = rategov::metrics<m::generated, m::total_prompt>;
#endif

int main() {
    return llm::size == 2 ? 0 : 1;
}
