// parse_go_duration: never crashes; a result is within [0, nanoseconds::max()]; a duration
// is the saturating sum of its parts (parse(a + b) == parse(a) + parse(b) whenever a and b
// parse on their own), and only digits, dots and unit letters are ever accepted.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

#include <rategov/feedback/parse.hpp>

#include "fuzz_check.hpp"

namespace {

using rategov::feedback::parse_go_duration;
using rategov::feedback::trim;
using std::chrono::nanoseconds;

bool plain(std::string_view s) {
    // Not the bare "0" (which has no unit) and nothing to trim: such strings concatenate.
    return !s.empty() && trim(s) == s && s != "0";
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view s = fuzz::as_text(data, size);
    const auto whole = parse_go_duration(s);
    if (whole) {
        FUZZ_CHECK(whole->count() >= 0);
        for (const char c : trim(s)) {
            const auto u = static_cast<unsigned char>(c);
            FUZZ_CHECK((c >= '0' && c <= '9') || c == '.' || c == 'h' || c == 'm' || c == 's' ||
                       c == 'n' || c == 'u' || u == 0xC2 || u == 0xB5 || u == 0xCE || u == 0xBC);
        }
    }
    // Every split point: the parts add up (saturating).
    for (std::size_t cut = 1; cut < s.size(); ++cut) {
        const std::string_view a = s.substr(0, cut), b = s.substr(cut);
        if (!plain(a) || !plain(b))
            continue;
        const auto pa = parse_go_duration(a), pb = parse_go_duration(b);
        if (!pa || !pb)
            continue;
        FUZZ_CHECK(whole.has_value());
        const fuzz::i128 sum = static_cast<fuzz::i128>(pa->count()) + pb->count();
        const fuzz::i128 max = std::numeric_limits<nanoseconds::rep>::max();
        FUZZ_CHECK(whole->count() == (sum > max ? max : sum));
    }
    return 0;
}
