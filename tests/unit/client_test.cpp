// The client loop (`call()` and `call_machine`): every outcome path, settlement of the
// reservation, server hints, the retry budget, deadlines, cancellation, throwing transports,
// the non-blocking machine in an event loop, attempt information, and feedback. Everything
// runs in virtual time (a manual clock in wait_mode::advance, or wait_mode::block driven by
// a second thread) with fake transports and fixed jitter seeds: no real sleep anywhere.
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <rategov/backoff/backoff.hpp>
#include <rategov/backoff/retry_budget.hpp>
#include <rategov/client/call.hpp>
#include <rategov/client/transport.hpp>
#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;

namespace m = rategov::metric;
namespace fb = rategov::feedback;
namespace bo = rategov::backoff;
using rategov::amount;
using rategov::call_status;
using rategov::quota;
using rategov::settle;
using manual_clock = rategov::testing::manual_clock;
using wait_mode = rategov::testing::wait_mode;
using time_point = manual_clock::time_point;

// requests: 10/s (burst 10); total_prompt: 1000/s (burst 1000); generated: 500/s (burst 500).
using llm = rategov::metrics<m::requests, m::total_prompt, m::generated>;
using gov_t = rategov::governor<llm, manual_clock>;
using cost_t = rategov::cost<llm>;
using resp_t = rategov::response<llm>;
using avail_t = std::array<std::uint64_t, 3>;

constexpr std::size_t i_req = llm::index_of<m::requests>;
constexpr std::size_t i_prompt = llm::index_of<m::total_prompt>;
constexpr std::size_t i_gen = llm::index_of<m::generated>;

const quota q_req = rategov::per_second(10);
const quota q_prompt = rategov::per_second(1000);
const quota q_gen = rategov::per_second(500);
const avail_t full{10, 1000, 500};

/// The time tests start at (not 0, so that a deadline in the past is representable).
const time_point t0 = time_point(100s);

struct request_t {
    int id = 0;
};
const request_t req{7};

using opts_t = rategov::call_options<gov_t>; // retry_after_profile, any_policy
using openai_opts_t = rategov::call_options<gov_t, fb::openai_profile<llm>>;
using fireworks_opts_t = rategov::call_options<gov_t, fb::fireworks_profile<llm>>;

cost_t make(std::uint64_t r, std::uint64_t p, std::uint64_t g) {
    return cost_t{amount<m::requests>{r}, amount<m::total_prompt>{p}, amount<m::generated>{g}};
}
const cost_t estimate = make(1, 100, 50);

avail_t minus(const avail_t& a, const cost_t& c) {
    return {a[0] - c[0], a[1] - c[1], a[2] - c[2]};
}

resp_t reply(int status) {
    resp_t r;
    r.status = status;
    return r;
}
resp_t reply(int status, std::initializer_list<std::pair<const char*, const char*>> headers) {
    resp_t r = reply(status);
    for (const auto& [n, v] : headers)
        r.headers.add(n, v);
    return r;
}
resp_t reply_used(int status, const cost_t& usage) {
    resp_t r = reply(status);
    r.usage = usage;
    return r;
}

/// Options with a fixed jitter seed (every test is repeatable).
template <class O = opts_t>
O seeded() {
    O o;
    o.seed = 42;
    return o;
}

/// A fake transport: answers attempt n (from 1) with `script(n)`, counts the calls, and
/// records the attempt information and the virtual time of each send.
struct fake_transport {
    std::function<resp_t(unsigned)> script;
    const manual_clock* clock = nullptr;
    unsigned calls = 0;
    std::vector<rategov::attempt_info<time_point>> infos{};
    std::vector<time_point> sent_at{};

    resp_t operator()(const request_t& r, const rategov::attempt_info<time_point>& info) {
        EXPECT_EQ(r.id, req.id);
        ++calls;
        infos.push_back(info);
        if (clock != nullptr)
            sent_at.push_back(clock->now());
        return script(calls);
    }
};

/// Statuses in order; the last repeats.
std::function<resp_t(unsigned)> statuses(std::vector<int> s) {
    return [s = std::move(s)](unsigned n) {
        const std::size_t i = n - 1 < s.size() ? n - 1 : s.size() - 1;
        return reply(s[i]);
    };
}

struct fixture : ::testing::Test {
    manual_clock clock{t0, wait_mode::advance};
    gov_t gov{clock, q_req, q_prompt, q_gen};

    [[nodiscard]] std::chrono::nanoseconds elapsed() const { return clock.now() - t0; }
};

std::string message_of(std::exception_ptr e) {
    if (!e)
        return "<none>";
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "<not a std::exception>";
    }
}

// --- 1. every outcome path of call() --------------------------------------------------------

using CallOutcome = fixture;

TEST_F(CallOutcome, SuccessCommitsTheReportedUsageAndRefundsTheSurplus) {
    const cost_t used = make(1, 37, 12);
    fake_transport t{[&](unsigned) { return reply_used(200, used); }};
    auto r = rategov::call(gov, req, estimate, t, seeded());
    EXPECT_TRUE(static_cast<bool>(r));
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(t.calls, 1u);
    ASSERT_TRUE(r.last_outcome.has_value());
    EXPECT_EQ(*r.last_outcome, fb::outcome::success);
    ASSERT_TRUE(r.response.has_value());
    EXPECT_EQ(r.response->status, 200);
    EXPECT_FALSE(r.error);
    EXPECT_EQ(gov.available<m::requests>(), 10u - 1u);
    EXPECT_EQ(gov.available<m::total_prompt>(), 1000u - 37u);
    EXPECT_EQ(gov.available<m::generated>(), 500u - 12u);
    EXPECT_EQ(elapsed(), 0ns);
    EXPECT_EQ(r.waited, 0ns);
    EXPECT_EQ(r.backed_off, 0ns);
}

TEST_F(CallOutcome, SuccessAboveTheEstimateChargesTheDeficit) {
    const cost_t used = make(1, 300, 80);
    fake_transport t{[&](unsigned) { return reply_used(200, used); }};
    auto r = rategov::call(gov, req, estimate, t, seeded());
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(gov.availability(), minus(full, used));
}

TEST_F(CallOutcome, SuccessWithoutUsageKeepsTheEstimate) {
    fake_transport t{statuses({200})};
    auto r = rategov::call(gov, req, estimate, t, seeded());
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(gov.availability(), minus(full, estimate));
}

TEST_F(CallOutcome, TooManyRequestsThenOkSucceedsAfterTwoAttempts) {
    const cost_t used = make(1, 90, 40);
    fake_transport t{[&](unsigned n) { return n == 1 ? reply(429) : reply_used(200, used); }};
    auto r = rategov::call(gov, req, estimate, t, seeded());
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.attempts, 2u);
    EXPECT_EQ(t.calls, 2u);
    ASSERT_TRUE(r.last_outcome.has_value());
    EXPECT_EQ(*r.last_outcome, fb::outcome::success);
    // The 429 emptied the metrics the call uses: the retry had to wait for their tokens
    // (1 request at 10/s, 100 prompt at 1000/s, 50 generated at 500/s: 100 ms each).
    EXPECT_GE(elapsed(), 100ms);
    EXPECT_EQ(r.waited + r.backed_off, elapsed());
    EXPECT_LE(r.backed_off, 250ms); // full jitter, first retry: uniform [0, 250 ms]
}

TEST_F(CallOutcome, ServiceUnavailableEveryTimeExhaustsTheRetries) {
    fake_transport t{statuses({503})};
    auto o = seeded();
    o.backoff = bo::none{};
    o.max_attempts = 4;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_FALSE(static_cast<bool>(r));
    EXPECT_EQ(r.status, call_status::retries_exhausted);
    EXPECT_EQ(r.attempts, 4u);
    EXPECT_EQ(t.calls, 4u);
    ASSERT_TRUE(r.last_outcome.has_value());
    EXPECT_EQ(*r.last_outcome, fb::outcome::load_shed);
    ASSERT_TRUE(r.response.has_value());
    EXPECT_EQ(r.response->status, 503);
    EXPECT_EQ(gov.availability(), full); // every 503 refunded
}

TEST_F(CallOutcome, DefaultMaxAttemptsIsFive) {
    fake_transport t{statuses({503})};
    auto o = seeded();
    o.backoff = bo::none{};
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::retries_exhausted);
    EXPECT_EQ(r.attempts, 5u);
    EXPECT_EQ(t.calls, 5u);
}

TEST_F(CallOutcome, BadRequestIsRejectedAfterOneAttempt) {
    fake_transport t{statuses({400, 200})};
    auto r = rategov::call(gov, req, estimate, t, seeded());
    EXPECT_EQ(r.status, call_status::rejected);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(t.calls, 1u);
    ASSERT_TRUE(r.last_outcome.has_value());
    EXPECT_EQ(*r.last_outcome, fb::outcome::fatal);
    EXPECT_EQ(elapsed(), 0ns);
}

TEST_F(CallOutcome, InsufficientQuotaIsRejectedAfterOneAttempt) {
    fake_transport t{[](unsigned) {
        resp_t r = reply(429);
        r.error_code = "insufficient_quota";
        return r;
    }};
    auto r = rategov::call(gov, req, estimate, t, seeded<openai_opts_t>());
    EXPECT_EQ(r.status, call_status::rejected);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(t.calls, 1u);
    ASSERT_TRUE(r.last_outcome.has_value());
    EXPECT_EQ(*r.last_outcome, fb::outcome::quota_exhausted);
    EXPECT_EQ(gov.availability(), full); // rejected without usage: refunded
}

TEST_F(CallOutcome, ShouldRetryFalseOnAServerErrorIsRejected) {
    fake_transport t{[](unsigned n) {
        return n == 1 ? reply(500, {{"x-should-retry", "false"}}) : reply(200);
    }};
    auto r = rategov::call(gov, req, estimate, t, seeded<openai_opts_t>());
    EXPECT_EQ(r.status, call_status::rejected);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(t.calls, 1u);
    ASSERT_TRUE(r.last_outcome.has_value());
    EXPECT_EQ(*r.last_outcome, fb::outcome::retryable);
    // A 500 may have been counted: the estimate is kept (if_unknown = keep).
    EXPECT_EQ(gov.availability(), minus(full, estimate));
}

TEST_F(CallOutcome, ServerErrorIsRetried) {
    fake_transport t{statuses({500, 500, 200})};
    auto o = seeded();
    o.backoff = bo::none{};
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.attempts, 3u);
    EXPECT_EQ(t.calls, 3u);
}

TEST_F(CallOutcome, ServerErrorEveryTimeExhaustsTheRetries) {
    fake_transport t{statuses({500})};
    auto o = seeded();
    o.backoff = bo::none{};
    o.max_attempts = 3;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::retries_exhausted);
    EXPECT_EQ(r.attempts, 3u);
    ASSERT_TRUE(r.last_outcome.has_value());
    EXPECT_EQ(*r.last_outcome, fb::outcome::retryable);
}

TEST_F(CallOutcome, EstimateAboveABurstExceedsCapacityWithoutSending) {
    fake_transport t{statuses({200})};
    auto r = rategov::call(gov, req, make(1, 100, 501), t, seeded());
    EXPECT_EQ(r.status, call_status::exceeds_capacity);
    EXPECT_EQ(r.attempts, 0u);
    EXPECT_EQ(r.metric, i_gen);
    EXPECT_EQ(t.calls, 0u);
    EXPECT_FALSE(r.response.has_value());
    EXPECT_FALSE(r.last_outcome.has_value());
    EXPECT_EQ(gov.availability(), full);
}

TEST_F(CallOutcome, MetricIsTheNumberOfMetricsUnlessAMetricRefused) {
    // call_summary::metric: "For exceeds_capacity and deadline: the metric that refused
    // (else the number of metrics)".
    {
        fake_transport t{statuses({200})};
        auto r = rategov::call(gov, req, estimate, t, seeded());
        ASSERT_EQ(r.status, call_status::success);
        EXPECT_EQ(r.metric, llm::size);
    }
    {
        fake_transport t{statuses({400})};
        auto r = rategov::call(gov, req, estimate, t, seeded());
        ASSERT_EQ(r.status, call_status::rejected);
        EXPECT_EQ(r.metric, llm::size);
    }
    {
        // A deadline reached by a backoff: no metric refused.
        fake_transport t{statuses({503})};
        auto o = seeded();
        o.backoff = bo::constant(10s);
        o.deadline = clock.now() + 1s;
        auto r = rategov::call(gov, req, estimate, t, o);
        ASSERT_EQ(r.status, call_status::deadline);
        EXPECT_EQ(r.metric, llm::size);
    }
}

// --- 2. settlement defaults -----------------------------------------------------------------

using CallSettlement = fixture;

TEST_F(CallSettlement, ServiceUnavailableWithoutUsageIsRefunded) {
    fake_transport t{statuses({503})};
    auto o = seeded();
    o.max_attempts = 1;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::retries_exhausted);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(gov.availability(), full);
}

TEST_F(CallSettlement, BadRequestWithoutUsageIsRefunded) {
    fake_transport t{statuses({400})};
    auto o = seeded();
    o.max_attempts = 1;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::rejected);
    EXPECT_EQ(gov.availability(), full);
}

TEST_F(CallSettlement, TooManyRequestsWithoutUsageIsRefundedThenTheUsedMetricsEmptied) {
    // The 429 is refunded (if_rejected = refund), but a 429 also says the server has no
    // tokens for us now: every metric the call used is emptied (documented in
    // call_options::adaptive). A metric the estimate does not use is left alone.
    fake_transport t{statuses({429})};
    auto o = seeded();
    o.max_attempts = 1;
    auto r = rategov::call(gov, req, make(1, 100, 0), t, o);
    EXPECT_EQ(r.status, call_status::retries_exhausted);
    EXPECT_EQ(gov.available<m::requests>(), 0u);
    EXPECT_EQ(gov.available<m::total_prompt>(), 0u);
    EXPECT_EQ(gov.available<m::generated>(), 500u);
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0})); // emptied, not charged into debt
}

TEST_F(CallSettlement, ServerErrorWithoutUsageKeepsTheEstimate) {
    fake_transport t{statuses({500})};
    auto o = seeded();
    o.max_attempts = 1;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::retries_exhausted);
    EXPECT_EQ(gov.availability(), minus(full, estimate));
}

TEST_F(CallSettlement, FailureWithReportedUsageCommitsThatUsage) {
    const cost_t used = make(1, 20, 0);
    fake_transport t{[&](unsigned) { return reply_used(503, used); }};
    auto o = seeded();
    o.max_attempts = 1;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::retries_exhausted);
    EXPECT_EQ(gov.availability(), minus(full, used));
}

TEST_F(CallSettlement, OverridesFlipBothDefaults) {
    auto o = seeded();
    o.max_attempts = 1;
    o.if_rejected = settle::keep;
    o.if_unknown = settle::refund;
    {
        fake_transport t{statuses({503})};
        auto r = rategov::call(gov, req, estimate, t, o);
        EXPECT_EQ(r.status, call_status::retries_exhausted);
        EXPECT_EQ(gov.availability(), minus(full, estimate)); // rejected: kept
    }
    {
        manual_clock c2{t0};
        gov_t g2{c2, q_req, q_prompt, q_gen};
        fake_transport t{statuses({400})};
        auto r = rategov::call(g2, req, estimate, t, o);
        EXPECT_EQ(r.status, call_status::rejected);
        EXPECT_EQ(g2.availability(), minus(full, estimate)); // rejected: kept
    }
    {
        manual_clock c3{t0};
        gov_t g3{c3, q_req, q_prompt, q_gen};
        fake_transport t{statuses({500})};
        auto r = rategov::call(g3, req, estimate, t, o);
        EXPECT_EQ(r.status, call_status::retries_exhausted);
        EXPECT_EQ(g3.availability(), full); // unknown: refunded
    }
}

// --- 3. Retry-After -------------------------------------------------------------------------

using CallRetryAfter = fixture;

TEST_F(CallRetryAfter, HintReplacesTheBackoff) {
    fake_transport t{[](unsigned n) {
                         return n == 1 ? reply(503, {{"Retry-After", "7"}}) : reply(200);
                     },
                     &clock};
    auto r = rategov::call(gov, req, estimate, t, seeded()); // default: full jitter
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.attempts, 2u);
    EXPECT_GE(elapsed(), 7s);
    EXPECT_EQ(r.backed_off, 7s);
    EXPECT_EQ(r.waited, 0ns); // the 503 was refunded: tokens at once
    ASSERT_EQ(t.sent_at.size(), 2u);
    EXPECT_EQ(t.sent_at[1] - t.sent_at[0], 7s);
}

TEST_F(CallRetryAfter, HintAboveMaxHintIsCut) {
    fake_transport t{[](unsigned n) {
                         return n == 1 ? reply(503, {{"retry-after", "30"}}) : reply(200);
                     },
                     &clock};
    auto o = seeded();
    o.max_hint = 5s;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.backed_off, 5s);
    EXPECT_EQ(elapsed(), 5s);
}

TEST_F(CallRetryAfter, WithoutHintThePolicyDecides) {
    fake_transport t{statuses({503, 503, 503, 200}), &clock};
    auto o = seeded();
    o.backoff = bo::constant(3s);
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.attempts, 4u);
    EXPECT_EQ(r.backed_off, 9s); // 3 s per retry
    EXPECT_EQ(elapsed(), 9s);
    ASSERT_EQ(t.sent_at.size(), 4u);
    for (std::size_t i = 1; i < t.sent_at.size(); ++i)
        EXPECT_EQ(t.sent_at[i] - t.sent_at[i - 1], 3s) << "retry " << i;
}

TEST_F(CallRetryAfter, ExponentialPolicyCountsRetriesFromZero) {
    fake_transport t{statuses({503, 503, 503, 200}), &clock};
    auto o = seeded();
    o.backoff = bo::exponential(1s, 60s);
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.backed_off, 7s); // 1 + 2 + 4
    ASSERT_EQ(t.sent_at.size(), 4u);
    EXPECT_EQ(t.sent_at[1] - t.sent_at[0], 1s);
    EXPECT_EQ(t.sent_at[2] - t.sent_at[1], 2s);
    EXPECT_EQ(t.sent_at[3] - t.sent_at[2], 4s);
}

TEST_F(CallRetryAfter, HintOnATooManyRequestsIsHonouredToo) {
    fake_transport t{[](unsigned n) {
                         return n == 1 ? reply(429, {{"Retry-After", "2"}}) : reply(200);
                     },
                     &clock};
    auto r = rategov::call(gov, req, estimate, t, seeded());
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.backed_off, 2s);
    // The 429 emptied the bucket, but 2 s refill it: no token wait after the hint.
    EXPECT_EQ(r.waited, 0ns);
    EXPECT_EQ(elapsed(), 2s);
}

// --- 4. retry budget ------------------------------------------------------------------------

using CallRetryBudget = fixture;

TEST_F(CallRetryBudget, ServiceUnavailableStormIsBoundedByTheBudget) {
    bo::retry_budget budget; // ratio 0.1, initial 10, max 100
    auto o = seeded();
    o.backoff = bo::none{};
    o.max_attempts = 10;
    o.budget = &budget;
    constexpr unsigned calls = 5000;
    unsigned attempts = 0;
    unsigned budget_exhausted = 0;
    unsigned retries_exhausted = 0;
    call_status last = call_status::success;
    for (unsigned i = 0; i < calls; ++i) {
        fake_transport t{statuses({503})};
        auto r = rategov::call(gov, req, estimate, t, o);
        EXPECT_EQ(r.attempts, t.calls);
        attempts += r.attempts;
        last = r.status;
        budget_exhausted += r.status == call_status::budget_exhausted ? 1u : 0u;
        retries_exhausted += r.status == call_status::retries_exhausted ? 1u : 0u;
        ASSERT_TRUE(r.status == call_status::budget_exhausted ||
                    r.status == call_status::retries_exhausted)
            << "call " << i;
    }
    const unsigned retries = attempts - calls;
    EXPECT_LE(retries, calls / 10 + 10); // ratio · calls + initial
    // Exactly: 10 initial + 500 deposited, and the storm spends every whole retry.
    EXPECT_EQ(retries, 510u);
    EXPECT_EQ(budget.available(), 0u);
    EXPECT_EQ(last, call_status::budget_exhausted);
    EXPECT_EQ(budget_exhausted + retries_exhausted, calls);
    EXPECT_GE(budget_exhausted, calls - 1); // only the first call could afford 9 retries
    EXPECT_EQ(gov.availability(), full);    // every 503 refunded
    EXPECT_EQ(elapsed(), 0ns);              // backoff::none, tokens always there
}

TEST_F(CallRetryBudget, TooManyRequestsAreFreeByDefault) {
    bo::retry_budget budget;
    auto o = seeded();
    o.backoff = bo::none{};
    o.max_attempts = 10;
    o.budget = &budget;
    constexpr unsigned calls = 1000;
    unsigned attempts = 0;
    for (unsigned i = 0; i < calls; ++i) {
        fake_transport t{statuses({429})};
        auto r = rategov::call(gov, req, make(1, 0, 0), t, o);
        ASSERT_EQ(r.status, call_status::retries_exhausted) << "call " << i;
        attempts += r.attempts;
    }
    EXPECT_EQ(attempts, calls * 10u);    // bounded only by max_attempts
    EXPECT_EQ(budget.available(), 100u); // 10 + 1000 · 0.1, capped at max
    // Each 429 emptied the request bucket: every retry waited 100 ms (10/s).
    EXPECT_GE(elapsed(), 100ms * (attempts - 1));
}

// --- 5. deadline ----------------------------------------------------------------------------

using CallDeadline = fixture;

TEST_F(CallDeadline, TokensReadyAfterTheDeadlineEndTheCallAtOnce) {
    // requests: 1/s with burst 10; drained, so 10 more are ready in 10 s.
    gov_t g{clock, rategov::per_second(1).with_burst(10), q_prompt, q_gen};
    ASSERT_TRUE(g.try_acquire(make(10, 0, 0)).granted());
    const avail_t before = g.availability();
    ASSERT_EQ(before, (avail_t{0, 1000, 500}));
    fake_transport t{statuses({200})};
    auto o = seeded();
    o.deadline = t0 + 1s;
    auto r = rategov::call(g, req, make(10, 100, 50), t, o);
    EXPECT_EQ(r.status, call_status::deadline);
    EXPECT_EQ(r.attempts, 0u);
    EXPECT_EQ(r.metric, i_req);
    EXPECT_EQ(t.calls, 0u);
    EXPECT_EQ(clock.now() - t0, 0ns); // did not wait
    EXPECT_EQ(r.waited, 0ns);
    EXPECT_EQ(g.availability(), before); // nothing taken
    EXPECT_EQ(g.debts(), (avail_t{0, 0, 0}));
    clock.advance(10s);
    EXPECT_EQ(g.available<m::requests>(), 10u);
}

TEST_F(CallDeadline, TokensReadyBeforeTheDeadlineAreWaitedFor) {
    gov_t g{clock, rategov::per_second(1).with_burst(10), q_prompt, q_gen};
    ASSERT_TRUE(g.try_acquire(make(10, 0, 0)).granted());
    fake_transport t{statuses({200}), &clock};
    auto o = seeded();
    o.deadline = t0 + 11s;
    auto r = rategov::call(g, req, make(10, 100, 50), t, o);
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.waited, 10s);
    ASSERT_EQ(t.sent_at.size(), 1u);
    EXPECT_EQ(t.sent_at[0] - t0, 10s);
}

TEST_F(CallDeadline, BackoffPastTheDeadlineEndsTheCallAtOnce) {
    fake_transport t{statuses({503, 200})};
    auto o = seeded();
    o.backoff = bo::constant(5s);
    o.deadline = t0 + 2s;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::deadline);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(t.calls, 1u);
    EXPECT_EQ(clock.now() - t0, 0ns);
    EXPECT_EQ(r.backed_off, 0ns);
    EXPECT_EQ(gov.availability(), full); // the 503 was refunded
}

TEST_F(CallDeadline, HintPastTheDeadlineEndsTheCallAtOnce) {
    fake_transport t{[](unsigned n) {
        return n == 1 ? reply(503, {{"Retry-After", "10"}}) : reply(200);
    }};
    auto o = seeded();
    o.backoff = bo::none{};
    o.deadline = t0 + 2s;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::deadline);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(clock.now() - t0, 0ns);
}

TEST_F(CallDeadline, RetryLandingExactlyOnTheDeadlineIsNotAPointlessWait) {
    // A retry whose backoff ends exactly at the deadline: either it is sent at the
    // deadline, or the call ends at once — never after backing off only to give up.
    fake_transport t{statuses({503, 200}), &clock};
    auto o = seeded();
    o.backoff = bo::constant(2s);
    o.deadline = t0 + 2s;
    auto r = rategov::call(gov, req, estimate, t, o);
    if (r.status == call_status::deadline) {
        EXPECT_EQ(clock.now() - t0, 0ns) << "backed off to the deadline, then gave up";
        EXPECT_EQ(r.backed_off, 0ns);
        EXPECT_EQ(r.attempts, 1u);
    } else {
        EXPECT_EQ(r.status, call_status::success);
        EXPECT_EQ(r.attempts, 2u);
        ASSERT_EQ(t.sent_at.size(), 2u);
        EXPECT_EQ(t.sent_at[1] - t0, 2s);
    }
}

TEST_F(CallDeadline, DeadlineAlreadyPastEndsWithoutAnAttempt) {
    for (const time_point d : {t0 - 1s, t0 - 1ns}) {
        fake_transport t{statuses({200})};
        auto o = seeded();
        o.deadline = d;
        auto r = rategov::call(gov, req, estimate, t, o);
        EXPECT_EQ(r.status, call_status::deadline);
        EXPECT_EQ(r.attempts, 0u);
        EXPECT_EQ(t.calls, 0u);
        EXPECT_FALSE(r.response.has_value());
        EXPECT_EQ(gov.availability(), full);
        EXPECT_EQ(clock.now() - t0, 0ns);
    }
}

// --- 6. cancellation ------------------------------------------------------------------------

using CallCancel = fixture;

TEST_F(CallCancel, StoppedBeforeTheCall) {
    std::stop_source src;
    src.request_stop();
    fake_transport t{statuses({200})};
    auto o = seeded();
    o.stop = src.get_token();
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::cancelled);
    EXPECT_EQ(r.attempts, 0u);
    EXPECT_EQ(t.calls, 0u);
    EXPECT_EQ(gov.availability(), full);
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0}));
    EXPECT_EQ(clock.now() - t0, 0ns);
}

TEST_F(CallCancel, StopDuringAFailingAttemptEndsBeforeTheRetry) {
    std::stop_source src;
    fake_transport t{[&](unsigned) {
                         src.request_stop();
                         return reply(503);
                     },
                     &clock};
    auto o = seeded();
    o.stop = src.get_token();
    o.backoff = bo::constant(3s);
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::cancelled);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(t.calls, 1u);
    ASSERT_TRUE(r.last_outcome.has_value());
    EXPECT_EQ(*r.last_outcome, fb::outcome::load_shed);
    EXPECT_EQ(clock.now() - t0, 0ns); // the backoff was not waited
    EXPECT_EQ(r.backed_off, 0ns);
    EXPECT_EQ(gov.availability(), full); // 503: refunded
}

TEST_F(CallCancel, StopDuringAFailingServerErrorKeepsTheEstimate) {
    std::stop_source src;
    fake_transport t{[&](unsigned) {
        src.request_stop();
        return reply(500);
    }};
    auto o = seeded();
    o.stop = src.get_token();
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::cancelled);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(gov.availability(), minus(full, estimate)); // 500: kept (if_unknown)
}

TEST(CallCancelThreaded, StopFromAnotherThreadEndsABlockedWait) {
    manual_clock clock{t0, wait_mode::block};
    // requests: 1/s, burst 100, drained: a call for 100 waits 100 s of virtual time, which
    // nobody advances.
    gov_t gov{clock, rategov::per_second(1).with_burst(100), q_prompt, q_gen};
    ASSERT_TRUE(gov.try_acquire(make(100, 0, 0)).granted());
    std::stop_source src;
    std::atomic<bool> finished{false};
    std::atomic<unsigned> transport_calls{0};
    std::optional<rategov::call_result<resp_t, time_point>> result;
    std::thread worker([&] {
        auto o = seeded();
        o.stop = src.get_token();
        auto transport = [&](const request_t&) {
            transport_calls.fetch_add(1);
            return reply(200);
        };
        result.emplace(rategov::call(gov, req, make(100, 10, 0), transport, o));
        finished.store(true);
    });
    // Wait (in real time, bounded) until the call holds its reservation (queued tokens show
    // as debt), so that the stop interrupts the blocked wait rather than preceding the call.
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (gov.debts()[i_req] == 0 && std::chrono::steady_clock::now() < give_up)
        std::this_thread::yield();
    EXPECT_EQ(gov.debts()[i_req], 100u) << "the call never reserved";
    EXPECT_FALSE(finished.load());
    src.request_stop();
    while (!finished.load() && std::chrono::steady_clock::now() < give_up)
        std::this_thread::yield();
    const bool ended = finished.load();
    EXPECT_TRUE(ended) << "the cancelled call did not return within 10 s";
    if (!ended)
        clock.advance(1h); // unblock it, so that the test can end
    worker.join();
    ASSERT_TRUE(result.has_value());
    if (ended) {
        EXPECT_EQ(result->status, call_status::cancelled);
        EXPECT_EQ(result->attempts, 0u);
        EXPECT_EQ(transport_calls.load(), 0u);
    }
    EXPECT_EQ(clock.now() - t0, 0ns);
    // No tokens leaked: the reservation was given back.
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0}));
    EXPECT_EQ(gov.availability(), (avail_t{0, 1000, 500}));
    clock.advance(100s);
    EXPECT_EQ(gov.available<m::requests>(), 100u);
}

// --- 7. throwing transports -----------------------------------------------------------------

using CallThrow = fixture;

TEST_F(CallThrow, NotSentIsRefundedAndRetried) {
    const cost_t used = make(1, 60, 30);
    fake_transport t{[&](unsigned n) -> resp_t {
        if (n == 1)
            throw rategov::transport_error("connect refused", rategov::delivery::not_sent);
        return reply_used(200, used);
    }};
    auto o = seeded();
    o.backoff = bo::none{};
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.attempts, 2u);
    EXPECT_EQ(t.calls, 2u);
    EXPECT_EQ(gov.availability(), minus(full, used)); // only the second attempt counted
    EXPECT_EQ(message_of(r.error), "connect refused");
}

TEST_F(CallThrow, MaybeSentKeepsTheEstimate) {
    fake_transport t{[](unsigned) -> resp_t {
        throw rategov::transport_error("read timeout", rategov::delivery::maybe_sent);
    }};
    auto o = seeded();
    o.max_attempts = 1;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::retries_exhausted);
    EXPECT_EQ(r.attempts, 1u);
    ASSERT_TRUE(r.last_outcome.has_value());
    EXPECT_EQ(*r.last_outcome, fb::outcome::retryable);
    EXPECT_FALSE(r.response.has_value());
    EXPECT_EQ(message_of(r.error), "read timeout");
    EXPECT_EQ(gov.availability(), minus(full, estimate));
}

TEST_F(CallThrow, MaybeSentIsRetriedAndEachAttemptCharged) {
    fake_transport t{[](unsigned n) -> resp_t {
        if (n < 3)
            throw rategov::transport_error("reset", rategov::delivery::maybe_sent);
        return reply(200);
    }};
    auto o = seeded();
    o.backoff = bo::none{};
    auto r = rategov::call(gov, req, make(1, 100, 0), t, o);
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.attempts, 3u);
    EXPECT_EQ(gov.availability(), (avail_t{10 - 3, 1000 - 300, 500}));
}

TEST_F(CallThrow, FatalTransportErrorIsRejected) {
    fake_transport t{[](unsigned) -> resp_t {
        throw rategov::transport_error("bad certificate", rategov::delivery::not_sent,
                                       fb::outcome::fatal);
    }};
    auto r = rategov::call(gov, req, estimate, t, seeded());
    EXPECT_EQ(r.status, call_status::rejected);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(gov.availability(), full);
}

TEST_F(CallThrow, OtherExceptionEndsTheCallWithError) {
    fake_transport t{[](unsigned) -> resp_t { throw std::runtime_error("parser exploded"); }};
    auto r = rategov::call(gov, req, estimate, t, seeded());
    EXPECT_EQ(r.status, call_status::error);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(t.calls, 1u); // no retry
    ASSERT_TRUE(r.error);
    try {
        std::rethrow_exception(r.error);
    } catch (const rategov::transport_error&) {
        ADD_FAILURE() << "not a transport_error";
    } catch (const std::runtime_error& e) {
        EXPECT_STREQ(e.what(), "parser exploded");
    }
    EXPECT_EQ(gov.availability(), minus(full, estimate)); // maybe sent: kept
}

TEST_F(CallThrow, AlwaysNotSentLeavesTheGovernorUntouched) {
    const avail_t before = gov.availability();
    fake_transport t{[](unsigned) -> resp_t {
        throw rategov::transport_error("no route", rategov::delivery::not_sent);
    }};
    auto o = seeded();
    o.backoff = bo::constant(1s);
    o.max_attempts = 6;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::retries_exhausted);
    EXPECT_EQ(r.attempts, 6u);
    EXPECT_EQ(t.calls, 6u);
    EXPECT_EQ(r.backed_off, 5s);
    EXPECT_EQ(gov.availability(), before);
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0}));
}

// --- 8. the non-blocking call_machine -------------------------------------------------------

using machine_t = rategov::call_machine<gov_t>;
using action = machine_t::action;

using CallMachine = fixture;

TEST_F(CallMachine, DrivenByHandWaitsSendsAndFinishes) {
    ASSERT_TRUE(gov.try_acquire(make(10, 0, 0)).granted()); // requests drained
    machine_t mach(gov, estimate, seeded());
    EXPECT_FALSE(mach.done());
    const auto s1 = mach.next();
    ASSERT_EQ(s1.what, action::wait);
    EXPECT_EQ(s1.until - t0, 100ms);  // one request at 10/s
    EXPECT_EQ(clock.now() - t0, 0ns); // the machine never waits by itself
    // The tokens are held. They are placed at the ready time (t0 + 100 ms), and until then
    // a metric that is not the bottleneck also keeps back what it accrues by then (the
    // governor's documented pay-forward): 1000 − 100 placed − 100 accrued in 100 ms.
    EXPECT_EQ(gov.available<m::total_prompt>(), 1000u - 100u - 100u);
    // Asking again early changes nothing.
    const auto s2 = mach.next();
    EXPECT_EQ(s2.what, action::wait);
    EXPECT_EQ(s2.until, s1.until);
    clock.set(s1.until);
    const auto s3 = mach.next();
    ASSERT_EQ(s3.what, action::send);
    EXPECT_EQ(mach.attempt().attempt, 1u);
    EXPECT_EQ(mach.attempt().deadline, time_point::max());
    mach.on_response(reply_used(200, make(1, 70, 20)));
    EXPECT_TRUE(mach.done());
    const auto s4 = mach.next();
    EXPECT_EQ(s4.what, action::done);
    const auto& res = mach.result();
    EXPECT_EQ(res.status, call_status::success);
    EXPECT_TRUE(static_cast<bool>(res));
    EXPECT_EQ(res.attempts, 1u);
    EXPECT_EQ(res.waited, 100ms);
    EXPECT_EQ(mach.last_feedback().kind, fb::outcome::success);
    EXPECT_EQ(gov.available<m::total_prompt>(), 1000u - 70u);
    EXPECT_EQ(gov.available<m::generated>(), 500u - 20u);
    EXPECT_EQ(gov.available<m::requests>(), 0u);
}

TEST_F(CallMachine, ResponseOutsideASendIsIgnored) {
    machine_t mach(gov, estimate, seeded());
    mach.on_response(reply(200)); // nothing sent yet
    EXPECT_FALSE(mach.done());
    EXPECT_EQ(mach.result().attempts, 0u);
    ASSERT_EQ(mach.next().what, action::send);
    mach.on_response(reply(200));
    EXPECT_TRUE(mach.done());
    mach.on_response(reply_used(200, make(1, 1, 1))); // after done: ignored
    EXPECT_EQ(gov.availability(), minus(full, estimate));
}

TEST_F(CallMachine, DestroyedBeforeSendingRefunds) {
    ASSERT_TRUE(gov.try_acquire(make(10, 0, 0)).granted());
    {
        machine_t mach(gov, estimate, seeded());
        ASSERT_EQ(mach.next().what, action::wait);         // holding a reservation
        EXPECT_EQ(gov.available<m::total_prompt>(), 800u); // 100 placed + 100 kept back
    }
    EXPECT_EQ(gov.availability(), (avail_t{0, 1000, 500}));
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0}));
}

TEST_F(CallMachine, DestroyedWhileSendingSettlesAsUnknown) {
    {
        machine_t mach(gov, estimate, seeded());
        ASSERT_EQ(mach.next().what, action::send);
    }
    EXPECT_EQ(gov.availability(), minus(full, estimate)); // if_unknown = keep
    {
        manual_clock c2{t0};
        gov_t g2{c2, q_req, q_prompt, q_gen};
        auto o = seeded();
        o.if_unknown = settle::refund;
        machine_t mach(g2, estimate, o);
        ASSERT_EQ(mach.next().what, action::send);
        mach.cancel();
        EXPECT_TRUE(mach.done());
        EXPECT_EQ(mach.result().status, call_status::cancelled);
        EXPECT_EQ(g2.availability(), full); // if_unknown = refund
    }
}

TEST_F(CallMachine, FiftyMachinesInAVirtualEventLoopKeepTheLimit) {
    // requests: 10/s, burst 10: 50 calls need 4 s after the first 10.
    constexpr std::size_t n = 50;
    std::vector<std::unique_ptr<machine_t>> machines;
    for (std::size_t i = 0; i < n; ++i) {
        auto o = seeded();
        o.seed = 1000 + i;
        machines.push_back(std::make_unique<machine_t>(gov, make(1, 0, 0), o));
    }
    using wake = std::pair<time_point, std::size_t>;
    std::priority_queue<wake, std::vector<wake>, std::greater<>> queue;
    for (std::size_t i = 0; i < n; ++i)
        queue.emplace(t0, i);
    std::vector<time_point> sends;
    std::size_t steps = 0;
    while (!queue.empty()) {
        ASSERT_LT(++steps, 100'000u) << "the event loop does not converge";
        const auto [when, i] = queue.top();
        queue.pop();
        if (when > clock.now())
            clock.set(when);
        machine_t& mach = *machines[i];
        for (;;) {
            const auto s = mach.next();
            if (s.what == action::wait) {
                ASSERT_GT(s.until, clock.now()) << "a wait for the present would spin";
                queue.emplace(s.until, i);
                break;
            }
            if (s.what == action::done)
                break;
            sends.push_back(clock.now());
            mach.on_response(reply_used(200, make(1, 0, 0)));
        }
    }
    ASSERT_EQ(sends.size(), n);
    for (std::size_t i = 0; i < n; ++i) {
        EXPECT_EQ(machines[i]->result().status, call_status::success) << i;
        EXPECT_EQ(machines[i]->result().attempts, 1u) << i;
        EXPECT_EQ(machines[i]->result().backed_off, 0ns) << i;
    }
    // Each machine's waited time is the time until its send.
    std::vector<std::chrono::nanoseconds> waited;
    for (const auto& mp : machines)
        waited.push_back(mp->result().waited);
    std::sort(waited.begin(), waited.end());
    for (std::size_t k = 0; k < n; ++k)
        EXPECT_EQ(waited[k], sends[k] - t0) << k;
    EXPECT_GE(clock.now() - t0, 4s);
    EXPECT_EQ(clock.now() - t0, 4s); // no time wasted either
    // Never more than the limit allows: by time t, at most 10 + 10·t sends.
    for (std::size_t k = 0; k < sends.size(); ++k) {
        const auto since = std::chrono::duration_cast<std::chrono::milliseconds>(sends[k] - t0);
        EXPECT_LE(k + 1, 10u + static_cast<std::size_t>(since.count() / 100))
            << "send " << k << " at " << since.count() << " ms";
    }
}

TEST_F(CallMachine, CancelWhileHoldingRefunds) {
    ASSERT_TRUE(gov.try_acquire(make(10, 0, 0)).granted());
    machine_t mach(gov, estimate, seeded());
    ASSERT_EQ(mach.next().what, action::wait);
    mach.cancel();
    EXPECT_TRUE(mach.done());
    EXPECT_EQ(mach.result().status, call_status::cancelled);
    EXPECT_EQ(mach.result().attempts, 0u);
    EXPECT_EQ(mach.next().what, action::done);
    EXPECT_EQ(gov.availability(), (avail_t{0, 1000, 500}));
    EXPECT_EQ(gov.debts(), (avail_t{0, 0, 0}));
}

TEST_F(CallMachine, CancelAfterDoneKeepsTheFinalResult) {
    // result() is documented as final once next() returned done.
    machine_t mach(gov, estimate, seeded());
    ASSERT_EQ(mach.next().what, action::send);
    mach.on_response(reply(200));
    ASSERT_EQ(mach.next().what, action::done);
    ASSERT_EQ(mach.result().status, call_status::success);
    mach.cancel(); // too late: nothing to cancel
    EXPECT_EQ(mach.result().status, call_status::success);
    EXPECT_TRUE(static_cast<bool>(mach.result()));
    EXPECT_EQ(gov.availability(), minus(full, estimate));
}

TEST_F(CallMachine, StopTokenIsCheckedByNext) {
    std::stop_source src;
    auto o = seeded();
    o.stop = src.get_token();
    o.backoff = bo::constant(1s);
    machine_t mach(gov, estimate, o);
    ASSERT_EQ(mach.next().what, action::send);
    mach.on_response(reply(503));
    const auto s = mach.next();
    ASSERT_EQ(s.what, action::wait);
    EXPECT_EQ(s.until - t0, 1s);
    src.request_stop();
    EXPECT_EQ(mach.next().what, action::done);
    EXPECT_EQ(mach.result().status, call_status::cancelled);
    EXPECT_EQ(mach.result().attempts, 1u);
    EXPECT_EQ(gov.availability(), full);
}

// --- 9. attempt information ------------------------------------------------------------------

using CallAttemptInfo = fixture;

TEST_F(CallAttemptInfo, TransportSeesAttemptNumbersAndTheDeadline) {
    fake_transport t{statuses({503, 500, 200})};
    auto o = seeded();
    o.backoff = bo::constant(1s);
    o.deadline = t0 + 1h;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::success);
    ASSERT_EQ(t.infos.size(), 3u);
    for (unsigned k = 0; k < 3; ++k) {
        EXPECT_EQ(t.infos[k].attempt, k + 1);
        EXPECT_EQ(t.infos[k].deadline - t0, 1h);
        EXPECT_EQ(t.infos[k].priority, rategov::traffic_class::regular);
    }
}

TEST_F(CallAttemptInfo, NoDeadlineIsTimePointMaxAndPriorityIsPassedOn) {
    fake_transport t{statuses({200})};
    auto o = seeded();
    o.priority = rategov::traffic_class::priority;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::success);
    ASSERT_EQ(t.infos.size(), 1u);
    EXPECT_EQ(t.infos[0].attempt, 1u);
    EXPECT_EQ(t.infos[0].deadline, time_point::max());
    EXPECT_EQ(t.infos[0].priority, rategov::traffic_class::priority);
}

// --- 10. adaptive feedback -------------------------------------------------------------------

using CallAdaptive = fixture;

TEST_F(CallAdaptive, TooManyRequestsLowersTheAdaptiveLimit) {
    rategov::adaptive_limits<gov_t> adaptive(gov);
    adaptive.bound<m::generated>(
        {rategov::per_minute(6'000), rategov::per_minute(30'000), rategov::per_minute(60'000)});
    ASSERT_EQ(adaptive.current(i_gen).count(), 30'000u);
    fake_transport t{statuses({429})};
    auto o = seeded<fireworks_opts_t>();
    o.adaptive = &adaptive;
    o.max_attempts = 1;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::retries_exhausted);
    EXPECT_EQ(adaptive.current(i_gen).count(), 21'000u); // × 0.7
    EXPECT_EQ(gov.limit<m::generated>().count(), 21'000u);
    EXPECT_EQ(gov.available<m::generated>(), 0u);
    // The fixed metrics keep their limits (and are emptied by the 429).
    EXPECT_EQ(gov.limit<m::requests>().count(), 10u);
    EXPECT_EQ(gov.available<m::requests>(), 0u);
}

TEST_F(CallAdaptive, ReportedLimitIsAdopted) {
    rategov::adaptive_limits<gov_t> adaptive(gov);
    adaptive.bound<m::generated>(
        {rategov::per_minute(6'000), rategov::per_minute(30'000), rategov::per_minute(60'000)});
    fake_transport t{[](unsigned) {
        return reply(200, {{"x-ratelimit-limit-tokens-generated", "700"}}); // per second
    }};
    auto o = seeded<fireworks_opts_t>();
    o.adaptive = &adaptive;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(adaptive.current(i_gen).count(), 42'000u); // 700/s = 42 000/min
}

TEST_F(CallAdaptive, RemainingZeroEmptiesTheMetricWithoutAdaptive) {
    fake_transport t{[](unsigned) {
        return reply(200, {{"x-ratelimit-remaining-tokens-generated", "0"}});
    }};
    auto o = seeded<fireworks_opts_t>();
    ASSERT_EQ(o.adaptive, nullptr);
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(gov.available<m::generated>(), 0u);
    EXPECT_EQ(gov.available<m::requests>(), 10u - 1u);
    EXPECT_EQ(gov.available<m::total_prompt>(), 1000u - 100u);
    EXPECT_EQ(gov.limit<m::generated>().count(), 500u); // limits stay fixed
}

TEST_F(CallAdaptive, RemainingCapsButNeverLoosens) {
    fake_transport t{[](unsigned) {
        return reply(200, {{"x-ratelimit-remaining-tokens-generated", "100000"},
                           {"x-ratelimit-remaining-tokens-prompt", "250"}});
    }};
    auto r = rategov::call(gov, req, estimate, t, seeded<fireworks_opts_t>());
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(gov.available<m::generated>(), 500u - 50u);
    EXPECT_EQ(gov.available<m::total_prompt>(), 250u);
    EXPECT_EQ(gov.availability()[i_prompt], 250u);
}

// --- 11. configuration ------------------------------------------------------------------------

using CallConfig = fixture;

TEST_F(CallConfig, ZeroMaxAttemptsIsAConfigError) {
    bo::retry_budget budget(1.0, 0, 100); // a deposit would show as one whole retry
    fake_transport t{statuses({200})};
    auto o = seeded();
    o.max_attempts = 0;
    o.budget = &budget;
    EXPECT_THROW(static_cast<void>(rategov::call(gov, req, estimate, t, o)), rategov::config_error);
    EXPECT_THROW(machine_t(gov, estimate, o), rategov::config_error);
    EXPECT_EQ(t.calls, 0u);
    EXPECT_EQ(budget.available(), 0u); // the refused calls deposited nothing
    EXPECT_EQ(gov.availability(), full);
    o.max_attempts = 1;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(budget.available(), 1u);
}

} // namespace

// --- regressions found in review ----------------------------------------------------------------

namespace regressions {

using Regression = fixture;
using machine_r = rategov::call_machine<gov_t>;
using action_r = machine_r::action;

// A 2xx is served (and billed) even when it carries the over-limit flag: success, never a
// second send; the flag is still learnt (the used metrics are emptied).
TEST_F(Regression, ServedResponseWithOverLimitFlagIsASuccessNotARetry) {
    const cost_t used = make(1, 40, 30);
    fake_transport t{[&](unsigned) {
        resp_t r = reply_used(200, used);
        r.headers.add("x-ratelimit-over-limit", "yes");
        return r;
    }};
    auto r = rategov::call(gov, req, estimate, t, seeded<fireworks_opts_t>());
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.attempts, 1u);
    EXPECT_EQ(t.calls, 1u);
    ASSERT_TRUE(r.last_outcome.has_value());
    EXPECT_EQ(*r.last_outcome, fb::outcome::success);
    // Learnt as a 429: the metrics the call used hold nothing now.
    EXPECT_EQ(gov.available<m::generated>(), 0u);
}

// Asking the machine again while a send is outstanding never says "send" twice.
TEST_F(Regression, NextWhileSendingIsInFlightEvenAfterAStop) {
    std::stop_source stop;
    auto o = seeded();
    o.stop = stop.get_token();
    machine_r mach(gov, estimate, o);
    ASSERT_EQ(mach.next().what, action_r::send);
    EXPECT_EQ(mach.next().what, action_r::in_flight);
    stop.request_stop();
    EXPECT_EQ(mach.next().what, action_r::in_flight);
    mach.on_response(reply(503));
    EXPECT_EQ(mach.next().what, action_r::done);
    EXPECT_EQ(mach.result().status, call_status::cancelled);
    EXPECT_EQ(mach.result().attempts, 1u);
}

// Time a regular call spent refused (behind priority reservations) counts as waited, also
// when the call ends at its deadline without sending.
TEST_F(Regression, WaitedCountsRefusalsThatEndAtTheDeadline) {
    // Priority reservations queue 25 requests (10/s, burst 10): the queue is back within
    // the burst at t0 + 1.5 s, when the regular call is admitted; its own request would be
    // ready at 1.6 s, past the deadline of 1.55 s: it ends then, having waited 1.5 s.
    std::vector<gov_t::reservation_type> ahead;
    for (int i = 0; i < 25; ++i)
        ahead.push_back(gov.reserve(make(1, 0, 0)));
    auto o = seeded();
    o.deadline = t0 + 1550ms;
    fake_transport t{statuses({200})};
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::deadline);
    EXPECT_EQ(r.attempts, 0u);
    EXPECT_EQ(t.calls, 0u);
    EXPECT_EQ(clock.now() - t0, 1500ms);
    EXPECT_EQ(r.waited, 1500ms);
    for (auto& a : ahead)
        a.cancel();
}

// max_hint 0 ignores server hints: the policy decides.
TEST_F(Regression, ZeroMaxHintIgnoresTheServerHint) {
    fake_transport t{[&](unsigned n) {
        return n == 1 ? reply(503, {{"Retry-After", "30"}}) : reply(200);
    }};
    auto o = seeded();
    o.backoff = bo::constant(2s);
    o.max_hint = 0s;
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::success);
    EXPECT_EQ(r.backed_off, 2s);
    EXPECT_EQ(bo::hinted(5s, std::optional<std::chrono::seconds>(30s), 0s), 5s);
}

// The result's response is always the last attempt's: none when the last attempt threw.
TEST_F(Regression, ResponseIsTheLastAttemptsOrNone) {
    fake_transport t{[&](unsigned n) -> resp_t {
        if (n == 1)
            return reply(503);
        throw std::runtime_error("socket closed");
    }};
    auto o = seeded();
    o.backoff = bo::none{};
    auto r = rategov::call(gov, req, estimate, t, o);
    EXPECT_EQ(r.status, call_status::error);
    EXPECT_EQ(r.attempts, 2u);
    EXPECT_FALSE(r.response.has_value());
}

// A transport_error is never a success.
TEST(TransportError, SuccessKindIsTakenAsRetryable) {
    const rategov::transport_error e("odd", rategov::delivery::not_sent, fb::outcome::success);
    EXPECT_EQ(e.kind(), fb::outcome::retryable);
}

// A stoppable sleep toward the end of time on a real clock neither overflows nor spins: it
// ends when stopped.
TEST(StoppableSleepRegression, RealClockTowardTheEndOfTimeEndsOnStop) {
    const rategov::steady_clock clock{};
    std::stop_source stop;
    std::thread stopper([&] {
        std::this_thread::sleep_for(20ms); // only lets the sleeper start; no rate is checked
        stop.request_stop();
    });
    const auto start = std::chrono::steady_clock::now();
    const bool reached =
        rategov::sleep_until(clock, rategov::steady_clock::time_point::max(), stop.get_token());
    stopper.join();
    EXPECT_FALSE(reached);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 10s); // generous: only that it ends
}

// A retry paid for and then never sent (the call cancelled during its backoff) is given
// back to the budget.
TEST_F(Regression, CancelledDuringBackoffGivesTheRetryBack) {
    bo::retry_budget budget(0.0, 5, 5); // no deposits: only spends and give-backs move it
    auto o = seeded();
    o.budget = &budget;
    o.backoff = bo::constant(10s);
    {
        rategov::call_machine<gov_t> mach(gov, estimate, o);
        ASSERT_EQ(mach.next().what, action_r::send);
        mach.on_response(reply(503));
        EXPECT_EQ(budget.available(), 4u); // spent for the retry
        ASSERT_EQ(mach.next().what, action_r::wait);
        mach.cancel();
        EXPECT_EQ(mach.result().status, call_status::cancelled);
        EXPECT_EQ(budget.available(), 5u);
    }
    {
        auto mach = std::make_unique<rategov::call_machine<gov_t>>(gov, estimate, o);
        ASSERT_EQ(mach->next().what, action_r::send);
        mach->on_response(reply(503));
        EXPECT_EQ(budget.available(), 4u);
        mach.reset(); // destroyed during the backoff
        EXPECT_EQ(budget.available(), 5u);
    }
    bo::retry_budget capped(0.0, 3, 3);
    capped.give_back(fb::outcome::load_shed); // never above max
    EXPECT_EQ(capped.available(), 3u);
    capped.give_back(fb::outcome::fatal); // never spent: nothing to give back
    EXPECT_EQ(capped.available(), 3u);
}

} // namespace regressions
