// parse_decimal: never crashes; the result is within [0, max]; it agrees with a 128-bit
// reference wherever the reference cannot overflow; it is monotonic in the scale.
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include <rategov/feedback/parse.hpp>

#include "fuzz_check.hpp"

namespace {

using rategov::feedback::parse_decimal;
using rategov::feedback::trim;

constexpr std::uint64_t u64_max = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t scales[] = {0, 1, 10, 1000, 1'000'000'007, u64_max / 3, u64_max};

/// floor(value × scale) computed directly in 128 bits, for inputs with at most 19 integer and
/// 19 fraction digits; nullopt when the input is not a plain decimal or is too long.
std::optional<std::uint64_t> reference(std::string_view s, std::uint64_t scale) {
    s = trim(s);
    const std::size_t dot = s.find('.');
    const std::string_view whole = s.substr(0, dot);
    const std::string_view fraction =
        dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
    if (whole.empty() || whole.size() > 19 || fraction.size() > 19 ||
        (dot != std::string_view::npos && fraction.empty()))
        return std::nullopt;
    fuzz::u128 w = 0, f = 0, pow = 1;
    for (const char c : whole) {
        if (c < '0' || c > '9')
            return std::nullopt;
        w = w * 10 + static_cast<fuzz::u128>(c - '0');
    }
    for (const char c : fraction) {
        if (c < '0' || c > '9')
            return std::nullopt;
        f = f * 10 + static_cast<fuzz::u128>(c - '0');
        pow *= 10;
    }
    // w·scale < 2^127 and f·scale < 10^19·2^64 < 2^128.
    const fuzz::u128 value = w * scale + f * scale / pow;
    return value > u64_max ? u64_max : static_cast<std::uint64_t>(value);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view s = fuzz::as_text(data, size);
    std::optional<std::uint64_t> previous;
    for (const std::uint64_t scale : scales) {
        const auto value = parse_decimal(s, scale);
        FUZZ_CHECK(value.has_value() == parse_decimal(s, 1).has_value());
        if (!value)
            continue;
        if (const auto expected = reference(s, scale))
            FUZZ_CHECK(*value == *expected);
        if (previous)
            FUZZ_CHECK(*previous <= *value); // scales ascend
        previous = value;
        // Clamping at max.
        const std::uint64_t max = scale / 2 + 7;
        const auto clamped = parse_decimal(s, scale, max);
        FUZZ_CHECK(clamped.has_value() && *clamped == (*value < max ? *value : max));
    }
    // Accepted text is digits and at most one dot, once trimmed.
    if (parse_decimal(s)) {
        int dots = 0;
        for (const char c : trim(s)) {
            FUZZ_CHECK((c >= '0' && c <= '9') || c == '.');
            dots += c == '.';
        }
        FUZZ_CHECK(dots <= 1);
    }
    return 0;
}
