// A feedback profile without `read(status, headers, now, error_code)` is named as such.
#include <rategov/client/call.hpp>

namespace m = rategov::metric;
using llm = rategov::metrics<m::generated>;
using gov_t = rategov::governor<llm>;

struct headerless_profile {
    int parse(int status) const { return status; }
};

int main() {
    gov_t gov(rategov::per_minute(36'000));
#ifdef RATEGOV_COMPILE_FAIL
    using options = rategov::call_options<gov_t, headerless_profile>;
#else
    using options = rategov::call_options<gov_t, rategov::feedback::retry_after_profile<llm>>;
#endif
    rategov::call_machine<gov_t, options> machine(gov, {}, options{});
    return machine.done() ? 1 : 0;
}
