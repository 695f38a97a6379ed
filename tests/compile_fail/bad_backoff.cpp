// A backoff policy whose delay is not a std::chrono::nanoseconds is named as such.
#include <rategov/client/call.hpp>

namespace m = rategov::metric;
using llm = rategov::metrics<m::generated>;
using gov_t = rategov::governor<llm>;

struct seconds_as_int {
    template <class G>
    int delay(unsigned retry, std::chrono::nanoseconds, G&) const {
        return static_cast<int>(retry);
    }
};

int main() {
    gov_t gov(rategov::per_minute(36'000));
#ifdef RATEGOV_COMPILE_FAIL
    using policy = seconds_as_int;
#else
    using policy = rategov::backoff::full_jitter;
#endif
    using options =
        rategov::call_options<gov_t, rategov::feedback::retry_after_profile<llm>, policy>;
    rategov::call_machine<gov_t, options> machine(
        gov, {}, options{.backoff = policy{std::chrono::seconds(1), std::chrono::seconds(2)}});
    return machine.done() ? 1 : 0;
}
