// A drop policy without `static void on_drop(reservation&) noexcept` is named as such.
#include <rategov/governor/governor.hpp>

namespace m = rategov::metric;
using llm = rategov::metrics<m::generated>;

struct forgetful {
    template <class R>
    static void forget(R&) noexcept {}
};

int main() {
#ifdef RATEGOV_COMPILE_FAIL
    using policy = forgetful;
#else
    using policy = rategov::keep_on_drop;
#endif
    rategov::governor<llm, rategov::steady_clock, policy> gov(rategov::per_minute(36'000));
    return gov.available<m::generated>() > 0 ? 0 : 1;
}
