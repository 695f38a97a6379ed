// A transport that does not return a response (status, headers, usage) is named as such.
#include <rategov/client/call.hpp>

namespace m = rategov::metric;
using llm = rategov::metrics<m::generated>;
using gov_t = rategov::governor<llm>;

struct request {};

int main() {
    gov_t gov(rategov::per_minute(36'000));
#ifdef RATEGOV_COMPILE_FAIL
    auto transport = [](const request&) { return 200; }; // a bare status: no headers, no usage
#else
    auto transport = [](const request&) { return rategov::response<llm>{200}; };
#endif
    auto r = rategov::call(gov, request{}, {}, transport);
    return r ? 0 : 1;
}
