// The examples of docs/concepts.md (the API reference's main page), compiled and run.
//
// Each example lies between two Doxygen snippet markers (a `//!` comment holding its name in
// brackets), and the page includes it with `\snippet concepts_snippets.cpp name`; the test
// around it checks, in virtual time, what the page says the example does. Keep the code
// between the markers free of test code: it is what readers copy.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unistd.h>

#include <rategov/rategov.hpp>
#include <rategov/shm/shm.hpp>

#include <gtest/gtest.h>

//! [setup]
namespace m = rategov::metric;
using rategov::testing::manual_clock;

// Two metrics, the scarcest first: generated tokens, then requests.
using llm = rategov::metrics<m::generated, m::requests>;
using gov_t = rategov::governor<llm, manual_clock>;
//! [setup]

namespace {

using namespace std::chrono_literals;
using time_point = manual_clock::time_point;

time_point at(std::chrono::nanoseconds d) {
    return time_point(d);
}

} // namespace

// --- 1. clock ----------------------------------------------------------------------------------

TEST(Concepts, Clock) {
    const auto real_start = std::chrono::steady_clock::now();
    //! [clock]
    static_assert(rategov::Clock<rategov::steady_clock>); // the default clock
    static_assert(rategov::Clock<manual_clock>);          // virtual time, for tests

    manual_clock clock;        // starts at 0
    manual_clock copy = clock; // a handle to the same time
    copy.advance(std::chrono::seconds(5));
    rategov::sleep_until(clock, clock.now() + std::chrono::seconds(10)); // moves virtual time
    // clock.now() is 15 s: both handles moved it; nothing slept for real
    //! [clock]
    EXPECT_EQ(clock.now(), at(15s));
    EXPECT_EQ(copy.now(), clock.now());
    EXPECT_LT(std::chrono::steady_clock::now() - real_start, 5s);
}

// --- 2. quota ----------------------------------------------------------------------------------

TEST(Concepts, Quota) {
    //! [quota]
    auto prompt = rategov::per_minute(3'600'000);                   // burst: the whole minute
    auto generated = rategov::per_minute(36'000).with_burst(6'000); // at most 10 s' worth at once
    auto calls = rategov::per(std::chrono::seconds(10), 50);        // 50 per 10 s

    std::string error;
    try {
        static_cast<void>(rategov::per_minute(0));
    } catch (const rategov::config_error& e) {
        error = e.what(); // "per_minute(0): the count must be positive"
    }
    //! [quota]
    EXPECT_EQ(prompt.burst(), 3'600'000u);
    EXPECT_EQ(prompt.period(), 1min);
    EXPECT_EQ(generated.count(), 36'000u);
    EXPECT_EQ(generated.burst(), 6'000u);
    EXPECT_EQ(generated.to_string(), "36000 per 1min, burst 6000");
    EXPECT_EQ(calls.count(), 50u);
    EXPECT_EQ(calls.period(), 10s);
    EXPECT_EQ(error, "per_minute(0): the count must be positive");
}

// --- 3. bucket ---------------------------------------------------------------------------------

TEST(Concepts, Bucket) {
    //! [bucket]
    manual_clock clock;
    rategov::bucket<manual_clock> requests(rategov::per_second(10), clock); // burst 10

    auto burst = requests.try_acquire(10); // the whole burst at once: granted
    auto more = requests.try_acquire(1);   // denied; more.ready_at is 100 ms from now
    auto huge = requests.try_acquire(11);  // exceeds_capacity: over the burst, can never pass
    auto paid = requests.reserve(3);       // pays forward: granted, usable 300 ms from now
    requests.refund(3, paid.receipt);      // not needed after all: exactly those 3 come back
    //! [bucket]
    EXPECT_TRUE(burst);
    EXPECT_EQ(more.status, rategov::acquire_status::denied);
    EXPECT_EQ(more.ready_at, at(100ms));
    EXPECT_EQ(huge.status, rategov::acquire_status::exceeds_capacity);
    EXPECT_TRUE(paid);
    EXPECT_EQ(paid.ready_at, at(300ms));
    // After the refund the bucket is as before the reservation: one token 100 ms from now.
    EXPECT_EQ(requests.available(), 0u);
    EXPECT_EQ(requests.try_acquire(1).ready_at, at(100ms));
    clock.advance(100ms);
    EXPECT_TRUE(requests.try_acquire(1));
}

// --- 4. governor: cost vectors and reservations --------------------------------------------------

TEST(Concepts, Governor) {
    //! [governor]
    manual_clock clock;
    gov_t gov(clock, rategov::per_minute(36'000).with_burst(3'600), rategov::per_minute(600));

    const rategov::cost<llm> chat{rategov::amount<m::requests>{1},
                                  rategov::amount<m::generated>{3'600}};
    auto first = gov.try_acquire(chat);  // granted: 1 request and 3'600 generated tokens
    auto second = gov.try_acquire(chat); // denied, nothing taken: generated is empty
    // second.ready_at: 6 s from now (3'600 tokens at 600 per second);
    // second.metric: 0, the index of m::generated in llm
    //! [governor]
    EXPECT_TRUE(first);
    EXPECT_EQ(second.status, rategov::acquire_status::denied);
    EXPECT_EQ(second.ready_at, clock.now() + 6s);
    EXPECT_EQ(second.metric, llm::index_of<m::generated>);
    // All or nothing: the denied request took no request token.
    EXPECT_EQ(gov.available<m::requests>(), 599u);
    clock.advance(6s);
    EXPECT_TRUE(gov.try_acquire(chat));
}

TEST(Concepts, Reservation) {
    //! [reservation]
    manual_clock clock;
    gov_t gov(clock, rategov::per_minute(36'000).with_burst(3'600), rategov::per_minute(600));
    const rategov::cost<llm> estimate{rategov::amount<m::requests>{1},
                                      rategov::amount<m::generated>{3'600}}; // max_tokens

    auto r = gov.reserve(estimate, std::chrono::seconds(30)); // refused if the wait were > 30 s
    r.wait();                                                 // ready at once here
    r.commit({rategov::amount<m::requests>{1},                // the usage the response reports:
              rategov::amount<m::generated>{600}});           // 3'000 tokens come back

    auto next = gov.reserve(estimate); // ready 1 s from now (600 tokens short), not 6 s
    next.cancel();                     // never sent: the whole estimate comes back
    //! [reservation]
    EXPECT_TRUE(r);
    EXPECT_EQ(r.ready_at(), at(0s));
    EXPECT_TRUE(next);
    EXPECT_EQ(next.ready_at(), clock.now() + 1s);
    EXPECT_EQ(gov.available<m::generated>(), 3'000u);
    EXPECT_EQ(gov.available<m::requests>(), 599u);
    // Dropped unsettled, a reservation is refunded as well (refund_on_drop).
    { auto dropped = gov.reserve(estimate); }
    EXPECT_EQ(gov.available<m::generated>(), 3'000u);
}

// --- 5. adaptive limits ------------------------------------------------------------------------

TEST(Concepts, Adaptive) {
    //! [adaptive]
    manual_clock clock;
    gov_t gov(clock, rategov::per_minute(36'000), rategov::per_minute(600));
    rategov::adaptive_limits<gov_t> adapt(gov);
    adapt.bound<m::generated>({rategov::per_minute(12'000),    // lower
                               rategov::per_minute(36'000),    // start
                               rategov::per_minute(360'000)}); // upper

    const auto sent = clock.now(); // two requests leave together...
    clock.advance(std::chrono::seconds(1));
    rategov::feedback::response_feedback<llm::size> rejected; // a 429 without limit headers
    rejected.kind = rategov::feedback::outcome::over_limit;
    adapt.on_response(rejected, sent); // ...the first 429 cuts the limit: 36'000 × 0.7
    adapt.on_response(rejected, sent); // the second was sent before the cut: ignored
    // gov.limit<m::generated>() is now 25'200 per minute, and its bucket is empty
    //! [adaptive]
    EXPECT_EQ(gov.limit<m::generated>().count(), 25'200u);
    EXPECT_EQ(adapt.current(llm::index_of<m::generated>).count(), 25'200u);
    EXPECT_EQ(gov.available<m::generated>(), 0u);
    EXPECT_EQ(gov.limit<m::requests>(), rategov::per_minute(600)); // no bounds: fixed
    // The return value counts the metrics that changed: 1, then 0 for the stale 429.
    const auto later = clock.now();
    clock.advance(1s);
    EXPECT_EQ(adapt.on_response(rejected, sent), 0u);
    EXPECT_EQ(adapt.on_response(rejected, later), 1u);
    EXPECT_EQ(gov.limit<m::generated>().count(), 17'640u); // 25'200 × 0.7
}

// --- 6. feedback -------------------------------------------------------------------------------

TEST(Concepts, Feedback) {
    manual_clock clock;
    gov_t gov(clock, rategov::per_minute(36'000), rategov::per_minute(600));
    rategov::adaptive_limits<gov_t> adapt(gov);
    adapt.bound<m::generated>(
        {rategov::per_minute(12'000), rategov::per_minute(36'000), rategov::per_minute(360'000)});
    const auto sent = clock.now();
    //! [feedback]
    using rategov::feedback::header_list;
    const header_list::entry received[] = {
        {"X-RateLimit-Limit-Tokens-Generated", "500"}, // per second, for this profile
        {"x-ratelimit-remaining-tokens-generated", "420"},
        {"x-ratelimit-limit-requests", "-5"}, // garbage: no update, never a wild limit
        {"retry-after", "2"},
    };
    const rategov::feedback::fireworks_profile<llm> profile;
    auto fb = profile.read(200, header_list(received), rategov::feedback::wall_time_now());
    // fb.kind: success; fb.metrics[0]: limit 500 per 1 s, remaining 420;
    // fb.metrics[1]: nothing; fb.retry_after: 2 s

    adapt.on_response(fb, sent); // the reported limit wins: 500 per second = 30'000 per minute
    //! [feedback]
    using rategov::feedback::outcome;
    EXPECT_EQ(fb.kind, outcome::success);
    const auto& gen = fb.metrics[llm::index_of<m::generated>];
    EXPECT_EQ(gen.limit, std::optional<std::uint64_t>(500));
    EXPECT_EQ(gen.period, 1s);
    EXPECT_EQ(gen.remaining, std::optional<std::uint64_t>(420));
    const auto& req = fb.metrics[llm::index_of<m::requests>];
    EXPECT_FALSE(req.limit);
    EXPECT_FALSE(req.remaining);
    EXPECT_EQ(fb.retry_after, std::optional<std::chrono::milliseconds>(2s));
    EXPECT_EQ(gov.limit<m::generated>().count(), 30'000u);
    EXPECT_EQ(gov.limit<m::generated>().period(), 1min);
    EXPECT_EQ(gov.available<m::generated>(), 420u); // capped at what the server has left
    // The outcome of a status alone, and the over-limit flag.
    EXPECT_EQ(rategov::feedback::classify_status(503), outcome::load_shed);
    const header_list::entry flagged[] = {{"x-ratelimit-over-limit", "yes"}};
    EXPECT_EQ(profile.read(200, header_list(flagged), rategov::feedback::wall_time_now()).kind,
              outcome::over_limit);
}

// --- 7. backoff and retry budget ---------------------------------------------------------------

TEST(Concepts, Backoff) {
    //! [backoff]
    rategov::backoff::splitmix64 random(42); // any std::uniform_random_bit_generator
    const rategov::backoff::full_jitter policy(std::chrono::milliseconds(250),
                                               std::chrono::seconds(20));
    auto computed = policy.delay(3, {}, random); // retry 3: uniform in [0, 250 ms · 2^3 = 2 s]
    auto wait = rategov::backoff::hinted(computed, std::optional(std::chrono::seconds(5)),
                                         std::chrono::seconds(60)); // Retry-After: 5 s wins

    rategov::backoff::retry_budget budget; // earns 0.1 retry a call; 10 at start, 100 at most
    int retried = 0;
    for (int call = 0; call < 50; ++call) { // 50 calls, every one answered 503
        budget.on_call();
        if (budget.try_spend(rategov::feedback::outcome::load_shed))
            ++retried;
    }
    // retried == 15: the 10 at start, then one per ten calls
    //! [backoff]
    EXPECT_GE(computed, 0ns);
    EXPECT_LE(computed, 2s);
    EXPECT_EQ(wait, 5s);
    EXPECT_EQ(retried, 15);
    EXPECT_EQ(budget.available(), 0u);
    // Retries after a 429 cost nothing by default: the governor paces them.
    EXPECT_TRUE(budget.try_spend(rategov::feedback::outcome::over_limit));
}

// --- 8. client loop ----------------------------------------------------------------------------

TEST(Concepts, Call) {
    //! [call]
    manual_clock clock;
    gov_t gov(clock, rategov::per_minute(36'000), rategov::per_minute(600));
    const rategov::cost<llm> estimate{rategov::amount<m::requests>{1},
                                      rategov::amount<m::generated>{500}};

    int sent = 0;
    auto transport = [&](const std::string& /*prompt*/) { // your HTTP call
        rategov::response<llm> r;
        if (++sent == 1) {
            r.status = 429; // over the limit: try again in 2 s
            r.headers.add("Retry-After", "2");
        } else {
            r.status = 200;
            r.usage = rategov::cost<llm>{rategov::amount<m::requests>{1},
                                         rategov::amount<m::generated>{250}};
        }
        return r;
    };
    rategov::call_options<gov_t> options; // Retry-After profile, full jitter, 5 attempts
    options.deadline = clock.now() + std::chrono::seconds(30);

    auto result = rategov::call(gov, std::string("hello"), estimate, transport, options);
    // result.status: call_status::success after 2 attempts, 2 s backed off (in virtual time);
    // the 429's estimate was refunded, the 200's settled at its usage (250 tokens)
    //! [call]
    EXPECT_TRUE(result);
    EXPECT_EQ(result.status, rategov::call_status::success);
    EXPECT_EQ(result.attempts, 2u);
    EXPECT_EQ(result.backed_off, 2s);
    EXPECT_EQ(result.waited, 0s);
    ASSERT_TRUE(result.response);
    EXPECT_EQ(result.response->status, 200);
    EXPECT_EQ(clock.now(), at(2s));
    // The 429 emptied the generated bucket (the server had no tokens for us); 2 s refilled
    // 1'200 of it, and the success took its usage, 250.
    EXPECT_EQ(gov.available<m::generated>(), 950u);
}

TEST(Concepts, CallMachine) {
    manual_clock clock;
    gov_t gov(clock, rategov::per_minute(36'000).with_burst(3'600), rategov::per_minute(600));
    const rategov::cost<llm> estimate{rategov::amount<m::requests>{1},
                                      rategov::amount<m::generated>{3'600}};
    //! [call_machine]
    gov.charge(estimate); // another request has just used the whole burst

    rategov::call_machine machine(gov, estimate, rategov::call_options<gov_t>{});
    using action = decltype(machine)::action;
    auto step = machine.next(); // action::wait: the tokens are ready at step.until, 6 s away
    clock.set(step.until);      // your event loop's timer fires (here: virtual time)
    step = machine.next();      // action::send: send the request now, without blocking

    rategov::response<llm> reply; // ... and when the response arrives:
    reply.status = 200;
    machine.on_response(reply);
    step = machine.next(); // action::done; machine.result().status == call_status::success
    //! [call_machine]
    EXPECT_EQ(step.what, action::done);
    EXPECT_EQ(machine.result().status, rategov::call_status::success);
    EXPECT_EQ(machine.result().attempts, 1u);
    EXPECT_EQ(machine.result().waited, 6s);
    EXPECT_EQ(clock.now(), at(6s));
}

TEST(Concepts, CallMachineWaitsFirst) {
    // The first step of the snippet above, checked on its own.
    manual_clock clock;
    gov_t gov(clock, rategov::per_minute(36'000).with_burst(3'600), rategov::per_minute(600));
    const rategov::cost<llm> estimate{rategov::amount<m::requests>{1},
                                      rategov::amount<m::generated>{3'600}};
    gov.charge(estimate);
    rategov::call_machine machine(gov, estimate, rategov::call_options<gov_t>{});
    using action = decltype(machine)::action;
    auto step = machine.next();
    EXPECT_EQ(step.what, action::wait);
    EXPECT_EQ(step.until, at(6s));
    clock.set(step.until);
    EXPECT_EQ(machine.next().what, action::send);
    EXPECT_EQ(machine.next().what, action::in_flight); // never sends twice
}

TEST(Concepts, Priority) {
    manual_clock clock;
    gov_t gov(clock, rategov::per_minute(36'000).with_burst(3'600), rategov::per_minute(600));
    //! [priority]
    gov.set_priority_headroom(0.1); // keep 10 % of every burst for priority traffic
    const rategov::cost<llm> batch{rategov::amount<m::requests>{1},
                                   rategov::amount<m::generated>{3'240}};
    const rategov::cost<llm> urgent{rategov::amount<m::requests>{1},
                                    rategov::amount<m::generated>{360}};
    using rategov::traffic_class;
    auto a = gov.try_acquire(batch, traffic_class::regular);   // granted: 90 % of the burst
    auto b = gov.try_acquire(urgent, traffic_class::regular);  // denied: the rest is headroom
    auto c = gov.try_acquire(urgent, traffic_class::priority); // granted, from the headroom
    //! [priority]
    EXPECT_TRUE(a);
    EXPECT_EQ(b.status, rategov::acquire_status::denied);
    EXPECT_TRUE(c);
    EXPECT_EQ(gov.available<m::generated>(), 0u);
    // A regular request larger than the burst minus the headroom can never pass.
    const rategov::cost<llm> whole{rategov::amount<m::generated>{3'600}};
    EXPECT_EQ(gov.try_acquire(whole, traffic_class::regular).status,
              rategov::acquire_status::exceeds_capacity);
    // call() is regular unless told otherwise.
    EXPECT_EQ(rategov::call_options<gov_t>{}.priority, traffic_class::regular);
}

// --- 9. keyed ----------------------------------------------------------------------------------

TEST(Concepts, Keyed) {
    //! [keyed]
    manual_clock clock;
    rategov::keyed<rategov::model_key, gov_t, manual_clock> registry(
        clock, {.max_keys = 1000, .idle_after = std::chrono::minutes(10)},
        [&](const rategov::model_key& key) { // makes the limits of a new key
            return gov_t(clock, rategov::per_minute(key.variant() == "turbo" ? 12'000 : 36'000),
                         rategov::per_minute(600));
        });

    auto base = registry.get({"acct-a", "llama-v3p1-8b"});           // created on first use
    auto turbo = registry.get({"acct-a", "llama-v3p1-8b", "turbo"}); // a variant: its own limits
    auto again = registry.get({"acct-a", "llama-v3p1-8b"}); // found: the same governor as base
    auto granted = again->try_acquire({rategov::amount<m::requests>{1}});

    base.reset(); // handles hold their entries: give them back
    turbo.reset();
    again.reset();
    registry.evict_idle(); // a housekeeping sweep: both were used since the last one, kept
    clock.advance(std::chrono::minutes(10));
    auto evicted = registry.evict_idle(); // 2: unused for 10 minutes since
    //! [keyed]
    EXPECT_TRUE(granted);
    EXPECT_EQ(evicted, 2u);
    EXPECT_EQ(registry.size(), 0u);
    // What the handles held, checked again on fresh entries.
    auto b = registry.get({"acct-a", "llama-v3p1-8b"});
    auto t = registry.get({"acct-a", "llama-v3p1-8b", "turbo"});
    auto a = registry.get({"acct-a", "llama-v3p1-8b"});
    EXPECT_EQ(b.status(), rategov::keyed_status::created);
    EXPECT_EQ(a.status(), rategov::keyed_status::found);
    EXPECT_EQ(&*a, &*b);
    EXPECT_EQ(b->limit<m::generated>().count(), 36'000u);
    EXPECT_EQ(t->limit<m::generated>().count(), 12'000u);
    EXPECT_EQ(registry.size(), 2u);
    // Held entries are never evicted.
    clock.advance(1h);
    registry.evict_idle();
    registry.evict_idle();
    EXPECT_EQ(registry.size(), 2u);
}

// --- 10. nested limits -------------------------------------------------------------------------

TEST(Concepts, Nested) {
    //! [nested]
    manual_clock clock;
    using account_t = rategov::level<rategov::metrics<m::requests>, manual_clock>;
    using model_t = rategov::level<
        rategov::metrics<m::total_prompt, m::uncached_prompt, m::generated, m::in_flight>,
        manual_clock>;
    account_t account(clock, rategov::per_minute(6'000));
    model_t llama(clock, rategov::per_minute(3'600'000), rategov::per_minute(900'000),
                  rategov::per_minute(36'000), rategov::at_most(64));
    rategov::path route(account, llama); // outermost first

    using cost_t = decltype(route)::cost_type; // requests and the model's metrics
    auto r = route.reserve(
        cost_t{rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{1'200},
               rategov::amount<m::uncached_prompt>{800}, rategov::amount<m::generated>{400}});
    // r holds 1 request, the tokens, and one of the 64 slots
    r.wait();
    r.commit(cost_t{rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{1'180},
                    rategov::amount<m::uncached_prompt>{780},
                    rategov::amount<m::generated>{212}}); // every level settled, slot back

    auto too_big = route.reserve(cost_t{rategov::amount<m::uncached_prompt>{1'200'000}});
    // too_big.status() == exceeds_capacity, at once; too_big.describe() reads
    // "a request of 1.2M uncached prompt tokens exceeds the model's burst of 900k: ..."
    //! [nested]
    EXPECT_TRUE(r.status() == rategov::acquire_status::granted);
    EXPECT_EQ(account.governor.available<m::requests>(), 5'999u);
    EXPECT_EQ(llama.governor.available<m::generated>(), 36'000u - 212u);
    EXPECT_EQ(llama.slots.in_use(), 0u);
    EXPECT_EQ(too_big.status(), rategov::acquire_status::exceeds_capacity);
    EXPECT_TRUE(too_big.describe().starts_with(
        "a request of 1.2M uncached prompt tokens exceeds the model's burst of 900k: "))
        << too_big.describe();
    EXPECT_EQ(too_big.level(), 1u);
    EXPECT_EQ(clock.now(), time_point{});
}

// --- 11. testing: the provider simulator -------------------------------------------------------

TEST(Concepts, Simulator) {
    //! [simulator]
    manual_clock clock;
    rategov::testing::simulator_config config;           // the seed provider's limits, headers
    config.mode = rategov::testing::enforcement::bucket; // buckets holding 1 s of each limit
    rategov::testing::provider_simulator sim(clock, config);

    auto first = sim.submit({.prompt_tokens = 1200, .max_tokens = 400, .output_tokens = 250});
    auto second = sim.submit({.prompt_tokens = 1200, .max_tokens = 400, .output_tokens = 250});
    clock.set(first.ready_at);          // 200 ms to the first token + 250 × 10 ms: 2.7 s
    auto ok = sim.collect(first);       // 200, with its usage and the provider's headers
    auto refused = sim.collect(second); // 429: 800 tokens held, the bucket holds 600
    auto counted = sim.counters();      // submitted 2, ok 1, over_limit 1
    //! [simulator]
    EXPECT_EQ(first.ready_at, at(2700ms));
    EXPECT_EQ(ok.status, 200);
    ASSERT_TRUE(ok.usage);
    EXPECT_EQ(ok.usage->get<m::generated>(), 250u);
    EXPECT_EQ(ok.usage->get<m::total_prompt>(), 1200u);
    EXPECT_EQ(ok.headers("x-ratelimit-limit-tokens-generated"),
              std::optional<std::string_view>("600")); // 36'000 per minute, sent per second
    EXPECT_EQ(refused.status, 429);
    EXPECT_EQ(refused.headers("x-ratelimit-over-limit"), std::optional<std::string_view>("yes"));
    EXPECT_EQ(counted.submitted, 2u);
    EXPECT_EQ(counted.ok, 1u);
    EXPECT_EQ(counted.over_limit, 1u);
}

// --- 12. stores: shared memory -----------------------------------------------------------------

TEST(Concepts, SharedMemoryStore) {
    const std::string name = "/rategov-docs-" + std::to_string(::getpid());
    manual_clock clock;
    {
        //! [shm]
        using shared_gov = rategov::shm::governor<llm, manual_clock>;
        auto seg = rategov::shm::segment::open(name); // created by the first process
        shared_gov a(seg.place(rategov::model_key{"acct-1", "llama"}), clock,
                     rategov::per_minute(36'000), rategov::per_minute(600));
        // Another process (here: another governor) attaching the same key shares the limits.
        shared_gov b(seg.place(rategov::model_key{"acct-1", "llama"}), clock,
                     rategov::per_minute(36'000), rategov::per_minute(600));
        auto taken = a.try_acquire({rategov::amount<m::generated>{6'000}});
        auto left = b.available<m::generated>(); // 30'000: a's take is b's too
        //! [shm]
        EXPECT_TRUE(taken);
        EXPECT_EQ(left, 30'000u);
    }
    rategov::shm::segment::remove(name);
}
