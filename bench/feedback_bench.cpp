// Feedback profiles: the cost of reading one realistic response's full header set through a
// header_list (linear, case-insensitive lookup). The `headers` counter is the size of the
// set, so the per-header cost is the time per iteration divided by it.
#include <array>
#include <chrono>
#include <cstdint>

#include <rategov/feedback/profiles.hpp>

#include <benchmark/benchmark.h>

namespace {

namespace fb = rategov::feedback;
using llm = rategov::metrics<rategov::metric::requests, rategov::metric::total_prompt,
                             rategov::metric::uncached_prompt, rategov::metric::generated>;

// 2026-11-24T10:00:00Z.
constexpr fb::wall_time bench_now{std::chrono::sys_days{std::chrono::year{2026} / 11 / 24} +
                                  std::chrono::hours(10)};

// Headers as a client collects them from the wire: mixed case, unrelated ones interleaved.
constexpr std::array<fb::header_list::entry, 10> openai_headers{{
    {"Date", "Tue, 24 Nov 2026 10:00:00 GMT"},
    {"Content-Type", "application/json"},
    {"openai-processing-ms", "412"},
    {"x-request-id", "req_0123456789abcdef"},
    {"x-ratelimit-limit-requests", "10000"},
    {"x-ratelimit-limit-tokens", "2000000"},
    {"x-ratelimit-remaining-requests", "9999"},
    {"x-ratelimit-remaining-tokens", "1998500"},
    {"x-ratelimit-reset-requests", "6ms"},
    {"x-ratelimit-reset-tokens", "1m2.5s"},
}};

constexpr std::array<fb::header_list::entry, 11> fireworks_headers{{
    {"Content-Type", "application/json"},
    {"X-Ratelimit-Limit-Requests", "6000"},
    {"X-Ratelimit-Remaining-Requests", "5999"},
    {"X-Ratelimit-Limit-Tokens-Prompt", "60000"},
    {"X-Ratelimit-Remaining-Tokens-Prompt", "59000"},
    {"X-Ratelimit-Limit-Tokens-Cache-Adjusted-Prompt", "15000"},
    {"X-Ratelimit-Limit-Tokens-Generated", "600"},
    {"X-Ratelimit-Remaining-Tokens-Generated", "512"},
    {"X-Ratelimit-Over-Limit", "no"},
    {"Fireworks-Prompt-Tokens", "1000"},
    {"Fireworks-Cached-Prompt-Tokens", "200"},
}};

template <class Profile, std::size_t N>
void parse_loop(benchmark::State& state, const Profile& profile,
                const std::array<fb::header_list::entry, N>& headers) {
    const fb::header_list list(headers);
    int status = 200;
    std::uint64_t sum = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(status);
        const auto r = profile.read(status, list, bench_now);
        sum += r.metrics[0].limit.value_or(0);
        benchmark::DoNotOptimize(r);
    }
    benchmark::DoNotOptimize(sum);
    if (sum == 0)
        state.SkipWithError("feedback: the profile read no limit (parsers not implemented?)");
    state.counters["headers"] = static_cast<double>(N);
}

void BM_feedback_parse_openai(benchmark::State& state) {
    parse_loop(state, fb::openai_profile<llm>{}, openai_headers);
}
BENCHMARK(BM_feedback_parse_openai);

void BM_feedback_parse_fireworks(benchmark::State& state) {
    parse_loop(state, fb::fireworks_profile<llm>{}, fireworks_headers);
}
BENCHMARK(BM_feedback_parse_fireworks);

} // namespace
