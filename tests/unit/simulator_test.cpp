// `testing::provider_simulator`: window and bucket enforcement to the nanosecond, generated
// tokens streamed or counted at completion, `max_tokens` held against the generated limit (and
// the lenient rule without the hold), the prompt cache, 400s, shedding, the priority reserve,
// the three header styles and Retry-After, adaptation of the limits (from one window of age
// on), determinism, configuration errors, and an end-to-end run of `rategov::call()` against
// it. Every number asserted is derived by hand from the model the header documents; all in
// virtual time.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rategov/client/call.hpp>
#include <rategov/rategov.hpp>
#include <rategov/testing/manual_clock.hpp>
#include <rategov/testing/provider_simulator.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;

namespace rt = rategov::testing;
namespace m = rategov::metric;
namespace fb = rategov::feedback;
using manual_clock = rt::manual_clock;
using time_point = manual_clock::time_point;
using sim_t = rt::provider_simulator<>;

/// The time tests start at (not 0: the simulator's times count from its own start).
const time_point t0 = time_point(100s);

/// Small limits that make exact arithmetic easy: 1000 requests, 100 of each token metric.
rt::simulator_config small_config() {
    rt::simulator_config c;
    c.start = {1'000, 100, 100, 100};
    return c;
}

rt::llm_request prompt(std::uint64_t p, std::uint64_t output = 0, bool priority = false) {
    rt::llm_request r;
    r.prompt_tokens = p;
    r.max_tokens = output;
    r.output_tokens = output;
    r.priority = priority;
    return r;
}

/// A request whose max_tokens (what is held) differs from what it generates.
rt::llm_request request(std::uint64_t p, std::uint64_t max_tokens, std::uint64_t output,
                        bool priority = false) {
    rt::llm_request r = prompt(p, output, priority);
    r.max_tokens = max_tokens;
    return r;
}

/// small_config() without the hold: the lenient rule for generated tokens.
rt::simulator_config lenient_config() {
    rt::simulator_config c = small_config();
    c.hold_max_tokens = false;
    return c;
}

/// Bucket mode with a 10 s bucket of 600/min token limits: bursts of 100 tokens, refilled at
/// one token per 100 ms; 1000 requests/min hold 166 (1000 × 10 / 60, rounded down).
rt::simulator_config bucket_config() {
    rt::simulator_config c = small_config();
    c.mode = rt::enforcement::bucket;
    c.bucket_burst = 10s;
    c.start = {1'000, 600, 600, 600};
    return c;
}

/// A clock at t0 and a simulator on it.
struct rig {
    manual_clock clock{t0, rt::wait_mode::advance};
    sim_t sim;

    explicit rig(rt::simulator_config c = {})
        : sim(clock, std::move(c)) {}

    /// Moves the clock to t0 + d.
    void at(std::chrono::nanoseconds d) const { clock.set(t0 + d); }
    [[nodiscard]] std::chrono::nanoseconds now() const { return clock.now() - t0; }

    /// Submits now and tells the verdict from the counters, without moving the clock.
    int verdict(const rt::llm_request& r) {
        const rt::llm_counters before = sim.counters(r.account, r.model);
        static_cast<void>(sim.submit(r));
        const rt::llm_counters after = sim.counters(r.account, r.model);
        if (after.ok > before.ok)
            return 200;
        if (after.over_limit > before.over_limit)
            return 429;
        if (after.shed > before.shed)
            return 503;
        if (after.too_large > before.too_large)
            return 400;
        return 0;
    }

    /// Submits now, moves the clock to the ticket's ready_at and collects.
    rt::llm_response run(const rt::llm_request& r) {
        const sim_t::ticket t = sim.submit(r);
        clock.set(t.ready_at);
        return sim.collect(t);
    }
};

/// A header's value, or "<absent>".
std::string header(const rt::llm_response& r, const char* name) {
    const auto v = r.headers(name);
    return v ? std::string(*v) : std::string("<absent>");
}

std::vector<std::pair<std::string, std::string>> headers_of(const rt::llm_response& r) {
    return {r.headers.begin(), r.headers.end()};
}

/// The message of the config_error `f` throws ("<none>" if it throws none).
std::string config_error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const rategov::config_error& e) {
        return e.what();
    }
    return "<none>";
}

bool contains(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}

// --- window enforcement -----------------------------------------------------------------

// A prompt that fills a limit exactly is admitted; one more token is refused.
TEST(SimulatorWindow, admits_exactly_up_to_the_limit) {
    rig r(small_config());
    EXPECT_EQ(r.verdict(prompt(100)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    const rt::llm_counters c = r.sim.counters();
    EXPECT_EQ(c.submitted, 2u);
    EXPECT_EQ(c.ok, 1u);
    EXPECT_EQ(c.over_limit, 1u);
    EXPECT_EQ(c.served, (rt::llm_limits{1, 100, 100, 0}));
    EXPECT_EQ(r.sim.used(), (rt::llm_limits{1, 100, 100, 0}));
}

// Usage leaves the window exactly at t + window: refused 1 ns before, admitted at it.
TEST(SimulatorWindow, usage_leaves_exactly_at_t_plus_window) {
    rig r(small_config());
    EXPECT_EQ(r.verdict(prompt(100)), 200);
    r.at(60s - 1ns);
    EXPECT_EQ(r.sim.used().total_prompt, 100u);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    r.at(60s);
    EXPECT_EQ(r.sim.used().total_prompt, 0u);
    EXPECT_EQ(r.verdict(prompt(100)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
}

// Each entry leaves at its own time: 60 at 0 s, 40 at 10 s; at 60 s only the 60 are free.
TEST(SimulatorWindow, each_entry_leaves_on_its_own_schedule) {
    rig r(small_config());
    EXPECT_EQ(r.verdict(prompt(60)), 200);
    r.at(10s);
    EXPECT_EQ(r.verdict(prompt(41)), 429);
    EXPECT_EQ(r.verdict(prompt(40)), 200);
    r.at(60s);
    EXPECT_EQ(r.verdict(prompt(61)), 429);
    EXPECT_EQ(r.verdict(prompt(60)), 200);
    r.at(70s - 1ns);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    r.at(70s);
    EXPECT_EQ(r.verdict(prompt(40)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
}

// The requests limit is enforced like the token limits.
TEST(SimulatorWindow, requests_limit_counts_requests) {
    rt::simulator_config c = small_config();
    c.start.requests = 3;
    rig r(c);
    EXPECT_EQ(r.verdict(prompt(1)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 200);
    EXPECT_EQ(r.verdict(prompt(0)), 429);
    EXPECT_EQ(r.sim.used().requests, 3u);
}

// --- bucket enforcement -----------------------------------------------------------------

// burst = limit × bucket_burst / 60 s: 600/min with a 10 s bucket holds 100, though the
// per-minute limit is 600; 101 can never be admitted (400).
TEST(SimulatorBucket, burst_is_the_limit_times_bucket_burst) {
    rt::simulator_config c = small_config();
    c.mode = rt::enforcement::bucket;
    c.bucket_burst = 10s;
    c.start = {1'000, 600, 600, 600};
    rig r(c);
    EXPECT_EQ(r.verdict(prompt(101)), 400);
    EXPECT_EQ(r.verdict(prompt(100)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
}

// Refill at limit/min exactly: 600/min is one token per 100 ms.
TEST(SimulatorBucket, refills_at_the_limit_rate_exactly) {
    rt::simulator_config c = small_config();
    c.mode = rt::enforcement::bucket;
    c.bucket_burst = 10s;
    c.start = {1'000, 600, 600, 600};
    rig r(c);
    EXPECT_EQ(r.verdict(prompt(100)), 200);
    r.at(100ms - 1ns);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    r.at(100ms);
    EXPECT_EQ(r.verdict(prompt(1)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    r.at(1100ms); // 10 more tokens
    EXPECT_EQ(r.verdict(prompt(11)), 429);
    EXPECT_EQ(r.verdict(prompt(10)), 200);
}

// 60/min with a 1 s bucket: a burst of 1, one token per second — refused at 999 ms,
// admitted at 1000 ms; the per-minute limit is never reached in between.
TEST(SimulatorBucket, sixty_per_minute_is_one_token_per_second) {
    rt::simulator_config c = small_config();
    c.mode = rt::enforcement::bucket;
    c.start = {1'000, 60, 60, 60};
    rig r(c);
    EXPECT_EQ(r.verdict(prompt(2)), 400);
    EXPECT_EQ(r.verdict(prompt(1)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    r.at(999ms);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    r.at(1000ms);
    EXPECT_EQ(r.verdict(prompt(1)), 200);
    r.at(1999ms);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    r.at(2000ms);
    EXPECT_EQ(r.verdict(prompt(1)), 200);
}

// Retry-After in bucket mode is the exact time the bucket needs to drain one token.
TEST(SimulatorBucket, retry_after_is_the_drain_time) {
    rt::simulator_config c = small_config();
    c.mode = rt::enforcement::bucket;
    c.start = {1'000, 60, 60, 60};
    c.headers = rt::header_style::fireworks | rt::header_style::openai;
    rig r(c);
    EXPECT_EQ(r.run(prompt(1)).status, 200); // at 0, collected at 200 ms
    r.at(200ms);
    const rt::llm_response over = r.run(prompt(1)); // collected at 205 ms
    EXPECT_EQ(over.status, 429);
    EXPECT_EQ(r.now(), 205ms);
    EXPECT_EQ(header(over, "retry-after-ms"), "795"); // the token is free at 1000 ms
    EXPECT_EQ(header(over, "retry-after"), "1");
    r.at(1000ms - 1ns);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    r.at(1000ms);
    EXPECT_EQ(r.verdict(prompt(1)), 200);
}

// `simulator_config::window`: "`remaining` headers report the room under the enforcement in
// force: the window's, or the bucket's". In bucket mode remaining = burst − in use, not the
// per-minute limit − window usage (which would be 999, 500, 500, 570).
TEST(SimulatorBucket, remaining_headers_report_the_buckets_room) {
    rt::simulator_config c = bucket_config();
    c.headers = rt::header_style::fireworks | rt::header_style::openai;
    rig r(c);
    const rt::llm_response resp = r.run(prompt(100, 30)); // collected at 200 + 300 = 500 ms
    EXPECT_EQ(r.now(), 500ms);
    EXPECT_EQ(resp.status, 200);
    // Requests: the 1 drained in 60 ms (1000/min): the whole burst of 166 is free.
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-requests"), "166");
    // Prompt: 100 − 5 drained in 500 ms = 95 in use of 100.
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens-prompt"), "5");
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens-cache-adjusted-prompt"), "5");
    // Generated: the hold of 30 (all generated, nothing given back) − 5 drained = 25.
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens-generated"), "75");
    // OpenAI: the same room; the prompt bucket empties in 95 / (10/s) = 9.5 s, the requests
    // bucket is empty already.
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens"), "5");
    EXPECT_EQ(header(resp, "x-ratelimit-reset-tokens"), "9.500s");
    EXPECT_EQ(header(resp, "x-ratelimit-reset-requests"), "0s");
}

// --- generated tokens ---------------------------------------------------------------------

// Streamed: token k counts at ttft + k × per_output_token. Without the hold (the lenient
// rule) a request is admitted while the generated usage is below the limit even though its
// output then exceeds it — max_tokens 150 above the limit of 100 is no 400 either.
TEST(SimulatorGenerated, streamed_tokens_count_one_by_one_without_hold) {
    rt::simulator_config c = lenient_config();
    c.start = {1'000, 10'000, 10'000, 100};
    rig r(c);
    const sim_t::ticket t = r.sim.submit(prompt(10, 150));
    EXPECT_EQ(t.ready_at, t0 + 200ms + 150 * 10ms);
    EXPECT_EQ(r.sim.used().generated, 0u);
    r.at(210ms - 1ns);
    EXPECT_EQ(r.sim.used().generated, 0u);
    r.at(210ms);
    EXPECT_EQ(r.sim.used().generated, 1u);
    r.at(250ms);
    EXPECT_EQ(r.sim.used().generated, 5u);
    r.at(1190ms); // 99 tokens: below the limit, admitted
    EXPECT_EQ(r.sim.used().generated, 99u);
    EXPECT_EQ(r.verdict(prompt(10, 50)), 200);
    r.at(1200ms); // 100: at the limit, refused (the second request has not started yet)
    EXPECT_EQ(r.sim.used().generated, 100u);
    EXPECT_EQ(r.verdict(prompt(10, 50)), 429);
    r.at(1700ms);
    EXPECT_EQ(r.sim.outstanding(), 3u);
    const rt::llm_response resp = r.sim.collect(t);
    EXPECT_EQ(resp.status, 200);
    ASSERT_TRUE(resp.usage.has_value());
    EXPECT_EQ((*resp.usage)[0], 1u);
    EXPECT_EQ((*resp.usage)[1], 10u);
    EXPECT_EQ((*resp.usage)[2], 10u);
    EXPECT_EQ((*resp.usage)[3], 150u);
    // The first request's 150 tokens plus the second's, generated from 1390 ms + 10 ms each.
    EXPECT_EQ(r.sim.used().generated, 150u + 31u);
    EXPECT_EQ(r.sim.outstanding(), 2u);
}

// At completion: nothing counts until the response completes, then all of it at once.
// Without the hold the usage (0) is below the limit until then.
TEST(SimulatorGenerated, at_completion_counts_everything_at_the_end_without_hold) {
    rt::simulator_config c = lenient_config();
    c.start = {1'000, 10'000, 10'000, 100};
    c.counting = rt::generated_counting::at_completion;
    rig r(c);
    const sim_t::ticket t = r.sim.submit(prompt(10, 150));
    EXPECT_EQ(t.ready_at, t0 + 1700ms);
    r.at(1700ms - 1ns);
    EXPECT_EQ(r.sim.used().generated, 0u);
    EXPECT_EQ(r.verdict(prompt(10)), 200);
    r.at(1700ms);
    EXPECT_EQ(r.sim.used().generated, 150u);
    EXPECT_EQ(r.verdict(prompt(10)), 429);
    EXPECT_EQ(r.sim.collect(t).status, 200);
    EXPECT_EQ(r.sim.counters().served.generated, 150u);
}

// At completion with the hold: the whole max_tokens (100) is held until the response
// completes at 200 + 60 × 10 = 800 ms; then the 60 generated enter the window and the
// other 40 are released.
TEST(SimulatorGenerated, at_completion_holds_max_tokens_until_the_end) {
    rt::simulator_config c = small_config();
    c.counting = rt::generated_counting::at_completion;
    rig r(c);
    const sim_t::ticket t = r.sim.submit(request(10, 100, 60));
    EXPECT_EQ(t.ready_at, t0 + 800ms);
    r.at(800ms - 1ns);
    EXPECT_EQ(r.sim.used().generated, 0u);
    EXPECT_EQ(r.verdict(request(1, 1, 0)), 429); // 0 + 100 held + 1 > 100
    r.at(800ms);
    EXPECT_EQ(r.sim.used().generated, 60u);
    EXPECT_EQ(r.verdict(request(1, 41, 0)), 429); // 60 + 41 > 100
    EXPECT_EQ(r.verdict(request(1, 40, 0)), 200); // 60 + 40 = 100
    EXPECT_EQ(r.sim.collect(t).status, 200);
    EXPECT_EQ(r.sim.counters().served.generated, 60u);
}

// The output is clamped to max_tokens: in the usage, the timing and the counters.
TEST(SimulatorGenerated, output_is_clamped_to_max_tokens) {
    rig r(small_config());
    rt::llm_request q = prompt(10);
    q.max_tokens = 20;
    q.output_tokens = 50;
    const sim_t::ticket t = r.sim.submit(q);
    EXPECT_EQ(t.ready_at, t0 + 200ms + 20 * 10ms);
    r.clock.set(t.ready_at);
    const rt::llm_response resp = r.sim.collect(t);
    ASSERT_TRUE(resp.usage.has_value());
    EXPECT_EQ((*resp.usage)[3], 20u);
    EXPECT_EQ(r.sim.counters().served.generated, 20u);
}

// ready_at follows the configured latencies; rejections are ready after reject_latency.
TEST(SimulatorGenerated, ready_at_follows_the_latencies) {
    rt::simulator_config c = small_config();
    c.time_to_first_token = 300ms;
    c.per_output_token = 7ms;
    c.reject_latency = 40ms;
    rig r(c);
    r.at(1s);
    EXPECT_EQ(r.sim.submit(prompt(10, 30)).ready_at, t0 + 1s + 300ms + 30 * 7ms);
    EXPECT_EQ(r.sim.submit(prompt(10)).ready_at, t0 + 1s + 300ms); // no output: ttft alone
    const sim_t::ticket over = r.sim.submit(prompt(81));
    EXPECT_EQ(over.ready_at, t0 + 1s + 40ms);
    const sim_t::ticket large = r.sim.submit(prompt(101));
    EXPECT_EQ(large.ready_at, t0 + 1s + 40ms);
    r.at(1s + 40ms);
    EXPECT_EQ(r.sim.collect(over).status, 429);
    const rt::llm_response l = r.sim.collect(large);
    EXPECT_EQ(l.status, 400);
    EXPECT_FALSE(l.usage.has_value());
}

// Without the hold, a generated-limit 429 waits for the first token to leave the window.
TEST(SimulatorGenerated, retry_after_for_the_generated_limit_without_hold) {
    rig r(lenient_config());
    static_cast<void>(r.sim.submit(prompt(1, 100))); // tokens at 210 ms … 1200 ms
    r.at(1200ms);
    const rt::llm_response over = r.run(prompt(1)); // collected at 1205 ms
    EXPECT_EQ(over.status, 429);
    // The first token leaves at 60.21 s: 59.005 s from now → 60 s rounded up.
    EXPECT_EQ(header(over, "retry-after"), "60");
    r.at(60s + 210ms - 1ns);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    r.at(60s + 210ms);
    EXPECT_EQ(r.verdict(prompt(1)), 200);
}

// --- max_tokens held against the generated limit ------------------------------------------

// The hold is the default. Window mode: in use = generated in the window + held; a request
// is admitted only if in use + max_tokens ≤ the limit (100).
TEST(SimulatorHold, admission_boundary_in_window_mode) {
    EXPECT_TRUE(rt::simulator_config{}.hold_max_tokens);
    rig r(small_config());
    EXPECT_EQ(r.verdict(request(1, 60, 60)), 200); // holds 60
    EXPECT_EQ(r.sim.used().generated, 0u);         // held, not generated
    EXPECT_EQ(r.verdict(request(1, 41, 0)), 429);  // 60 + 41 > 100
    EXPECT_EQ(r.verdict(request(1, 40, 0)), 200);  // 60 + 40 = 100
    EXPECT_EQ(r.verdict(request(1, 1, 0)), 429);   // 100 + 1
    EXPECT_EQ(r.verdict(request(1, 0, 0)), 200);   // nothing to hold: 100 + 0 ≤ 100
    const rt::llm_counters k = r.sim.counters();
    EXPECT_EQ(k.ok, 3u);
    EXPECT_EQ(k.over_limit, 2u);
    EXPECT_EQ(k.served, (rt::llm_limits{3, 3, 3, 0})); // the hold is not served
}

// max_tokens above the generated limit can never be held: 400 "request_too_large". At the
// limit it fits an empty account. Without the hold the same request is admitted.
TEST(SimulatorHold, max_tokens_above_the_limit_is_request_too_large) {
    rig r(small_config());
    const rt::llm_response big = r.run(request(1, 101, 0));
    EXPECT_EQ(big.status, 400);
    EXPECT_EQ(big.error_code, "request_too_large");
    EXPECT_FALSE(big.usage.has_value());
    const rt::llm_response fits = r.run(request(1, 100, 0)); // at 5 ms, ready at 205 ms
    EXPECT_EQ(fits.status, 200);
    EXPECT_EQ(fits.error_code, "");
    const rt::llm_counters k = r.sim.counters();
    EXPECT_EQ(k.too_large, 1u);
    EXPECT_EQ(k.ok, 1u);

    rig lenient(lenient_config());
    EXPECT_EQ(lenient.verdict(request(1, 101, 0)), 200);
    EXPECT_EQ(lenient.verdict(request(1, 1'000, 0)), 200);
}

// Each generated token moves one token from the hold into the window (in use stays 100);
// at completion the rest of the hold (100 − 50) is released.
TEST(SimulatorHold, generated_tokens_move_from_the_hold_to_the_window) {
    rig r(small_config());
    const sim_t::ticket t = r.sim.submit(request(1, 100, 50)); // tokens at 210 … 700 ms
    EXPECT_EQ(t.ready_at, t0 + 700ms);
    r.at(450ms); // 25 generated, 75 held
    EXPECT_EQ(r.sim.used().generated, 25u);
    EXPECT_EQ(r.verdict(request(1, 1, 0)), 429);
    r.at(700ms - 1ns); // 49 generated, 51 held
    EXPECT_EQ(r.sim.used().generated, 49u);
    EXPECT_EQ(r.verdict(request(1, 1, 0)), 429);
    r.at(700ms); // 50 generated, the other 50 released
    EXPECT_EQ(r.sim.used().generated, 50u);
    const rt::llm_response resp = r.sim.collect(t);
    ASSERT_TRUE(resp.usage.has_value());
    EXPECT_EQ((*resp.usage)[3], 50u);
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens-generated"), "50");
    EXPECT_EQ(r.verdict(request(1, 51, 0)), 429);
    EXPECT_EQ(r.verdict(request(1, 50, 0)), 200);
    EXPECT_EQ(r.verdict(request(1, 1, 0)), 429);
}

// A request that generates nothing holds its max_tokens until it completes (ttft, 200 ms).
TEST(SimulatorHold, hold_of_an_empty_response_is_released_at_completion) {
    rig r(small_config());
    EXPECT_EQ(r.verdict(request(1, 100, 0)), 200);
    r.at(200ms - 1ns);
    EXPECT_EQ(r.verdict(request(1, 1, 0)), 429);
    r.at(200ms);
    EXPECT_EQ(r.verdict(request(1, 100, 0)), 200);
    EXPECT_EQ(r.sim.used().generated, 0u);
}

// Window mode, blocked by the window plus a hold in flight: 60 generated (210 … 800 ms) + 20
// held + 30 asked > 100. Held tokens leave only as they are generated, so the wait is for the
// window to fall to 100 − 30 − 20 = 50: until the 10th token (300 ms) leaves at 60.3 s,
// 59.295 s after the collection at 1.005 s. Then the 20, generated at 1.21 … 1.4 s, are in the
// window: 50 + 20 + 30 = 100 fits.
TEST(SimulatorHold, retry_after_when_the_hold_blocks_in_window_mode) {
    rt::simulator_config c = small_config();
    c.headers = rt::header_style::fireworks | rt::header_style::openai;
    rig r(c);
    EXPECT_EQ(r.verdict(request(1, 60, 60)), 200);
    r.at(1s);
    EXPECT_EQ(r.verdict(request(1, 20, 20)), 200);
    const rt::llm_response over = r.run(request(1, 30, 30));
    EXPECT_EQ(over.status, 429);
    EXPECT_EQ(r.now(), 1s + 5ms);
    EXPECT_EQ(header(over, "x-ratelimit-remaining-tokens-generated"), "20"); // 100 − 60 − 20
    EXPECT_EQ(header(over, "retry-after-ms"), "59295");
    EXPECT_EQ(header(over, "retry-after"), "60");
    r.at(60s + 300ms - 1ns); // 51 + 20 + 30 > 100
    EXPECT_EQ(r.verdict(request(1, 30, 30)), 429);
    r.at(60s + 300ms);
    EXPECT_EQ(r.verdict(request(1, 30, 30)), 200);
    EXPECT_EQ(r.sim.used().generated, 70u);
}

// Window mode, blocked by holds in flight alone (80 + 30 > 100): when they leave is not
// known in advance, so Retry-After is its minimum, 1 s.
TEST(SimulatorHold, retry_after_when_holds_in_flight_alone_block) {
    rig r(small_config());
    EXPECT_EQ(r.verdict(request(1, 80, 80)), 200);
    const rt::llm_response over = r.run(request(1, 30, 0));
    EXPECT_EQ(over.status, 429);
    // 80 held, 30 wanted of 100: 10 of the 80 must leave the window — the 10th generated
    // token, at ttft + 10 × per token, leaves one window later; asked at the reject latency.
    EXPECT_EQ(header(over, "retry-after"), "61");
    EXPECT_EQ(header(over, "x-ratelimit-remaining-tokens-generated"), "20");
}

// Bucket mode: max_tokens goes into the generated bucket at arrival; what the response does
// not generate (60 − 10) is given back at completion (300 ms), after the bucket drained 3.
TEST(SimulatorHold, bucket_holds_at_arrival_and_gives_back_the_unused_part) {
    rig r(bucket_config());
    const sim_t::ticket t = r.sim.submit(request(1, 60, 10)); // tokens at 210 … 300 ms
    EXPECT_EQ(r.verdict(request(1, 41, 0)), 429);             // 60 + 41 > 100
    r.at(300ms - 1ns); // 60 − 2.99999999 = 57.00000001: 58 in use (rounded up)
    EXPECT_EQ(r.verdict(request(1, 43, 0)), 429);
    r.at(300ms); // 60 − 3 = 57, minus the 50 given back: 7
    const rt::llm_response resp = r.sim.collect(t);
    ASSERT_TRUE(resp.usage.has_value());
    EXPECT_EQ((*resp.usage)[3], 10u);
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens-generated"), "93");
    EXPECT_EQ(r.verdict(request(1, 94, 0)), 429); // 7 + 94 > 100
    EXPECT_EQ(r.verdict(request(1, 93, 0)), 200);
    EXPECT_EQ(r.sim.counters().served.generated, 10u);
}

// Bucket mode: max_tokens above the burst (100) is 400; at the burst it fits.
TEST(SimulatorHold, bucket_max_tokens_above_the_burst_is_request_too_large) {
    rig r(bucket_config());
    const rt::llm_response big = r.run(request(1, 101, 0));
    EXPECT_EQ(big.status, 400);
    EXPECT_EQ(big.error_code, "request_too_large");
    EXPECT_EQ(r.verdict(request(1, 100, 0)), 200);
    EXPECT_EQ(r.verdict(request(1, 1, 0)), 429);
}

// Bucket mode, blocked by a hold: 60 held at 0; asking 50 at 0 is refused; collected at 5 ms
// the bucket holds 59.95: 9.95 tokens too many, drained in 995 ms. At 1 s it holds 50.
TEST(SimulatorHold, retry_after_when_the_hold_blocks_in_bucket_mode) {
    rt::simulator_config c = bucket_config();
    c.headers = rt::header_style::fireworks | rt::header_style::openai;
    rig r(c);
    EXPECT_EQ(r.verdict(request(1, 60, 60)), 200);
    const rt::llm_response over = r.run(request(1, 50, 0));
    EXPECT_EQ(over.status, 429);
    EXPECT_EQ(header(over, "x-ratelimit-remaining-tokens-generated"), "40"); // 100 − 60 (59.95)
    EXPECT_EQ(header(over, "retry-after-ms"), "995");
    EXPECT_EQ(header(over, "retry-after"), "1");
    r.at(1s - 1ns); // 50.00000001: 51 in use
    EXPECT_EQ(r.verdict(request(1, 50, 0)), 429);
    r.at(1s);
    EXPECT_EQ(r.verdict(request(1, 50, 0)), 200);
}

// Bucket mode without the hold: generated tokens are added as they are generated; max_tokens
// above the burst is no 400, and requests are admitted while the bucket is below its burst.
// Two responses of 150 add 2 tokens per 10 ms from 210 ms and the bucket drains 0.1 per 10 ms:
// at 700 ms 100 − 4.9 = 95.1 (96 in use, admitted); at 750 ms 110 − 5.4 = 104.6 (refused).
TEST(SimulatorHold, bucket_without_hold_adds_tokens_as_generated) {
    rt::simulator_config c = bucket_config();
    c.hold_max_tokens = false;
    rig r(c);
    EXPECT_EQ(r.verdict(request(1, 150, 150)), 200);
    EXPECT_EQ(r.verdict(request(1, 150, 150)), 200);
    r.at(700ms);
    EXPECT_EQ(r.sim.used().generated, 100u);
    EXPECT_EQ(r.verdict(request(1, 0, 0)), 200);
    r.at(750ms);
    EXPECT_EQ(r.verdict(request(1, 0, 0)), 429);
}

// The bucket holds level + frac exactly; giving back n tokens leaves the rest. With ttft
// 250 ms, A holds 50 (generates none) and B holds `b` (3 tokens from 260 ms); at 250 ms the
// bucket holds 50 + b − 2.5, and A's 50 are given back: b − 2.5 stay, in use rounded up.
// b = 4: 1.5 → 2 in use (room 98); b = 3: 0.5 → 1 in use (room 99), and a hold of the whole
// burst (0.5 + 100 > 100) is refused.
TEST(SimulatorHold, bucket_give_back_keeps_the_fraction_in_use) {
    for (const std::uint64_t b : {4u, 3u}) {
        rt::simulator_config c = bucket_config();
        c.time_to_first_token = 250ms;
        rig r(c);
        const sim_t::ticket ta = r.sim.submit(request(1, 50, 0));
        static_cast<void>(r.sim.submit(request(1, b, 3)));
        r.at(250ms);
        const rt::llm_response resp = r.sim.collect(ta);
        EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens-generated"), b == 4u ? "98" : "99")
            << "b = " << b;
        EXPECT_EQ(r.verdict(request(1, 100, 0)), 429) << "b = " << b;
    }
}

// --- prompt cache ---------------------------------------------------------------------------

// uncached = prompt − floor(prompt × cache_hit); the cached part counts to total prompt only.
TEST(SimulatorCache, cached_share_counts_to_total_prompt_only) {
    rt::simulator_config c;
    c.cache_hit = 0.25;
    rig r(c);
    const rt::llm_response resp = r.run(prompt(1001)); // 250 cached (floor 250.25)
    EXPECT_EQ(resp.status, 200);
    ASSERT_TRUE(resp.usage.has_value());
    EXPECT_EQ((*resp.usage)[1], 1001u);
    EXPECT_EQ((*resp.usage)[2], 751u);
    EXPECT_EQ(header(resp, "fireworks-prompt-tokens"), "1001");
    EXPECT_EQ(header(resp, "fireworks-cached-prompt-tokens"), "250");
    EXPECT_EQ(r.sim.used(), (rt::llm_limits{1, 1001, 751, 0}));
}

// The cache lets a prompt pass the uncached limit: 200 tokens at 50 % are 100 uncached.
TEST(SimulatorCache, cache_hit_admits_past_the_uncached_limit) {
    rt::simulator_config c = small_config();
    c.start = {1'000, 1'000, 100, 100};
    c.cache_hit = 0.5;
    rig r(c);
    EXPECT_EQ(r.verdict(prompt(202)), 400); // 101 uncached: never
    EXPECT_EQ(r.verdict(prompt(200)), 200);
    EXPECT_EQ(r.verdict(prompt(2)), 429); // 1 more uncached
    EXPECT_EQ(r.sim.used(), (rt::llm_limits{1, 200, 100, 0}));
}

// --- 400: more than a limit can ever admit -------------------------------------------------

// A prompt above a limit is 400 "request_too_large", even on an empty account.
TEST(SimulatorTooLarge, prompt_above_a_limit_is_request_too_large) {
    rt::simulator_config c = small_config();
    c.start = {1'000, 1'000, 50, 100};
    rig r(c);
    const rt::llm_response big = r.run(prompt(51)); // uncached 51 > 50
    EXPECT_EQ(big.status, 400);
    EXPECT_EQ(big.error_code, "request_too_large");
    EXPECT_FALSE(big.usage.has_value());
    const rt::llm_response fits = r.run(prompt(50));
    EXPECT_EQ(fits.status, 200);
    EXPECT_EQ(fits.error_code, "");
    const rt::llm_counters k = r.sim.counters();
    EXPECT_EQ(k.too_large, 1u);
    EXPECT_EQ(k.ok, 1u);
    EXPECT_EQ(k.served, (rt::llm_limits{1, 50, 50, 0})); // the 400 counted nothing
}

// --- shedding -------------------------------------------------------------------------------

// shed_rate 1 sheds every regular request; priority_shed_factor 0 spares priority ones.
TEST(SimulatorShedding, full_rate_sheds_regular_never_priority) {
    rt::simulator_config c;
    c.shed_rate = 1.0;
    rig r(c);
    for (int k = 0; k < 100; ++k) {
        EXPECT_EQ(r.verdict(prompt(10)), 503);
        EXPECT_EQ(r.verdict(prompt(10, 0, true)), 200);
    }
    const rt::llm_counters k = r.sim.counters();
    EXPECT_EQ(k.shed, 100u);
    EXPECT_EQ(k.ok, 100u);
    EXPECT_EQ(k.served.requests, 100u); // shed requests count nothing
    const rt::llm_response shed = r.run(prompt(10));
    EXPECT_EQ(shed.status, 503);
    EXPECT_FALSE(shed.usage.has_value());
    EXPECT_EQ(header(shed, "x-ratelimit-over-limit"), "<absent>");
    EXPECT_EQ(header(shed, "retry-after"), "<absent>");
}

// Shed windows apply within [from, to) of the simulator's time, and only there.
TEST(SimulatorShedding, shed_window_is_half_open) {
    rt::simulator_config c;
    c.shed_windows = {{10s, 20s, 1.0}};
    rig r(c);
    EXPECT_EQ(r.verdict(prompt(10)), 200);
    r.at(10s - 1ns);
    EXPECT_EQ(r.verdict(prompt(10)), 200);
    r.at(10s);
    EXPECT_EQ(r.verdict(prompt(10)), 503);
    EXPECT_EQ(r.verdict(prompt(10, 0, true)), 200);
    r.at(20s - 1ns);
    EXPECT_EQ(r.verdict(prompt(10)), 503);
    r.at(20s);
    EXPECT_EQ(r.verdict(prompt(10)), 200);
}

/// Verdicts of n regular requests on a fresh simulator with `c`.
std::vector<int> shed_sequence(rt::simulator_config c, int n, bool priority = false) {
    c.start.requests = std::uint64_t{1} << 40;
    rig r(std::move(c));
    std::vector<int> out;
    out.reserve(static_cast<std::size_t>(n));
    for (int k = 0; k < n; ++k)
        out.push_back(r.verdict(prompt(1, 0, priority)));
    return out;
}

long count_of(const std::vector<int>& v, int status) {
    return static_cast<long>(std::count(v.begin(), v.end(), status));
}

// A rate of 0.3 sheds about 30 % (σ ≈ 46 in 10000: ±300 is over 6σ); the rest pass.
TEST(SimulatorShedding, rate_sheds_that_share) {
    rt::simulator_config c;
    c.shed_rate = 0.3;
    const std::vector<int> v = shed_sequence(c, 10'000);
    EXPECT_GE(count_of(v, 503), 2'700);
    EXPECT_LE(count_of(v, 503), 3'300);
    EXPECT_EQ(count_of(v, 503) + count_of(v, 200), 10'000);
}

// Priority traffic is shed at the regular rate times priority_shed_factor.
TEST(SimulatorShedding, priority_shed_factor_scales_the_rate) {
    rt::simulator_config c;
    c.shed_rate = 1.0;
    c.priority_shed_factor = 0.5;
    const std::vector<int> v = shed_sequence(c, 10'000, true);
    EXPECT_GE(count_of(v, 503), 4'500);
    EXPECT_LE(count_of(v, 503), 5'500);
}

// Same seed, same draws; another seed, other draws.
TEST(SimulatorShedding, seed_decides_the_sequence) {
    rt::simulator_config c;
    c.shed_rate = 0.3;
    c.seed = 7;
    const std::vector<int> a = shed_sequence(c, 10'000);
    const std::vector<int> b = shed_sequence(c, 10'000);
    c.seed = 8;
    const std::vector<int> d = shed_sequence(c, 10'000);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, d);
}

// --- priority reserve ----------------------------------------------------------------------

// With a 25 % reserve, regular traffic fills 75 of 100; priority traffic the rest. A regular
// request above the regular share can never be admitted: 400 "request_too_large", not 429.
TEST(SimulatorPriority, reserve_is_for_priority_only) {
    rt::simulator_config c = small_config();
    c.priority_reserve = 0.25;
    rig r(c);
    const rt::llm_response big = r.run(prompt(76)); // collected at 5 ms
    EXPECT_EQ(big.status, 400);
    EXPECT_EQ(big.error_code, "request_too_large");
    EXPECT_EQ(header(big, "retry-after"), "<absent>");
    EXPECT_EQ(r.verdict(prompt(75)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    EXPECT_EQ(r.verdict(prompt(25, 0, true)), 200);
    EXPECT_EQ(r.verdict(prompt(1, 0, true)), 429);
    EXPECT_EQ(r.verdict(prompt(101, 0, true)), 400);
    EXPECT_EQ(r.sim.used().total_prompt, 100u);
    const rt::llm_counters k = r.sim.counters();
    EXPECT_EQ(k.too_large, 2u);
    EXPECT_EQ(k.over_limit, 2u);
}

// Without the hold, the reserve applies to the generated usage: regular stops at 75
// generated.
TEST(SimulatorPriority, reserve_applies_to_generated_without_hold) {
    rt::simulator_config c = lenient_config();
    c.priority_reserve = 0.25;
    rig r(c);
    static_cast<void>(r.sim.submit(prompt(1, 100, true))); // token k at 200 ms + k × 10 ms
    r.at(940ms);                                           // 74 tokens
    EXPECT_EQ(r.verdict(prompt(1)), 200);
    r.at(950ms); // 75
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    EXPECT_EQ(r.verdict(prompt(1, 0, true)), 200);
}

// With the hold, the reserve applies to what is held: regular holds fill 75 (max_tokens 76
// is 400 for a regular request), priority holds the rest.
TEST(SimulatorPriority, reserve_applies_to_the_hold) {
    rt::simulator_config c = small_config();
    c.priority_reserve = 0.25;
    rig r(c);
    EXPECT_EQ(r.verdict(request(1, 50, 20, true)), 200); // holds 50
    const rt::llm_response big = r.run(request(1, 76, 0));
    EXPECT_EQ(big.status, 400);
    EXPECT_EQ(big.error_code, "request_too_large");
    EXPECT_EQ(r.verdict(request(1, 25, 0)), 200);       // 50 + 25 = 75
    EXPECT_EQ(r.verdict(request(1, 1, 0)), 429);        // 76 > 75
    EXPECT_EQ(r.verdict(request(1, 25, 0, true)), 200); // 75 + 25 = 100
    EXPECT_EQ(r.verdict(request(1, 1, 0, true)), 429);
    EXPECT_EQ(r.verdict(request(1, 101, 0, true)), 400);
}

// --- headers ---------------------------------------------------------------------------------

// Fireworks: token limits per second (limit / 60), requests per minute, remaining tokens
// as of the collection, and the prompt/cached counts on 200.
TEST(SimulatorHeaders, fireworks_per_second_and_remaining) {
    rig r; // the seed's limits: 6000, 3.6M, 900k, 36k per minute
    const rt::llm_response resp = r.run(prompt(1'200, 250));
    EXPECT_EQ(r.now(), 2700ms);
    EXPECT_EQ(resp.status, 200);
    EXPECT_EQ(header(resp, "x-ratelimit-limit-tokens-prompt"), "60000");
    EXPECT_EQ(header(resp, "x-ratelimit-limit-tokens-cache-adjusted-prompt"), "15000");
    EXPECT_EQ(header(resp, "x-ratelimit-limit-tokens-generated"), "600");
    EXPECT_EQ(header(resp, "x-ratelimit-limit-requests"), "6000");
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-requests"), "5999");
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens-prompt"), "3598800");
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens-cache-adjusted-prompt"), "898800");
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens-generated"), "35750");
    EXPECT_EQ(header(resp, "fireworks-prompt-tokens"), "1200");
    EXPECT_EQ(header(resp, "fireworks-cached-prompt-tokens"), "0");
    EXPECT_EQ(header(resp, "x-ratelimit-over-limit"), "<absent>");
    EXPECT_EQ(header(resp, "retry-after"), "<absent>");
    EXPECT_EQ(header(resp, "x-ratelimit-limit-tokens"), "<absent>");         // no openai
    EXPECT_EQ(header(resp, "anthropic-ratelimit-tokens-limit"), "<absent>"); // no anthropic
}

// tokens_unit = per::minute sends the per-minute counts.
TEST(SimulatorHeaders, fireworks_per_minute) {
    rt::simulator_config c;
    c.tokens_unit = fb::per::minute;
    rig r(c);
    const rt::llm_response resp = r.run(prompt(1'200, 250));
    EXPECT_EQ(header(resp, "x-ratelimit-limit-tokens-prompt"), "3600000");
    EXPECT_EQ(header(resp, "x-ratelimit-limit-tokens-cache-adjusted-prompt"), "900000");
    EXPECT_EQ(header(resp, "x-ratelimit-limit-tokens-generated"), "36000");
    EXPECT_EQ(header(resp, "x-ratelimit-limit-requests"), "6000");
}

// send_remaining = false: the limits only.
TEST(SimulatorHeaders, fireworks_without_remaining) {
    rt::simulator_config c;
    c.send_remaining = false;
    rig r(c);
    const rt::llm_response resp = r.run(prompt(1'200, 250));
    EXPECT_EQ(header(resp, "x-ratelimit-limit-tokens-prompt"), "60000");
    EXPECT_EQ(header(resp, "x-ratelimit-limit-requests"), "<absent>");
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-requests"), "<absent>");
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens-prompt"), "<absent>");
    EXPECT_EQ(header(resp, "x-ratelimit-remaining-tokens-generated"), "<absent>");
}

// A window 429: over-limit flag, remaining 0 where full, Retry-After rounded up from the
// exact wait (39.995 s); a resubmission 1 ns before the exact wait is refused, one after
// the Retry-After seconds admitted.
TEST(SimulatorHeaders, over_limit_and_retry_after_in_window_mode) {
    rt::simulator_config c = small_config();
    c.headers = rt::header_style::fireworks | rt::header_style::openai;
    c.tokens_unit = fb::per::minute;
    rig r(c);
    EXPECT_EQ(r.verdict(prompt(60)), 200);
    r.at(10s);
    EXPECT_EQ(r.verdict(prompt(30)), 200);
    r.at(20s);
    const rt::llm_response over = r.run(prompt(50)); // 90 + 50 > 100; collected at 20.005 s
    EXPECT_EQ(over.status, 429);
    EXPECT_EQ(r.now(), 20s + 5ms);
    EXPECT_FALSE(over.usage.has_value());
    EXPECT_EQ(header(over, "x-ratelimit-over-limit"), "yes");
    EXPECT_EQ(header(over, "x-ratelimit-remaining-tokens-prompt"), "10");
    EXPECT_EQ(header(over, "fireworks-prompt-tokens"), "<absent>");
    // The 60 leave at 60 s: 50 fit from then on, 39.995 s after the collection.
    EXPECT_EQ(header(over, "retry-after-ms"), "39995");
    EXPECT_EQ(header(over, "retry-after"), "40");
    const std::chrono::nanoseconds exact = 39'995ms;
    r.at(20s + 5ms + exact - 1ns);
    EXPECT_EQ(r.verdict(prompt(50)), 429);
    r.at(20s + 5ms + 40s);
    EXPECT_EQ(r.run(prompt(50)).status, 200);
}

// OpenAI: limit-tokens is the total prompt limit per minute; resets are Go durations.
TEST(SimulatorHeaders, openai_names_and_values) {
    rt::simulator_config c = small_config();
    c.start = {1'000, 5'000, 4'000, 500};
    c.window = 2s;
    c.headers = rt::header_style::openai;
    rig r(c);
    const sim_t::ticket a = r.sim.submit(prompt(10));
    const sim_t::ticket b = r.sim.submit(prompt(10));
    r.at(500ms);
    const rt::llm_response ra = r.sim.collect(a);
    EXPECT_EQ(ra.status, 200);
    EXPECT_EQ(header(ra, "x-ratelimit-limit-requests"), "1000");
    EXPECT_EQ(header(ra, "x-ratelimit-limit-tokens"), "5000");
    EXPECT_EQ(header(ra, "x-ratelimit-remaining-requests"), "998");
    EXPECT_EQ(header(ra, "x-ratelimit-remaining-tokens"), "4980");
    EXPECT_EQ(header(ra, "x-ratelimit-reset-requests"), "1.500s");
    EXPECT_EQ(header(ra, "x-ratelimit-reset-tokens"), "1.500s");
    EXPECT_EQ(header(ra, "x-ratelimit-limit-tokens-prompt"), "<absent>"); // no fireworks
    EXPECT_EQ(header(ra, "fireworks-prompt-tokens"), "<absent>");
    r.at(1750ms);
    const rt::llm_response rb = r.sim.collect(b);
    EXPECT_EQ(header(rb, "x-ratelimit-reset-tokens"), "250ms");
    EXPECT_EQ(header(rb, "x-ratelimit-reset-requests"), "250ms");
    EXPECT_EQ(header(rb, "retry-after-ms"), "<absent>");
}

// Go durations are rounded up to whole milliseconds everywhere: 1.0004 s is "1.001s", 1 ns
// "1ms". With a 2 s window the entries of 0 leave at 2 s.
TEST(SimulatorHeaders, openai_resets_round_up_to_whole_milliseconds) {
    rt::simulator_config c = small_config();
    c.window = 2s;
    c.headers = rt::header_style::openai;
    rig r(c);
    const sim_t::ticket a = r.sim.submit(prompt(10));
    const sim_t::ticket b = r.sim.submit(prompt(10));
    r.at(999'600'000ns); // 1.0004 s before 2 s
    const rt::llm_response ra = r.sim.collect(a);
    EXPECT_EQ(header(ra, "x-ratelimit-reset-tokens"), "1.001s");
    EXPECT_EQ(header(ra, "x-ratelimit-reset-requests"), "1.001s");
    r.at(2s - 1ns);
    const rt::llm_response rb = r.sim.collect(b);
    EXPECT_EQ(header(rb, "x-ratelimit-reset-tokens"), "1ms");
    EXPECT_EQ(header(rb, "x-ratelimit-reset-requests"), "1ms");
}

// The formatting itself: "0s" for nothing, milliseconds below a second, seconds with three
// decimals from a second on — after rounding up.
TEST(SimulatorHeaders, go_duration_format) {
    using rt::sim_detail::go_duration;
    EXPECT_EQ(go_duration(0), "0s");
    EXPECT_EQ(go_duration(-5), "0s");
    EXPECT_EQ(go_duration(1), "1ms");
    EXPECT_EQ(go_duration(1'000'000), "1ms");
    EXPECT_EQ(go_duration(1'000'001), "2ms");
    EXPECT_EQ(go_duration(999'000'000), "999ms");
    EXPECT_EQ(go_duration(999'000'001), "1.000s");
    EXPECT_EQ(go_duration(1'000'000'000), "1.000s");
    EXPECT_EQ(go_duration(1'000'400'000), "1.001s");
    EXPECT_EQ(go_duration(61'500'000'000), "61.500s");
}

/// Parses "YYYY-MM-DDTHH:MM:SSZ".
std::chrono::system_clock::time_point parse_rfc3339(const std::string& s) {
    int y = 0;
    unsigned mo = 0, d = 0, h = 0, mi = 0, se = 0;
    EXPECT_EQ(std::sscanf(s.c_str(), "%d-%u-%uT%u:%u:%uZ", &y, &mo, &d, &h, &mi, &se), 6) << s;
    const std::chrono::sys_days day{std::chrono::year{y} / std::chrono::month{mo} /
                                    std::chrono::day{d}};
    return day + std::chrono::hours(h) + std::chrono::minutes(mi) + std::chrono::seconds(se);
}

// Anthropic: requests/tokens/input-tokens/output-tokens = requests/total/uncached/generated;
// resets are RFC 3339 instants of the wall clock, the time until the window is free ahead.
TEST(SimulatorHeaders, anthropic_names_values_and_rfc3339_resets) {
    rt::simulator_config c = small_config();
    c.start = {1'000, 400, 300, 200};
    c.cache_hit = 0.5;
    c.headers = rt::header_style::anthropic;
    rig r(c);
    const auto wall_before =
        std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
    const rt::llm_response resp = r.run(prompt(100, 20)); // collected at 400 ms
    const auto wall_after = std::chrono::system_clock::now();
    EXPECT_EQ(resp.status, 200);
    EXPECT_EQ(header(resp, "anthropic-ratelimit-requests-limit"), "1000");
    EXPECT_EQ(header(resp, "anthropic-ratelimit-requests-remaining"), "999");
    EXPECT_EQ(header(resp, "anthropic-ratelimit-tokens-limit"), "400");
    EXPECT_EQ(header(resp, "anthropic-ratelimit-tokens-remaining"), "300");
    EXPECT_EQ(header(resp, "anthropic-ratelimit-input-tokens-limit"), "300");
    EXPECT_EQ(header(resp, "anthropic-ratelimit-input-tokens-remaining"), "250");
    EXPECT_EQ(header(resp, "anthropic-ratelimit-output-tokens-limit"), "200");
    EXPECT_EQ(header(resp, "anthropic-ratelimit-output-tokens-remaining"), "180");
    EXPECT_EQ(header(resp, "x-ratelimit-limit-tokens-prompt"), "<absent>");
    // YYYY-MM-DDTHH:MM:SSZ (checked by hand: std::regex trips GCC 12's
    // -Wmaybe-uninitialized under the sanitizers).
    auto rfc3339 = [](const std::string& v) {
        static constexpr std::string_view shape = "dddd-dd-ddTdd:dd:ddZ";
        if (v.size() != shape.size())
            return false;
        for (std::size_t i = 0; i < v.size(); ++i)
            if (shape[i] == 'd' ? !std::isdigit(static_cast<unsigned char>(v[i]))
                                : v[i] != shape[i])
                return false;
        return true;
    };
    for (const char* name :
         {"anthropic-ratelimit-requests-reset", "anthropic-ratelimit-tokens-reset",
          "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-reset"}) {
        const std::string v = header(resp, name);
        EXPECT_TRUE(rfc3339(v)) << name << ": " << v;
        // Everything was used at or after 0 and is free 60 s later: ceil(≤ 60 s) = 60 s.
        const auto reset = parse_rfc3339(v);
        EXPECT_GE(reset, wall_before + 59s) << name << ": " << v;
        EXPECT_LE(reset, wall_after + 60s) << name << ": " << v;
    }
}

// header_style::none: no rate-limit headers, except retry-after on a 429.
TEST(SimulatorHeaders, none_sends_only_retry_after_on_429) {
    rt::simulator_config c = small_config();
    c.headers = rt::header_style::none;
    rig r(c);
    const rt::llm_response ok = r.run(prompt(100));
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.headers.size(), 0u);
    const rt::llm_response over = r.run(prompt(1)); // at 200 ms, collected at 205 ms
    EXPECT_EQ(over.status, 429);
    using hv = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(headers_of(over), (hv{{"retry-after", "60"}})); // 59.795 s, rounded up
    const rt::llm_response large = r.run(prompt(101));
    EXPECT_EQ(large.status, 400);
    EXPECT_EQ(large.headers.size(), 0u);
}

// --- adaptation ------------------------------------------------------------------------------

rt::simulator_config adaptive_config() {
    rt::simulator_config c;
    c.start = {1'000, 1'000, 1'000, 1'000};
    c.lower = rt::llm_limits{1'000, 500, 500, 500};
    c.upper = rt::llm_limits{1'000, 1'100, 1'100, 1'100};
    return c;
}

// Saturated: each 1 s tick multiplies by 1.5^(1/60) ≈ 1.0067806 (rounded), to the upper
// bound and no further; requests stay. Born at 0 (the first call), the account is first
// judged at 60 s: idle until 45 s, it does not shrink before; 1000 at 45 s (in the window until
// 105 s) is 100 % of 1000, still ≥ 80 % of 1100.
TEST(SimulatorAdaptation, saturated_usage_grows_to_the_upper_bound) {
    rig r(adaptive_config());
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000})); // born at 0
    r.at(45s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000}));
    EXPECT_EQ(r.verdict(prompt(1'000)), 200); // 100 % of total and uncached
    r.at(60s - 1ns);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000}));
    r.at(60s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'007, 1'007, 1'007}));
    r.at(61s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'014, 1'014, 1'014}));
    r.at(73s); // 14 ticks: 60 … 73 s
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'098, 1'098, 1'098}));
    r.at(74s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'100, 1'100, 1'100}));
    r.at(100s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'100, 1'100, 1'100}));
    // Growth is enforced: 100 more fit now.
    EXPECT_EQ(r.verdict(prompt(100)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
}

// The result does not depend on how often the simulator is called.
TEST(SimulatorAdaptation, one_late_call_equals_many) {
    rig a(adaptive_config());
    rig b(adaptive_config());
    EXPECT_EQ(a.sim.limits(), b.sim.limits()); // both born at 0
    a.at(45s);
    b.at(45s);
    EXPECT_EQ(a.verdict(prompt(1'000)), 200);
    EXPECT_EQ(b.verdict(prompt(1'000)), 200);
    for (int s = 46; s <= 73; ++s) {
        a.at(std::chrono::seconds(s));
        static_cast<void>(a.sim.limits());
    }
    b.at(73s);
    EXPECT_EQ(a.sim.limits(), b.sim.limits());
    EXPECT_EQ(b.sim.limits().total_prompt, 1'098u);
}

// Without usage the token limits shrink by 0.8^(1/60) ≈ 0.9962878 per tick toward the lower
// bound — from the first tick at which the account is one window (60 s) old.
TEST(SimulatorAdaptation, idle_limits_shrink_to_the_lower_bound) {
    rig r(adaptive_config());
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000})); // born at 0
    r.at(1s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000}));
    r.at(60s - 1ns);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000}));
    r.at(60s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 996, 996, 996}));
    r.at(61s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 992, 992, 992}));
    r.at(360s); // 1000 × 0.8^5 ≈ 328 < 500
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 500, 500, 500}));
}

// A short window: the account is judged from its first window (2 s) on, every second.
TEST(SimulatorAdaptation, first_decision_after_one_short_window) {
    rt::simulator_config c = adaptive_config();
    c.window = 2s;
    rig r(c);
    EXPECT_EQ(r.verdict(prompt(1'000)), 200); // born at 0; in the window until 2 s
    r.at(1s);                                 // 1 s old: no decision though saturated
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000}));
    r.at(2s); // 2 s old: the 1000 of 0 left the window: idle, shrinks
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 996, 996, 996}));
    EXPECT_EQ(r.verdict(prompt(996)), 200); // saturated again
    r.at(3s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'003, 1'003, 1'003})); // 996 × 1.00678
}

// Between shrink_below and grow_above the limits hold; when the usage leaves the window
// (at exactly its time + 60 s) they shrink.
TEST(SimulatorAdaptation, moderate_usage_holds_until_it_leaves_the_window) {
    rig r(adaptive_config());
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000})); // born at 0
    r.at(30s);
    EXPECT_EQ(r.verdict(prompt(600)), 200); // 60 % of the limit
    r.at(90s - 1ns);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000}));
    r.at(90s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 996, 996, 996}));
}

// The usage share is window usage / limit, however young the account: 600 in the first
// second is 60 % (it would be far above 80 % of what 1 s of the limit allowed), so the limits
// hold at 60 s; the 600 of 0.5 s leave the window at 60.5 s, and the tick at 61 s shrinks.
TEST(SimulatorAdaptation, usage_share_is_window_usage_over_the_limit) {
    rig r(adaptive_config());
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000})); // born at 0
    r.at(500ms);
    EXPECT_EQ(r.verdict(prompt(600)), 200);
    r.at(60s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000}));
    r.at(61s - 1ns);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 1'000, 1'000, 1'000}));
    r.at(61s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 996, 996, 996}));
}

// The thresholds are inclusive where documented: "at least grow_above" grows (800 of 1000),
// "below shrink_below" shrinks (499), and 500 … 799 hold.
TEST(SimulatorAdaptation, thresholds_are_exact) {
    const std::pair<std::uint64_t, std::uint64_t> cases[] = {
        {800, 1'007}, {799, 1'000}, {500, 1'000}, {499, 996}};
    for (const auto& [used, expected] : cases) {
        rig r(adaptive_config());
        static_cast<void>(r.sim.limits()); // born at 0
        r.at(30s);
        EXPECT_EQ(r.verdict(prompt(used)), 200);
        r.at(60s);
        EXPECT_EQ(r.sim.limits().total_prompt, expected) << used;
    }
}

// The three token limits move together, by the busiest metric, keeping their ratio.
TEST(SimulatorAdaptation, token_limits_move_together) {
    rt::simulator_config c;
    c.start = {1'000, 2'000, 1'000, 500};
    c.lower = rt::llm_limits{1'000, 1'000, 500, 250};
    c.upper = rt::llm_limits{1'000, 4'000, 2'000, 1'000};
    c.cache_hit = 0.5;
    rig r(c);
    static_cast<void>(r.sim.limits()); // born at 0
    r.at(30s);
    EXPECT_EQ(r.verdict(prompt(2'000)), 200); // total 2000/2000, uncached 1000/1000
    r.at(60s - 1ns);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 2'000, 1'000, 500}));
    r.at(60s);
    // 2000 × 1.0067806 = 2013.56, 1006.78, 503.39: rounded.
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 2'014, 1'007, 503}));
}

// set_bounds clamps the limits in force into the new bounds; bad bounds throw.
TEST(SimulatorAdaptation, set_bounds_clamps) {
    rig r(small_config());
    EXPECT_EQ(r.sim.bounds(), std::make_pair(small_config().start, small_config().start));
    const rt::llm_limits lo{1'000, 150, 150, 150}, hi{1'000, 300, 300, 300};
    r.sim.set_bounds(lo, hi);
    EXPECT_EQ(r.sim.limits(), lo);
    EXPECT_EQ(r.sim.bounds(), std::make_pair(lo, hi));
    r.sim.set_bounds({1'000, 10, 10, 10}, {1'000, 50, 60, 70});
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{1'000, 50, 60, 70}));
    EXPECT_EQ(r.verdict(prompt(51)), 400);
    EXPECT_TRUE(contains(config_error_of([&] {
                             r.sim.set_bounds({1'000, 20, 10, 10}, {1'000, 10, 10, 10});
                         }),
                         "metric 1"));
    EXPECT_NE(config_error_of([&] {
                  r.sim.set_bounds({0, 10, 10, 10}, {1'000, 10, 10, 10});
              }),
              "<none>");
}

// set_limits sets the limits in force (enforced at once) and widens the bounds.
TEST(SimulatorAdaptation, set_limits_enforces_and_widens_bounds) {
    rig r(small_config());
    r.sim.set_limits({2'000, 50, 60, 70});
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{2'000, 50, 60, 70}));
    EXPECT_EQ(r.sim.bounds(), std::make_pair(rt::llm_limits{1'000, 50, 60, 70},
                                             rt::llm_limits{2'000, 100, 100, 100}));
    EXPECT_EQ(r.verdict(prompt(51)), 400);
    EXPECT_EQ(r.verdict(prompt(50)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
    // At 60 s the 50 leave and the first decision (idle) would shrink, but 50, 60, 70 are the
    // lower bounds (and × 0.99629 rounds back to them).
    r.at(60s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{2'000, 50, 60, 70}));
    EXPECT_EQ(r.verdict(prompt(50)), 200);
    // Saturated (50/50 … 50/59): small limits grow by at least 1 a tick (50 × 1.0068 rounds
    // to 50), the three together; requests stay. Ticks at 61 … 70 s.
    r.at(70s - 1ns);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{2'000, 59, 69, 79}));
    r.at(70s);
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{2'000, 60, 70, 80}));
}

// set_limits validates every limit before it changes anything: a 0 anywhere throws and
// leaves the limits, the bounds and the enforcement as they were.
TEST(SimulatorAdaptation, set_limits_validates_before_changing_anything) {
    rig r(small_config());
    r.sim.set_limits({2'000, 50, 60, 70});
    const auto bounds =
        std::make_pair(rt::llm_limits{1'000, 50, 60, 70}, rt::llm_limits{2'000, 100, 100, 100});
    EXPECT_TRUE(contains(config_error_of([&] {
                             r.sim.set_limits({5, 5, 0, 5});
                         }),
                         "limit of metric 2 is 0"));
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{2'000, 50, 60, 70}));
    EXPECT_EQ(r.sim.bounds(), bounds);
    EXPECT_TRUE(contains(config_error_of([&] {
                             r.sim.set_limits({5'000, 5'000, 5'000, 0});
                         }),
                         "limit of metric 3 is 0"));
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{2'000, 50, 60, 70}));
    EXPECT_EQ(r.sim.bounds(), bounds);
    EXPECT_TRUE(contains(config_error_of([&] {
                             r.sim.set_limits({0, 1, 1, 1});
                         }),
                         "limit of metric 0 is 0"));
    EXPECT_EQ(r.sim.limits(), (rt::llm_limits{2'000, 50, 60, 70}));
    EXPECT_EQ(r.sim.bounds(), bounds);
    // Enforced as before: 50 fit (not 5), 51 never.
    EXPECT_EQ(r.verdict(prompt(51)), 400);
    EXPECT_EQ(r.verdict(prompt(50)), 200);
    EXPECT_EQ(r.verdict(prompt(1)), 429);
}

// Accounts and models are separate.
TEST(SimulatorAdaptation, accounts_are_independent) {
    rig r(small_config());
    rt::llm_request a = prompt(100);
    rt::llm_request b = prompt(100);
    b.account = "other";
    rt::llm_request d = prompt(100);
    d.model = "other-model";
    EXPECT_EQ(r.verdict(a), 200);
    EXPECT_EQ(r.verdict(a), 429);
    EXPECT_EQ(r.verdict(b), 200);
    EXPECT_EQ(r.verdict(d), 200);
    r.sim.set_limits({1'000, 200, 200, 200}, "other");
    EXPECT_EQ(r.sim.limits(), small_config().start);
    EXPECT_EQ(r.verdict(b), 200);
    EXPECT_EQ(r.sim.counters("other").ok, 2u);
    EXPECT_EQ(r.sim.counters().ok, 1u);
}

// scaled() multiplies the token counts (rounded, at least 1), requests only if asked.
TEST(SimulatorLimits, scaled) {
    const rt::llm_limits l{6'000, 3'600'000, 900'000, 36'000};
    EXPECT_EQ(l.scaled(0.5), (rt::llm_limits{6'000, 1'800'000, 450'000, 18'000}));
    EXPECT_EQ(l.scaled(0.5, true), (rt::llm_limits{3'000, 1'800'000, 450'000, 18'000}));
    EXPECT_EQ(l.scaled(0.0), (rt::llm_limits{6'000, 1, 1, 1}));
}

// --- determinism -----------------------------------------------------------------------------

struct trace {
    std::vector<int> status;
    std::vector<std::optional<rategov::cost<rt::llm_metrics>>> usage;
    std::vector<std::vector<std::pair<std::string, std::string>>> headers;
    std::vector<time_point> ready;
    rt::llm_counters counters;
    rt::llm_limits limits, used;
};

trace drive(const rt::simulator_config& c) {
    rig r(c);
    trace out;
    std::vector<sim_t::ticket> open;
    for (int k = 0; k < 400; ++k) {
        r.clock.advance(std::chrono::milliseconds((k * 37) % 250));
        rt::llm_request q;
        q.prompt_tokens = static_cast<std::uint64_t>((k * 131) % 900 + 1);
        q.max_tokens = 64;
        q.output_tokens = static_cast<std::uint64_t>((k * 17) % 90);
        q.priority = k % 5 == 0;
        q.account = k % 3 == 0 ? "b" : "account";
        open.push_back(r.sim.submit(q));
        out.ready.push_back(open.back().ready_at);
        // Collect whatever is ready.
        for (auto it = open.begin(); it != open.end();) {
            if (it->ready_at <= r.clock.now()) {
                const rt::llm_response resp = r.sim.collect(*it);
                out.status.push_back(resp.status);
                out.usage.push_back(resp.usage);
                out.headers.push_back(headers_of(resp));
                it = open.erase(it);
            } else {
                ++it;
            }
        }
    }
    out.counters = r.sim.counters();
    out.limits = r.sim.limits();
    out.used = r.sim.used();
    return out;
}

// The same config and calls give identical responses, headers and counters.
TEST(SimulatorDeterminism, same_calls_same_results) {
    rt::simulator_config c;
    c.start = {600, 6'000, 4'000, 2'000};
    c.lower = rt::llm_limits{600, 3'000, 2'000, 1'000};
    c.upper = rt::llm_limits{600, 12'000, 8'000, 4'000};
    c.mode = rt::enforcement::bucket;
    c.bucket_burst = 5s;
    c.shed_rate = 0.1;
    c.priority_shed_factor = 0.5;
    c.priority_reserve = 0.1;
    c.cache_hit = 0.3;
    c.headers = rt::header_style::fireworks | rt::header_style::openai;
    c.seed = 99;
    const trace a = drive(c);
    const trace b = drive(c);
    EXPECT_EQ(a.status, b.status);
    EXPECT_EQ(a.usage, b.usage);
    EXPECT_EQ(a.headers, b.headers);
    EXPECT_EQ(a.ready, b.ready);
    EXPECT_EQ(a.counters.submitted, b.counters.submitted);
    EXPECT_EQ(a.counters.ok, b.counters.ok);
    EXPECT_EQ(a.counters.over_limit, b.counters.over_limit);
    EXPECT_EQ(a.counters.shed, b.counters.shed);
    EXPECT_EQ(a.counters.too_large, b.counters.too_large);
    EXPECT_EQ(a.counters.served, b.counters.served);
    EXPECT_EQ(a.limits, b.limits);
    EXPECT_EQ(a.used, b.used);
    // The run is not trivial: every outcome occurred.
    EXPECT_GT(count_of(a.status, 200), 0);
    EXPECT_GT(count_of(a.status, 429), 0);
    EXPECT_GT(count_of(a.status, 503), 0);
}

// --- configuration errors --------------------------------------------------------------------

std::string construct_error(const rt::simulator_config& c) {
    manual_clock clock;
    return config_error_of([&] { sim_t sim(clock, c); });
}

// Each bad value throws config_error naming it.
TEST(SimulatorConfig, bad_values_are_named) {
    rt::simulator_config c = small_config();
    c.cache_hit = 1.5;
    EXPECT_TRUE(contains(construct_error(c), "cache_hit 1.5")) << construct_error(c);

    c = small_config();
    c.start.uncached_prompt = 0;
    EXPECT_TRUE(contains(construct_error(c), "start limit of metric 2 is 0")) << construct_error(c);

    c = small_config();
    c.lower = rt::llm_limits{1'000, 200, 100, 100};
    EXPECT_TRUE(contains(construct_error(c), "metric 1")) << construct_error(c);
    EXPECT_TRUE(contains(construct_error(c), "200, 100, 100")) << construct_error(c);

    c = small_config();
    c.window = 0s;
    EXPECT_TRUE(contains(construct_error(c), "window 0")) << construct_error(c);

    c = small_config();
    c.shrink_below = 0.9;
    EXPECT_TRUE(contains(construct_error(c), "shrink_below 0.9")) << construct_error(c);
    EXPECT_TRUE(contains(construct_error(c), "grow_above 0.8")) << construct_error(c);

    c = small_config();
    c.shed_windows = {{20s, 10s, 1.0}};
    EXPECT_TRUE(contains(construct_error(c), "shed window")) << construct_error(c);

    c = small_config();
    c.reject_latency = -1ns;
    EXPECT_TRUE(contains(construct_error(c), "negative")) << construct_error(c);

    EXPECT_EQ(construct_error(small_config()), "<none>");
    EXPECT_EQ(construct_error({}), "<none>");
}

// collect throws for an unknown ticket, one already collected, and one not ready yet.
TEST(SimulatorConfig, collect_rejects_bad_tickets) {
    rig r(small_config());
    const sim_t::ticket t = r.sim.submit(prompt(10, 5)); // ready at 250 ms
    EXPECT_TRUE(
        contains(config_error_of([&] { static_cast<void>(r.sim.collect(t)); }), "not ready"));
    r.at(250ms - 1ns);
    EXPECT_TRUE(
        contains(config_error_of([&] { static_cast<void>(r.sim.collect(t)); }), "not ready"));
    r.at(250ms);
    EXPECT_EQ(r.sim.collect(t).status, 200);
    EXPECT_TRUE(contains(config_error_of([&] { static_cast<void>(r.sim.collect(t)); }),
                         "unknown or collected"));
    sim_t::ticket forged = t;
    forged.id = 12'345;
    EXPECT_TRUE(contains(config_error_of([&] { static_cast<void>(r.sim.collect(forged)); }),
                         "unknown or collected"));
    EXPECT_EQ(r.sim.outstanding(), 0u);
}

// --- end to end: rategov::call() against the simulator --------------------------------------

using gov_t = rategov::governor<rt::llm_metrics, manual_clock>;
using e2e_opts_t = rategov::call_options<gov_t, fb::fireworks_profile<rt::llm_metrics>>;

// The client loop with the fireworks profile and adaptive limits completes every request
// against an adapting, shedding simulator (retrying the 503s); the simulator's counters
// match what the client saw, and the client learned the simulator's generated limit.
TEST(SimulatorEndToEnd, call_against_the_simulator) {
    rt::simulator_config c;
    c.start = {600, 120'000, 60'000, 6'000};
    c.lower = rt::llm_limits{600, 60'000, 30'000, 3'000};
    c.upper = rt::llm_limits{600, 240'000, 120'000, 12'000};
    c.shed_rate = 0.1; // some 503s, retried by the client
    c.seed = 3;
    manual_clock clock{t0, rt::wait_mode::advance};
    sim_t sim(clock, c);
    gov_t gov(clock, rategov::per_minute(600), rategov::per_minute(120'000),
              rategov::per_minute(60'000), rategov::per_minute(36'000));
    rategov::adaptive_limits<gov_t> adaptive(gov);
    adaptive.bound<m::generated>(
        {rategov::per_minute(1'000), rategov::per_minute(36'000), rategov::per_minute(60'000)});

    int sent = 0, over = 0, shed = 0;
    rategov::cost<rt::llm_metrics> used_seen{};
    auto transport = [&](const rt::llm_request& q) {
        ++sent;
        rt::llm_response resp = sim.answer(q);
        over += resp.status == 429 ? 1 : 0;
        shed += resp.status == 503 ? 1 : 0;
        if (resp.usage)
            for (std::size_t i = 0; i < 4; ++i)
                used_seen[i] += (*resp.usage)[i];
        return resp;
    };

    constexpr int calls = 60;
    unsigned attempts = 0;
    for (int k = 0; k < calls; ++k) {
        rt::llm_request q;
        q.prompt_tokens = 2'000;
        q.max_tokens = 400;
        q.output_tokens = 300 + static_cast<std::uint64_t>(k % 5) * 20;
        const rategov::cost<rt::llm_metrics> estimate{
            rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{2'000},
            rategov::amount<m::uncached_prompt>{2'000}, rategov::amount<m::generated>{400}};
        e2e_opts_t o;
        o.seed = 42;
        o.adaptive = &adaptive;
        auto res = rategov::call(gov, q, estimate, transport, o);
        ASSERT_EQ(res.status, rategov::call_status::success) << "call " << k;
        ASSERT_TRUE(res.response.has_value());
        EXPECT_EQ(res.response->status, 200);
        attempts += res.attempts;
    }
    const rt::llm_counters k = sim.counters();
    EXPECT_EQ(k.ok, static_cast<std::uint64_t>(calls));
    EXPECT_EQ(k.submitted, static_cast<std::uint64_t>(sent));
    EXPECT_EQ(k.submitted, static_cast<std::uint64_t>(attempts));
    EXPECT_EQ(k.over_limit, static_cast<std::uint64_t>(over));
    EXPECT_EQ(k.shed, static_cast<std::uint64_t>(shed));
    EXPECT_GT(shed, 0); // the retry path was taken
    EXPECT_EQ(k.submitted, static_cast<std::uint64_t>(calls + over + shed));
    EXPECT_EQ(k.too_large, 0u);
    for (std::size_t i = 0; i < 4; ++i)
        EXPECT_EQ(k.served[i], used_seen[i]) << "metric " << i;
    EXPECT_EQ(k.served.requests, static_cast<std::uint64_t>(calls));
    EXPECT_EQ(k.served.total_prompt, 2'000u * calls);
    // The client learned the simulator's generated limit (reported per second).
    EXPECT_EQ(adaptive.current(3).count(), sim.limits().generated / 60 * 60);
    EXPECT_EQ(sim.outstanding(), 0u);
}

} // namespace

// --- Retry-After is never early (found in review) ----------------------------------------------

namespace {

/// Submits `first` at 0 and then `second` at `at` on a fresh simulator: the second's response.
std::pair<rt::llm_response, std::chrono::nanoseconds>
second_at(const rt::simulator_config& cfg, const std::vector<rt::llm_request>& first,
          const rt::llm_request& second, std::chrono::nanoseconds at) {
    rt::manual_clock clock;
    rt::provider_simulator sim(clock, cfg);
    for (const rt::llm_request& r : first)
        sim.submit(r);
    clock.set(rt::manual_clock::time_point(at));
    const auto t = sim.submit(second);
    clock.set(t.ready_at);
    return {sim.collect(t), clock.now().time_since_epoch()};
}

/// Resubmitting at the advertised Retry-After (ms) is admitted.
void expect_retry_after_is_not_early(const rt::simulator_config& cfg,
                                     const std::vector<rt::llm_request>& first,
                                     const rt::llm_request& second, std::chrono::nanoseconds at) {
    const auto [refused, when] = second_at(cfg, first, second, at);
    ASSERT_EQ(refused.status, 429);
    const auto wait = std::chrono::milliseconds(std::stoll(header(refused, "retry-after-ms")));
    EXPECT_EQ(second_at(cfg, first, second, when + wait).first.status, 200)
        << "refused again at the advertised " << (when + wait).count() << " ns";
}

rt::llm_request asking(std::uint64_t max_tokens, std::uint64_t output) {
    rt::llm_request r;
    r.prompt_tokens = 10;
    r.max_tokens = max_tokens;
    r.output_tokens = output;
    return r;
}

} // namespace

TEST(SimulatorRetryAfter, AHoldReleasedAfterTheWindowIsWaitedFor) {
    // 30000 held at 0 by a request that completes at 80.2 s (8000 generated: 22000 given
    // back then); 29500 asked at 10 s can only come at 80.2 s.
    rt::simulator_config cfg;
    cfg.headers = rt::header_style::openai;
    expect_retry_after_is_not_early(cfg, {asking(30'000, 8'000)}, asking(29'500, 10), 10s);
    const auto [refused, when] = second_at(cfg, {asking(30'000, 8'000)}, asking(29'500, 10), 10s);
    EXPECT_EQ(when + std::chrono::milliseconds(std::stoll(header(refused, "retry-after-ms"))),
              80'200ms);
}

TEST(SimulatorRetryAfter, TokensStillToComeAreWaitedForWithoutHolds) {
    // Without holds, 7 requests generating 20000 each (for 200 s) keep the generated usage
    // at the limit long after 70 s: Retry-After must count the tokens still to come.
    for (const rt::enforcement mode : {rt::enforcement::window, rt::enforcement::bucket}) {
        rt::simulator_config cfg;
        cfg.headers = rt::header_style::openai;
        cfg.hold_max_tokens = false;
        cfg.mode = mode;
        cfg.bucket_burst = 1s; // produced at 700/s against 600/s: the bucket fills
        const std::vector<rt::llm_request> seven(7, asking(20'000, 20'000));
        expect_retry_after_is_not_early(cfg, seven, asking(100, 10), 70s);
    }
}

TEST(SimulatorConfig, ALowerBoundOfZeroAndAnEndlessAdaptationPeriodAreRefused) {
    rt::simulator_config c;
    c.lower = rt::llm_limits{6'000, 0, 0, 0};
    EXPECT_TRUE(contains(construct_error(c), "lower limit of metric 1 is 0")) << construct_error(c);
    rt::simulator_config d;
    d.adapt_every = std::chrono::nanoseconds::max();
    EXPECT_TRUE(contains(construct_error(d), "adapt_every")) << construct_error(d);
    rt::simulator_config e;
    e.per_output_token = 11s;
    EXPECT_TRUE(contains(construct_error(e), "latencies")) << construct_error(e);
}
