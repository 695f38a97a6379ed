// Keyed limits (`rategov::keyed`, `model_key`, `keyed_limits`, and `call()` through a
// registry): creation on first use, lookups, factories (counted, per-key limits, throwing),
// `max_keys` with both `when_full` policies, idle eviction, `for_each` statistics, handles,
// custom key types, configuration errors, churn, and the client loop over a registry.
// Idleness is judged on a manual clock: everything runs in virtual time, nothing sleeps.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <rategov/keyed/keyed.hpp>
#include <rategov/rategov.hpp>
#include <rategov/testing/manual_clock.hpp>

#include <gtest/gtest.h>

RATEGOV_NAMESPACE_BEGIN
// Readable failure messages (found by argument-dependent lookup).
void PrintTo(const model_key& k, std::ostream* os) {
    *os << "model_key{\"" << k.account() << "\", \"" << k.model() << "\", \"" << k.variant()
        << "\"; hash " << k.hash() << "}";
}
RATEGOV_NAMESPACE_END

namespace {

using namespace std::chrono_literals;

namespace m = rategov::metric;
namespace fb = rategov::feedback;
using rategov::amount;
using rategov::call_status;
using rategov::keyed_status;
using rategov::model_key;
using rategov::quota;
using rategov::when_full;
using manual_clock = rategov::testing::manual_clock;
using time_point = manual_clock::time_point;

// requests: 10/s; total_prompt: 1000/s; generated: per model (see limits_factory).
using llm = rategov::metrics<m::requests, m::total_prompt, m::generated>;
using gov_t = rategov::governor<llm, manual_clock>;
using cost_t = rategov::cost<llm>;
using resp_t = rategov::response<llm>;
using limits_t = rategov::keyed_limits<gov_t>;
using registry_t = rategov::keyed<model_key, limits_t, manual_clock>;
using options_t = registry_t::options_type;
using stats_t = registry_t::stats_type;

constexpr std::size_t i_gen = llm::index_of<m::generated>;

const quota q_req = rategov::per_second(10);
const quota q_prompt = rategov::per_second(1000);
const quota q_big = rategov::per_minute(100);    // generated tokens of model "big"
const quota q_other = rategov::per_minute(1000); // generated tokens of every other model

/// Where the tests' virtual time starts (not 0: nothing special about the epoch).
const time_point t0 = time_point(1000s);
constexpr manual_clock::duration idle = 10min; // the default idle_after

options_t opts(std::size_t max_keys, when_full full = when_full::evict_idlest,
               manual_clock::duration idle_after = idle) {
    options_t o;
    o.max_keys = max_keys;
    o.full = full;
    o.idle_after = idle_after;
    return o;
}

cost_t make(std::uint64_t r, std::uint64_t p, std::uint64_t g) {
    return cost_t{amount<m::requests>{r}, amount<m::total_prompt>{p}, amount<m::generated>{g}};
}

/// What the factory saw.
struct factory_log {
    int calls = 0;
    std::vector<model_key> keys{};
    int throw_on_call = 0; // throws std::runtime_error on this call (from 1); 0: never
};

/// A factory whose limits differ per model: "big" gets 100 generated tokens a minute, every
/// other model 1000. Counts its calls and records the keys it was given.
auto limits_factory(const manual_clock& clock, factory_log& log) {
    return [clock, &log](const model_key& k) {
        ++log.calls;
        log.keys.push_back(k);
        if (log.calls == log.throw_on_call)
            throw std::runtime_error("factory failed for " + k.account());
        return limits_t(clock, q_req, q_prompt, k.model() == "big" ? q_big : q_other);
    };
}

/// The stats `for_each` reports for `key` (nullopt when it does not visit it); fails the
/// test if it visits the key more than once.
template <class Registry, class Eq = std::equal_to<typename Registry::key_type>>
std::optional<typename Registry::stats_type>
stats_of(const Registry& r, const typename Registry::key_type& key, Eq eq = {}) {
    std::optional<typename Registry::stats_type> out;
    int visits = 0;
    r.for_each([&](const auto& k, const auto&, const auto& s) {
        if (eq(k, key)) {
            out = s;
            ++visits;
        }
    });
    EXPECT_LE(visits, 1);
    return out;
}

/// The accounts of every entry `for_each` visits, sorted (duplicates kept: a double visit
/// shows).
template <class Registry>
std::vector<std::string> accounts_of(const Registry& r) {
    std::vector<std::string> out;
    r.for_each([&](const model_key& k, const auto&, const auto&) { out.push_back(k.account()); });
    std::sort(out.begin(), out.end());
    return out;
}

using accounts = std::vector<std::string>;

struct fixture : ::testing::Test {
    manual_clock clock{t0};
    factory_log log{};

    registry_t make_registry(options_t o) {
        return registry_t(clock, o, limits_factory(clock, log));
    }
};

// --- 1. get() ---------------------------------------------------------------------------------

using KeyedGet = fixture;

TEST_F(KeyedGet, FirstGetCreatesThenTheSameEntryIsFound) {
    registry_t r(clock, opts(16), limits_factory(clock, log));
    const model_key k{"acct-1", "llama", "turbo"};

    auto h1 = r.get(k);
    ASSERT_TRUE(h1);
    EXPECT_EQ(h1.status(), keyed_status::created);
    EXPECT_EQ(h1.key(), k);
    EXPECT_EQ(r.size(), 1u);
    EXPECT_EQ(log.calls, 1);

    auto h2 = r.get(k);
    ASSERT_TRUE(h2);
    EXPECT_EQ(h2.status(), keyed_status::found);
    EXPECT_EQ(&*h2, &*h1); // the same object, while held
    EXPECT_EQ(h2.operator->(), &*h1);
    EXPECT_EQ(&h2.key(), &h1.key());
    EXPECT_EQ(r.size(), 1u);
    EXPECT_EQ(log.calls, 1);

    // Held throughout by h1: still the same object after h2 is given back.
    h2.reset();
    auto h3 = r.get(k);
    EXPECT_EQ(h3.status(), keyed_status::found);
    EXPECT_EQ(&*h3, &*h1);
}

TEST_F(KeyedGet, FactoryGetsTheKeyAndLimitsDifferPerModel) {
    registry_t r(clock, opts(16), limits_factory(clock, log));
    const model_key big{"acct-1", "big"};
    const model_key small{"acct-1", "small", "turbo"};

    auto hb = r.get(big);
    auto hs = r.get(small);
    ASSERT_TRUE(hb);
    ASSERT_TRUE(hs);
    ASSERT_EQ(log.keys.size(), 2u);
    EXPECT_EQ(log.keys[0], big);
    EXPECT_EQ(log.keys[1], small);

    EXPECT_EQ(hb->governor.limit<m::generated>(), q_big);
    EXPECT_EQ(hb->governor.limit<m::generated>().count(), 100u);
    EXPECT_EQ(hs->governor.limit<m::generated>(), q_other);
    EXPECT_EQ(hs->governor.limit<m::generated>().count(), 1000u);
    // The other metrics are the same for both.
    EXPECT_EQ(hb->governor.limit<m::requests>(), q_req);
    EXPECT_EQ(hs->governor.limit<m::total_prompt>(), q_prompt);
    // Separate entries, separate state.
    EXPECT_NE(&*hb, &*hs);
    ASSERT_TRUE(hb->governor.try_acquire(make(0, 0, 60)));
    EXPECT_EQ(hb->governor.available<m::generated>(), 40u);
    EXPECT_EQ(hs->governor.available<m::generated>(), 1000u);
}

TEST_F(KeyedGet, FactoryRunsExactlyOncePerCreatedEntryHoweverManyGets) {
    registry_t r(clock, opts(16), limits_factory(clock, log));
    const std::array<model_key, 3> keys{model_key{"a", "big"}, model_key{"b", "m"},
                                        model_key{"a", "m", "v"}};
    int created = 0;
    int found = 0;
    for (int round = 0; round < 1000; ++round) {
        for (const auto& k : keys) {
            auto h = r.get(k);
            ASSERT_TRUE(h);
            (h.status() == keyed_status::created ? created : found) += 1;
        }
    }
    EXPECT_EQ(created, 3);
    EXPECT_EQ(found, 2997);
    EXPECT_EQ(log.calls, 3);
    EXPECT_EQ(r.size(), 3u);
    // Every handle given back counts one use, the creator's included: 1000 per key.
    for (const auto& k : keys) {
        const auto s = stats_of(r, k);
        ASSERT_TRUE(s);
        EXPECT_EQ(s->uses, 1000u);
        EXPECT_EQ(s->holders, 0u);
    }
}

// --- 2. find() --------------------------------------------------------------------------------

using KeyedFind = fixture;

TEST_F(KeyedFind, AbsentKeyGivesAnEmptyHandleAndNeverCreates) {
    registry_t r(clock, opts(16), limits_factory(clock, log));
    const model_key k{"acct", "llama"};
    for (int i = 0; i < 3; ++i) {
        auto h = r.find(k);
        EXPECT_FALSE(h);
        EXPECT_EQ(h.status(), keyed_status::absent);
    }
    EXPECT_EQ(r.size(), 0u);
    EXPECT_EQ(log.calls, 0);
    EXPECT_TRUE(accounts_of(r).empty());
}

TEST_F(KeyedFind, FindsWhatGetCreated) {
    registry_t r(clock, opts(16), limits_factory(clock, log));
    const model_key k{"acct", "llama"};
    const limits_t* where = nullptr;
    {
        auto h = r.get(k);
        where = &*h;
    }
    auto f = r.find(k);
    ASSERT_TRUE(f);
    EXPECT_EQ(f.status(), keyed_status::found);
    EXPECT_EQ(&*f, where);
    EXPECT_EQ(f.key(), k);
    EXPECT_EQ(log.calls, 1);
    // A key differing only in the variant is another key.
    auto other = r.find(model_key{"acct", "llama", "turbo"});
    EXPECT_FALSE(other);
    EXPECT_EQ(other.status(), keyed_status::absent);
    EXPECT_EQ(r.size(), 1u);
}

// --- 3. a throwing factory --------------------------------------------------------------------

using KeyedFactoryThrows = fixture;

TEST_F(KeyedFactoryThrows, ExceptionPropagatesAndNothingIsLeftBehind) {
    log.throw_on_call = 1; // only the first call throws
    registry_t r(clock, opts(4), limits_factory(clock, log));
    const model_key k{"acct", "llama"};

    EXPECT_THROW(static_cast<void>(r.get(k)), std::runtime_error);
    EXPECT_EQ(log.calls, 1);
    EXPECT_EQ(r.size(), 0u);
    EXPECT_TRUE(accounts_of(r).empty());
    EXPECT_FALSE(stats_of(r, k));
    auto f = r.find(k);
    EXPECT_FALSE(f);
    EXPECT_EQ(f.status(), keyed_status::absent);

    // The factory no longer throws: the same key is created normally.
    auto h = r.get(k);
    ASSERT_TRUE(h);
    EXPECT_EQ(h.status(), keyed_status::created);
    EXPECT_EQ(log.calls, 2);
    EXPECT_EQ(r.size(), 1u);
    EXPECT_EQ(accounts_of(r), accounts{"acct"});
    auto s = stats_of(r, k);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->uses, 0u); // the creator's handle counts when it is given back
    EXPECT_EQ(s->holders, 1u);
    h.reset();
    s = stats_of(r, k);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->uses, 1u); // the failed creation left no use behind
    EXPECT_EQ(s->holders, 0u);
}

TEST_F(KeyedFactoryThrows, OtherEntriesAreUntouchedAndSizeIsUnchanged) {
    log.throw_on_call = 3;
    registry_t r(clock, opts(4), limits_factory(clock, log));
    auto ha = r.get({"a", "m"});
    auto hb = r.get({"b", "m"});
    ASSERT_EQ(r.size(), 2u);
    const limits_t* a_at = &*ha;

    EXPECT_THROW(static_cast<void>(r.get({"c", "m"})), std::runtime_error);
    EXPECT_EQ(r.size(), 2u);
    EXPECT_EQ(accounts_of(r), (accounts{"a", "b"}));
    EXPECT_FALSE(stats_of(r, model_key{"c", "m"}));
    EXPECT_EQ(&*r.find({"a", "m"}), a_at);

    auto hc = r.get({"c", "m"});
    EXPECT_EQ(hc.status(), keyed_status::created);
    EXPECT_EQ(r.size(), 3u);
    EXPECT_EQ(accounts_of(r), (accounts{"a", "b", "c"}));
}

TEST_F(KeyedFactoryThrows, WhenFullTheIdlestWasEvictedBeforeTheFactoryThrew) {
    // Documents the current behaviour: with when_full::evict_idlest, room is made (the
    // idlest entry is evicted) before the factory runs, so a throwing factory still costs
    // that entry. "Nothing is created" holds; the size drops by one.
    log.throw_on_call = 3;
    registry_t r(clock, opts(2), limits_factory(clock, log));
    static_cast<void>(r.get({"a", "m"}));
    EXPECT_EQ(r.evict_idle(), 0u); // sees a's use: a is idle from t0 (b's is seen at c's)
    clock.advance(1s);
    static_cast<void>(r.get({"b", "m"}));
    clock.advance(1s);
    EXPECT_THROW(static_cast<void>(r.get({"c", "m"})), std::runtime_error);
    EXPECT_EQ(r.size(), 1u);
    EXPECT_EQ(accounts_of(r), accounts{"b"});
}

// --- 4. max_keys and when_full ----------------------------------------------------------------

using KeyedFull = fixture;

TEST_F(KeyedFull, EvictIdlestEvictsTheLeastRecentlyCreatedWhenNoneWasReused) {
    // Idleness is judged at sweeps: a sweep after each creation sees the creator's handle
    // given back (a use), so the entries are idle from t0, t0 + 1 s and t0 + 2 s. (Uses that
    // no sweep has told apart are equally recent, whatever their order.)
    registry_t r = make_registry(opts(3));
    for (const char* a : {"a", "b", "c"}) {
        EXPECT_EQ(r.get({a, "m"}).status(), keyed_status::created);
        EXPECT_EQ(r.evict_idle(), 0u);
        clock.advance(1s);
    }
    ASSERT_EQ(r.size(), 3u);

    auto hd = r.get({"d", "m"});
    ASSERT_TRUE(hd);
    EXPECT_EQ(hd.status(), keyed_status::created);
    EXPECT_EQ(r.size(), 3u);
    EXPECT_EQ(accounts_of(r), (accounts{"b", "c", "d"}));
    EXPECT_EQ(log.calls, 4);
    hd.reset();

    // Then b (idle from t0 + 1 s) goes before c (t0 + 2 s) and d (used since the last sweep).
    clock.advance(1s);
    EXPECT_EQ(r.get({"e", "m"}).status(), keyed_status::created);
    EXPECT_EQ(accounts_of(r), (accounts{"c", "d", "e"}));
    EXPECT_EQ(log.calls, 5);
}

TEST_F(KeyedFull, EvictIdlestEvictsTheLeastRecentlyUsed) {
    registry_t r = make_registry(opts(3));
    for (const char* a : {"a", "b", "c"}) {
        static_cast<void>(r.get({a, "m"}));
        EXPECT_EQ(r.evict_idle(), 0u); // sees the creator's handle given back: idle from now
        clock.advance(1s);
    }
    // a is used again (t0 + 3 s): b (idle from t0 + 1 s) is now the least recently used.
    EXPECT_EQ(r.get({"a", "m"}).status(), keyed_status::found);
    clock.advance(1s);

    // The sweep of this creation sees a's use: a is idle from t0 + 4 s.
    EXPECT_EQ(r.get({"d", "m"}).status(), keyed_status::created);
    EXPECT_EQ(accounts_of(r), (accounts{"a", "c", "d"}));
    clock.advance(1s);
    // Now c (unused since its creation, idle from t0 + 2 s) is the idlest.
    EXPECT_EQ(r.get({"e", "m"}).status(), keyed_status::created);
    EXPECT_EQ(accounts_of(r), (accounts{"a", "d", "e"}));
    EXPECT_EQ(r.size(), 3u);
    clock.advance(1s);
    // Then a (t0 + 4 s), before d (t0 + 5 s) and e (used since the last sweep).
    EXPECT_EQ(r.get({"f", "m"}).status(), keyed_status::created);
    EXPECT_EQ(accounts_of(r), (accounts{"d", "e", "f"}));
    EXPECT_EQ(log.calls, 6);
}

TEST_F(KeyedFull, EvictIdlestNeverEvictsAHeldEntry) {
    registry_t r = make_registry(opts(3));
    auto ha = r.get({"a", "m"}); // the oldest, but held throughout
    const limits_t* a_at = &*ha;
    clock.advance(1s);
    for (const char* k : {"b", "c", "d", "e", "f"}) {
        EXPECT_EQ(r.get({k, "m"}).status(), keyed_status::created) << k;
        clock.advance(1s);
        EXPECT_EQ(r.size(), 3u - (k[0] == 'b' ? 1u : 0u)) << k;
    }
    EXPECT_EQ(accounts_of(r), (accounts{"a", "e", "f"}));
    ASSERT_TRUE(ha);
    EXPECT_EQ(&*ha, a_at);
    EXPECT_EQ(ha.key(), (model_key{"a", "m"}));
    EXPECT_EQ(ha->governor.limit<m::generated>(), q_other); // still alive and intact
    EXPECT_EQ(stats_of(r, model_key{"a", "m"})->holders, 1u);
}

TEST_F(KeyedFull, EvictIdlestRefusesWhenEveryEntryIsHeld) {
    registry_t r = make_registry(opts(3));
    auto ha = r.get({"a", "m"});
    auto hb = r.get({"b", "m"});
    auto hc = r.get({"c", "m"});
    clock.advance(1h);

    auto hd = r.get({"d", "m"});
    EXPECT_FALSE(hd);
    EXPECT_EQ(hd.status(), keyed_status::full);
    EXPECT_EQ(r.size(), 3u);
    EXPECT_EQ(log.calls, 3); // the factory was not asked
    EXPECT_EQ(accounts_of(r), (accounts{"a", "b", "c"}));
    EXPECT_FALSE(r.find({"d", "m"}));

    // Once one is given back, it can be evicted for the new key.
    hb.reset();
    auto hd2 = r.get({"d", "m"});
    ASSERT_TRUE(hd2);
    EXPECT_EQ(hd2.status(), keyed_status::created);
    EXPECT_EQ(accounts_of(r), (accounts{"a", "c", "d"}));
    EXPECT_EQ(log.calls, 4);
}

TEST_F(KeyedFull, RefuseRefusesANewKeyEvenIfOthersAreIdle) {
    registry_t r = make_registry(opts(2, when_full::refuse));
    static_cast<void>(r.get({"a", "m"}));
    clock.advance(idle / 2);
    static_cast<void>(r.get({"b", "m"}));
    clock.advance(idle / 2); // a: idle for idle_after; b: half of it
    clock.advance(1h);       // both idle far beyond idle_after

    auto hc = r.get({"c", "m"});
    EXPECT_FALSE(hc);
    EXPECT_EQ(hc.status(), keyed_status::full);
    EXPECT_EQ(r.size(), 2u);
    EXPECT_EQ(log.calls, 2);
    // Existing keys are still found while full.
    EXPECT_EQ(r.get({"a", "m"}).status(), keyed_status::found);
    EXPECT_EQ(accounts_of(r), (accounts{"a", "b"}));
}

TEST_F(KeyedFull, RefuseAcceptsANewKeyAfterEvictIdleMadeRoom) {
    registry_t r = make_registry(opts(2, when_full::refuse));
    static_cast<void>(r.get({"a", "m"}));
    EXPECT_EQ(r.evict_idle(), 0u); // sees a's use: a is idle from t0
    clock.advance(idle / 2);
    static_cast<void>(r.get({"b", "m"}));
    clock.advance(idle / 2); // a: idle exactly idle_after; b: used since the last sweep

    EXPECT_EQ(r.get({"c", "m"}).status(), keyed_status::full);
    EXPECT_EQ(r.evict_idle(), 1u); // a only
    EXPECT_EQ(accounts_of(r), accounts{"b"});
    EXPECT_EQ(r.size(), 1u);
    // b's use was first seen by that sweep: idle from then, not from its creation.
    EXPECT_EQ(r.evict_idle(idle / 2), 0u);
    EXPECT_EQ(accounts_of(r), accounts{"b"});

    auto hc = r.get({"c", "m"});
    ASSERT_TRUE(hc);
    EXPECT_EQ(hc.status(), keyed_status::created);
    EXPECT_EQ(accounts_of(r), (accounts{"b", "c"}));
    EXPECT_EQ(r.get({"d", "m"}).status(), keyed_status::full);
    EXPECT_EQ(log.calls, 3);
}

// --- 5. idle eviction in virtual time -------------------------------------------------------

using KeyedIdle = fixture;

TEST_F(KeyedIdle, EvictedAtIdleAfterAndNeverEarlier) {
    registry_t r = make_registry(opts(8));
    static_cast<void>(r.get({"a", "m"}));

    EXPECT_EQ(r.evict_idle(), 0u); // at once
    clock.advance(idle / 2);
    EXPECT_EQ(r.evict_idle(), 0u);
    clock.advance(idle / 2 - 1ns); // 1 ns short of idle_after
    EXPECT_EQ(r.evict_idle(), 0u);
    EXPECT_EQ(r.size(), 1u);
    EXPECT_EQ(accounts_of(r), accounts{"a"});

    clock.advance(1ns);
    EXPECT_EQ(r.evict_idle(), 1u);
    EXPECT_EQ(r.size(), 0u);
    EXPECT_TRUE(accounts_of(r).empty());
    EXPECT_FALSE(r.find({"a", "m"}));
    EXPECT_EQ(r.evict_idle(), 0u); // nothing left
}

TEST_F(KeyedIdle, AnEntryUsedBetweenSweepsIsNotEvictedAtTheNextSweep) {
    registry_t r = make_registry(opts(8));
    static_cast<void>(r.get({"a", "m"})); // used at t0
    static_cast<void>(r.get({"b", "m"})); // used at t0 only
    EXPECT_EQ(r.evict_idle(), 0u);        // sees both uses: idle from t0
    clock.advance(idle / 2);
    EXPECT_EQ(r.get({"a", "m"}).status(), keyed_status::found); // used at t0 + idle/2
    clock.advance(idle / 2);

    EXPECT_EQ(r.evict_idle(), 1u); // b only
    EXPECT_EQ(accounts_of(r), accounts{"a"});

    // Idleness is judged at sweeps: this sweep (at t0 + idle) is the first to see a's use,
    // so a counts as idle from this sweep on — it goes idle_after after it, never earlier.
    clock.advance(idle - 1ns);
    EXPECT_EQ(r.evict_idle(), 0u);
    clock.advance(1ns);
    EXPECT_EQ(r.evict_idle(), 1u);
    EXPECT_EQ(r.size(), 0u);
}

TEST_F(KeyedIdle, AHeldEntryIsNeverEvictedHoweverLong) {
    registry_t r = make_registry(opts(8));
    auto h = r.get({"a", "m"});
    const limits_t* at = &*h;
    for (int i = 0; i < 5; ++i) {
        clock.advance(24h * 365);
        EXPECT_EQ(r.evict_idle(), 0u);
        EXPECT_EQ(r.evict_idle(0ns), 0u);
    }
    EXPECT_EQ(r.size(), 1u);
    ASSERT_TRUE(h);
    EXPECT_EQ(&*r.find({"a", "m"}), at);

    // Given back: a use, which the next sweep sees; idle from then, evicted idle_after later.
    h.reset();
    EXPECT_EQ(r.evict_idle(), 0u);
    clock.advance(idle - 1ns);
    EXPECT_EQ(r.evict_idle(), 0u);
    clock.advance(1ns);
    EXPECT_EQ(r.evict_idle(), 1u);
    EXPECT_EQ(r.size(), 0u);
}

TEST_F(KeyedIdle, AnEntryGivenBackAfterALongHoldIsNotEvictedAtTheFirstSweepAfter) {
    // The hold is the use: it ends when the handle is given back, so the entry's idle time
    // starts then (as seen by the next sweep), not at the last sweep that saw it held.
    registry_t r = make_registry(opts(8));
    const model_key k{"a", "m"};
    auto h = r.get(k);
    clock.advance(2 * idle);
    EXPECT_EQ(r.evict_idle(), 0u); // during the hold: held, so in use (idle from now at most)
    clock.advance(2 * idle);       // the last sweep saw it held 2 × idle_after ago

    h.reset(); // given back at t0 + 4 × idle
    const time_point released = clock.now();
    auto s = stats_of(r, k);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->holders, 0u);
    EXPECT_EQ(s->uses, 1u);
    EXPECT_EQ(s->idle_for, 0ns); // used since the last sweep

    // The first sweep right after: sees the use, evicts nothing, restarts the idle time.
    EXPECT_EQ(r.evict_idle(), 0u);
    EXPECT_EQ(r.size(), 1u);
    EXPECT_EQ(accounts_of(r), accounts{"a"});
    EXPECT_EQ(stats_of(r, k)->idle_for, 0ns);

    // 1 ns short of idle_after after the release: idle that long, still there.
    clock.advance(idle - 1ns);
    EXPECT_EQ(stats_of(r, k)->idle_for, idle - 1ns);
    EXPECT_EQ(r.size(), 1u);

    // idle_after after the release: the second sweep evicts it.
    clock.advance(1ns);
    EXPECT_EQ(clock.now() - released, idle);
    EXPECT_EQ(r.evict_idle(), 1u);
    EXPECT_EQ(r.size(), 0u);
    EXPECT_TRUE(accounts_of(r).empty());
    EXPECT_FALSE(r.find(k));
    // A new get makes a fresh entry.
    auto again = r.get(k);
    EXPECT_EQ(again.status(), keyed_status::created);
    EXPECT_EQ(log.calls, 2);
}

TEST_F(KeyedIdle, EvictIdleWithADurationAndItsCount) {
    // A sweep right after each use sees it: each entry is idle from its creation.
    registry_t r = make_registry(opts(8));
    static_cast<void>(r.get({"a", "m"})); // t0
    static_cast<void>(r.get({"b", "m"})); // t0
    EXPECT_EQ(r.evict_idle(), 0u);
    clock.advance(1min);
    static_cast<void>(r.get({"c", "m"})); // t0 + 1 min
    EXPECT_EQ(r.evict_idle(), 0u);
    clock.advance(1min);
    static_cast<void>(r.get({"d", "m"})); // t0 + 2 min
    EXPECT_EQ(r.evict_idle(), 0u);
    clock.advance(30s); // now t0 + 2.5 min

    EXPECT_EQ(r.evict_idle(3min), 0u);
    EXPECT_EQ(r.evict_idle(150s + 1ns), 0u);
    EXPECT_EQ(r.evict_idle(150s), 2u); // a and b, idle exactly 2.5 min
    EXPECT_EQ(accounts_of(r), (accounts{"c", "d"}));
    EXPECT_EQ(r.evict_idle(90s), 1u); // c
    EXPECT_EQ(accounts_of(r), accounts{"d"});
    EXPECT_EQ(r.evict_idle(0ns), 1u); // d: unused since its creation, idle 30 s ≥ 0
    EXPECT_EQ(r.size(), 0u);
    // Even with 0, however long ago: the sweep that first sees a use restarts the idle time
    // and evicts nothing; the next sweep evicts.
    static_cast<void>(r.get({"e", "m"}));
    clock.advance(1h);
    EXPECT_EQ(r.evict_idle(0ns), 0u);
    EXPECT_EQ(accounts_of(r), accounts{"e"});
    EXPECT_EQ(r.evict_idle(0ns), 1u);
    EXPECT_EQ(r.size(), 0u);
    // The options' idle_after is untouched by the overload.
    EXPECT_EQ(r.options().idle_after, idle);
}

TEST_F(KeyedIdle, AfterEvictionGetCreatesAFreshEntryThatForgetsTheTokensTaken) {
    // requests 10 per hour: one token every 6 min, so after a few seconds a remembered
    // bucket would still be (nearly) empty.
    const quota q_slow = rategov::per_hour(10);
    int calls = 0;
    registry_t r(clock, opts(8), [this, &calls, q_slow](const model_key&) {
        ++calls;
        return limits_t(clock, q_slow, q_prompt, q_other);
    });
    const model_key k{"a", "m"};
    {
        auto h = r.get(k);
        ASSERT_TRUE(h->governor.try_acquire(make(10, 0, 0)));
        EXPECT_EQ(h->governor.available<m::requests>(), 0u);
    }
    clock.advance(1s);
    EXPECT_EQ(r.find(k)->governor.available<m::requests>(), 0u); // remembered while it lives
    clock.advance(1s);
    EXPECT_EQ(r.evict_idle(1s), 0u); // the find's handle given back was a use: seen now
    clock.advance(1s);
    EXPECT_EQ(r.evict_idle(1s), 1u);

    auto h = r.get(k);
    ASSERT_TRUE(h);
    EXPECT_EQ(h.status(), keyed_status::created);
    EXPECT_EQ(calls, 2);
    // Eviction forgets the state: the tokens taken before it are not remembered, so the
    // fresh entry starts full — a key evicted while its bucket was empty gets a whole
    // burst again. (idle_after should exceed the time a bucket takes to refill.)
    EXPECT_EQ(h->governor.available<m::requests>(), 10u);
    // Its statistics start afresh too: no use yet (the creator's counts when given back).
    auto s = stats_of(r, k);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->uses, 0u);
    EXPECT_EQ(s->holders, 1u);
    h.reset();
    s = stats_of(r, k);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->uses, 1u);
    EXPECT_EQ(s->holders, 0u);
}

TEST_F(KeyedIdle, EvictionSweepsOnlyWhenCalled) {
    // Nothing is evicted by time alone: lookups, releases and for_each never sweep.
    registry_t r = make_registry(opts(8));
    static_cast<void>(r.get({"a", "m"}));
    EXPECT_EQ(r.evict_idle(), 0u);        // sees a's use: a is idle from t0
    static_cast<void>(r.get({"b", "m"})); // b's use is not seen by any sweep yet
    clock.advance(100 * idle);
    EXPECT_EQ(r.size(), 2u);
    EXPECT_EQ(accounts_of(r), (accounts{"a", "b"}));
    EXPECT_EQ(stats_of(r, model_key{"a", "m"})->idle_for, 100 * idle);
    EXPECT_EQ(stats_of(r, model_key{"b", "m"})->idle_for, 0ns); // used since the last sweep
    // The first sweep evicts a; it is the first to see b's use, so b is idle from now.
    EXPECT_EQ(r.evict_idle(), 1u);
    EXPECT_EQ(accounts_of(r), accounts{"b"});
    clock.advance(idle);
    EXPECT_EQ(r.evict_idle(), 1u);
    EXPECT_EQ(r.size(), 0u);
}

// --- 6. for_each ------------------------------------------------------------------------------

using KeyedForEach = fixture;

TEST_F(KeyedForEach, VisitsEveryLiveEntryOnceWithKeyValueAndStats) {
    registry_t r = make_registry(opts(8));
    auto ha = r.get({"a", "big"});
    static_cast<void>(r.get({"b", "m"}));
    static_cast<void>(r.get({"c", "m", "v"}));
    const limits_t* a_at = &*ha;

    int visits = 0;
    std::vector<std::string> seen;
    r.for_each([&](const model_key& k, const limits_t& v, const stats_t& s) {
        ++visits;
        seen.push_back(k.account());
        EXPECT_EQ(v.governor.limit<m::generated>(), k.model() == "big" ? q_big : q_other);
        if (k.account() == "a") {
            EXPECT_EQ(&v, a_at);
            EXPECT_EQ(s.holders, 1u);
            EXPECT_EQ(s.uses, 0u); // still held: not given back yet
        } else {
            EXPECT_EQ(s.holders, 0u);
            EXPECT_EQ(s.uses, 1u); // the creator's handle, given back
        }
    });
    EXPECT_EQ(visits, 3);
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (accounts{"a", "b", "c"}));
}

TEST_F(KeyedForEach, UsesCountHandlesGivenBackAndHoldersCountLiveHandles) {
    registry_t r = make_registry(opts(8));
    const model_key a{"a", "m"};
    const model_key b{"b", "m"};
    auto ha1 = r.get(a); // a: 0 uses (none given back yet), 1 holder
    static_cast<void>(r.get(b));
    static_cast<void>(r.get(b));
    static_cast<void>(r.get(b));
    static_cast<void>(r.find(b)); // a found handle given back counts too: b has 4
    auto sa = stats_of(r, a);
    auto sb = stats_of(r, b);
    ASSERT_TRUE(sa && sb);
    EXPECT_EQ(sa->uses, 0u);
    EXPECT_EQ(sa->holders, 1u);
    EXPECT_EQ(sb->uses, 4u);
    EXPECT_EQ(sb->holders, 0u);

    auto ha2 = r.get(a);
    auto ha3 = r.find(a);
    sa = stats_of(r, a);
    EXPECT_EQ(sa->uses, 0u); // lookups take holds; they count nothing until given back
    EXPECT_EQ(sa->holders, 3u);
    ha2.reset();
    sa = stats_of(r, a);
    EXPECT_EQ(sa->uses, 1u);
    EXPECT_EQ(sa->holders, 2u);
    ha1.reset();
    ha3.reset();
    sa = stats_of(r, a);
    EXPECT_EQ(sa->holders, 0u);
    EXPECT_EQ(sa->uses, 3u);
    // for_each itself is not a use.
    EXPECT_EQ(stats_of(r, a)->uses, 3u);
    // An absent key's failed find is not a use of anything else (different hashes).
    static_cast<void>(r.find({"zzz", "m"}));
    EXPECT_EQ(stats_of(r, a)->uses, 3u);
    EXPECT_EQ(stats_of(r, b)->uses, 4u);
}

TEST_F(KeyedForEach, IdleForIsZeroInUseAndGrowsInVirtualTimeWhenIdle) {
    registry_t r = make_registry(opts(8));
    const model_key a{"a", "m"}, b{"b", "m"}, c{"c", "m"};
    auto ha = r.get(a);          // held
    static_cast<void>(r.get(b)); // created at t0 ...
    static_cast<void>(r.get(c)); // created at t0, never used again
    // Before any sweep, every entry counts as in use: b's and c's creators' handles were
    // given back (uses) since the last sweep (none).
    EXPECT_EQ(stats_of(r, b)->idle_for, 0ns);
    EXPECT_EQ(stats_of(r, c)->idle_for, 0ns);
    EXPECT_EQ(r.evict_idle(1h), 0u); // a sweep at t0: b and c idle from now
    clock.advance(5s);
    static_cast<void>(r.get(b)); // ... and used again at t0 + 5 s
    clock.advance(2s);           // t0 + 7 s

    EXPECT_EQ(stats_of(r, a)->idle_for, 0ns); // held
    EXPECT_EQ(stats_of(r, b)->idle_for, 0ns); // used since the last sweep
    EXPECT_EQ(stats_of(r, c)->idle_for, 7s);  // idle since the sweep after its creation

    EXPECT_EQ(r.evict_idle(1h), 0u); // a sweep: sees b's use, evicts nothing
    EXPECT_EQ(stats_of(r, b)->idle_for, 0ns);
    clock.advance(3s); // t0 + 10 s
    EXPECT_EQ(stats_of(r, a)->idle_for, 0ns);
    EXPECT_EQ(stats_of(r, b)->idle_for, 3s);  // idle since the sweep
    EXPECT_EQ(stats_of(r, c)->idle_for, 10s); // still since t0
    clock.advance(20s);                       // t0 + 30 s
    EXPECT_EQ(stats_of(r, b)->idle_for, 23s);
    EXPECT_EQ(stats_of(r, c)->idle_for, 30s);

    // a given back after 30 s held: that is a use, so a is in use until the next sweep
    // sees it (not idle since the last sweep that saw it held).
    ha.reset();
    EXPECT_EQ(stats_of(r, a)->uses, 1u);
    EXPECT_EQ(stats_of(r, a)->idle_for, 0ns);
    EXPECT_EQ(r.evict_idle(1h), 0u); // sees a's use: a idle from t0 + 30 s
    clock.advance(4s);               // t0 + 34 s
    EXPECT_EQ(stats_of(r, a)->idle_for, 4s);
    EXPECT_EQ(stats_of(r, b)->idle_for, 27s);
    EXPECT_EQ(stats_of(r, c)->idle_for, 34s);
    // Used again: zero until the next sweep.
    static_cast<void>(r.get(c));
    EXPECT_EQ(stats_of(r, c)->idle_for, 0ns);
    EXPECT_EQ(stats_of(r, a)->idle_for, 4s);
}

// --- 7. model_key -----------------------------------------------------------------------------

TEST(ModelKey, AccessorsEqualityAndHash) {
    const model_key k{"acct-1", "llama-v3p1-8b", "turbo"};
    EXPECT_EQ(k.account(), "acct-1");
    EXPECT_EQ(k.model(), "llama-v3p1-8b");
    EXPECT_EQ(k.variant(), "turbo");

    const model_key same{"acct-1", "llama-v3p1-8b", "turbo"};
    EXPECT_TRUE(k == same);
    EXPECT_FALSE(k != same);
    EXPECT_EQ(k.hash(), same.hash());
    EXPECT_EQ(std::hash<model_key>{}(k), k.hash());
    EXPECT_EQ(std::hash<model_key>{}(same), std::hash<model_key>{}(k));

    const model_key copy = k; // NOLINT(performance-unnecessary-copy-initialization)
    EXPECT_EQ(copy, k);
    EXPECT_EQ(copy.hash(), k.hash());

    // The variant defaults to empty.
    EXPECT_EQ(model_key("a", "b"), model_key("a", "b", ""));
    EXPECT_EQ(model_key("a", "b").variant(), "");
    EXPECT_EQ(model_key("a", "b").hash(), model_key("a", "b", "").hash());
}

TEST(ModelKey, PartsAreNotConcatenated) {
    const model_key x{"ab", "c", ""};
    const model_key y{"a", "bc", ""};
    EXPECT_NE(x, y);
    EXPECT_NE(x.hash(), y.hash());
    const model_key p{"a", "", "b"};
    const model_key q{"a", "b", ""};
    const model_key s{"", "a", "b"};
    EXPECT_NE(p, q);
    EXPECT_NE(p, s);
    EXPECT_NE(q, s);
    EXPECT_NE(p.hash(), q.hash());
    EXPECT_NE(p.hash(), s.hash());
    EXPECT_NE(q.hash(), s.hash());
}

TEST(ModelKey, VariantDistinguishes) {
    const model_key base{"a", "b", ""};
    const model_key turbo{"a", "b", "turbo"};
    EXPECT_NE(base, turbo);
    EXPECT_NE(base.hash(), turbo.hash());
    EXPECT_NE(model_key("a", "b", "x"), model_key("a", "c", "x"));
    EXPECT_NE(model_key("a", "b", "x"), model_key("z", "b", "x"));
}

TEST(ModelKey, UsableInAnUnorderedSet) {
    std::unordered_set<model_key> set;
    EXPECT_TRUE(set.insert({"a", "b", ""}).second);
    EXPECT_TRUE(set.insert({"a", "b", "turbo"}).second);
    EXPECT_TRUE(set.insert({"ab", "c", ""}).second);
    EXPECT_TRUE(set.insert({"a", "bc", ""}).second);
    EXPECT_FALSE(set.insert({"a", "b"}).second); // same as ("a", "b", "")
    EXPECT_EQ(set.size(), 4u);
    EXPECT_EQ(set.count(model_key{"a", "b", "turbo"}), 1u);
    EXPECT_EQ(set.count(model_key{"a", "b", "x"}), 0u);
}

TEST(ModelKey, DefaultConstructedEqualsAllEmptyParts) {
    // A default-constructed key has three empty parts, exactly like ("", "", ""): the two
    // must be equal (and, being equal, hash alike).
    const model_key d;
    const model_key e{"", "", ""};
    EXPECT_EQ(d.account(), e.account());
    EXPECT_EQ(d.model(), e.model());
    EXPECT_EQ(d.variant(), e.variant());
    EXPECT_EQ(d, e);
    EXPECT_EQ(d.hash(), e.hash());
    EXPECT_EQ(std::hash<model_key>{}(d), std::hash<model_key>{}(e));
}

// --- 8. a custom key type with its own Hash and KeyEqual; Value = a plain governor --------------

struct account_model {
    int account;
    int model;
};
struct account_model_hash {
    std::size_t operator()(const account_model& k) const noexcept {
        return static_cast<std::size_t>(k.account) * 1'000'003u ^ static_cast<std::size_t>(k.model);
    }
};
struct account_model_equal {
    bool operator()(const account_model& x, const account_model& y) const noexcept {
        return x.account == y.account && x.model == y.model;
    }
};
using custom_registry_t =
    rategov::keyed<account_model, gov_t, manual_clock, account_model_hash, account_model_equal>;

TEST(KeyedCustomKey, HashKeyEqualAndAPlainGovernorValue) {
    manual_clock clock{t0};
    int calls = 0;
    std::vector<std::pair<int, int>> seen;
    custom_registry_t r(clock, {.max_keys = 4}, [&](const account_model& k) {
        ++calls;
        seen.emplace_back(k.account, k.model);
        return gov_t(clock, q_req, q_prompt, k.model == 1 ? q_big : q_other); // not movable
    });
    static_assert(std::is_same_v<custom_registry_t::value_type, gov_t>);

    auto h11 = r.get({1, 1});
    auto h12 = r.get({1, 2});
    auto h21 = r.get({2, 1});
    ASSERT_TRUE(h11 && h12 && h21);
    EXPECT_EQ(h11.status(), keyed_status::created);
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(seen, (std::vector<std::pair<int, int>>{{1, 1}, {1, 2}, {2, 1}}));
    EXPECT_EQ(h11->limit<m::generated>(), q_big);
    EXPECT_EQ(h12->limit<m::generated>(), q_other);
    EXPECT_EQ(h21->limit<m::generated>(), q_big);
    EXPECT_EQ(h11.key().account, 1);
    EXPECT_EQ(h11.key().model, 1);

    ASSERT_TRUE(h11->try_acquire(make(1, 0, 30)));
    auto again = r.get({1, 1});
    EXPECT_EQ(again.status(), keyed_status::found);
    EXPECT_EQ(&*again, &*h11);
    EXPECT_EQ(again->available<m::generated>(), 70u);
    EXPECT_EQ(h21->available<m::generated>(), 100u);
    EXPECT_EQ(calls, 3);
    EXPECT_FALSE(r.find({3, 1}));
    EXPECT_EQ(r.size(), 3u);

    auto s = stats_of(r, account_model{1, 1}, account_model_equal{});
    ASSERT_TRUE(s);
    EXPECT_EQ(s->uses, 0u); // two holds, neither given back yet
    EXPECT_EQ(s->holders, 2u);
    again.reset();
    s = stats_of(r, account_model{1, 1}, account_model_equal{});
    ASSERT_TRUE(s);
    EXPECT_EQ(s->uses, 1u);
    EXPECT_EQ(s->holders, 1u);
    h11.reset();
    s = stats_of(r, account_model{1, 1}, account_model_equal{});
    ASSERT_TRUE(s);
    EXPECT_EQ(s->uses, 2u);
    EXPECT_EQ(s->holders, 0u);
    // The other entries were held, never given back: no uses.
    EXPECT_EQ(stats_of(r, account_model{1, 2}, account_model_equal{})->uses, 0u);
}

/// Every key hashes alike: lookups must tell keys apart by KeyEqual alone.
struct constant_hash {
    std::size_t operator()(const account_model&) const noexcept { return 42; }
};
using colliding_registry_t =
    rategov::keyed<account_model, gov_t, manual_clock, constant_hash, account_model_equal>;

TEST(KeyedCustomKey, KeysWithEqualHashesAreToldApartByKeyEqual) {
    manual_clock clock{t0};
    int calls = 0;
    colliding_registry_t r(clock, {.max_keys = 4}, [&](const account_model& k) {
        ++calls;
        return gov_t(clock, q_req, q_prompt, k.model == 1 ? q_big : q_other);
    });
    auto a = r.get({1, 1});
    auto b = r.get({1, 2});
    auto c = r.get({2, 2});
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(r.size(), 3u);
    EXPECT_NE(&*a, &*b);
    EXPECT_NE(&*b, &*c);
    EXPECT_EQ(&*r.find({1, 2}), &*b);
    EXPECT_EQ(&*r.find({2, 2}), &*c);
    EXPECT_EQ(r.get({1, 1}).status(), keyed_status::found);
    EXPECT_FALSE(r.find({3, 3}));
    EXPECT_EQ(a->limit<m::generated>(), q_big);
    EXPECT_EQ(b->limit<m::generated>(), q_other);

    // Evicting the first of the cluster (b and c stay held) leaves the others reachable.
    a.reset();
    EXPECT_EQ(r.evict_idle(), 0u); // a sweep: takes note of every handle given back so far
    clock.advance(idle);
    EXPECT_EQ(r.evict_idle(), 1u); // a
    EXPECT_EQ(r.size(), 2u);
    EXPECT_FALSE(r.find({1, 1}));
    EXPECT_EQ(&*r.find({2, 2}), &*c);
    EXPECT_EQ(&*r.find({1, 2}), &*b);
}

TEST(KeyedCustomKey, LookupsOfAnotherKeyWithTheSameHashAreNotUses) {
    // `uses` counts handles *of the entry* given back; a lookup of a different key whose
    // hash happens to be equal briefly holds the entry to compare keys, but must count no
    // use, or it keeps an idle entry alive forever.
    manual_clock clock{t0};
    colliding_registry_t r(clock, {.max_keys = 4}, [&](const account_model&) {
        return gov_t(clock, q_req, q_prompt, q_other);
    });
    static_cast<void>(r.get({1, 1})); // created at t0, never used again
    EXPECT_EQ(r.evict_idle(), 0u);    // sees the creator's use: idle from t0
    clock.advance(idle / 2);
    for (int i = 0; i < 5; ++i)
        EXPECT_FALSE(r.find({9, 9})); // another key, absent, same hash
    const auto s = stats_of(r, account_model{1, 1}, account_model_equal{});
    ASSERT_TRUE(s);
    EXPECT_EQ(s->uses, 1u);
    EXPECT_EQ(s->holders, 0u);
    EXPECT_EQ(s->idle_for, idle / 2); // not in use since the sweep
    clock.advance(idle / 2);
    EXPECT_EQ(r.evict_idle(), 1u); // idle since t0: due now
    EXPECT_EQ(r.size(), 0u);
}

// --- 9. configuration errors ----------------------------------------------------------------

TEST(KeyedConfig, MaxKeysOutOfRangeThrowsConfigError) {
    manual_clock clock{t0};
    factory_log log;
    EXPECT_THROW(static_cast<void>(registry_t(clock, opts(0), limits_factory(clock, log))),
                 rategov::config_error);
    EXPECT_THROW(static_cast<void>(registry_t(clock, opts((std::size_t{1} << 24) + 1),
                                              limits_factory(clock, log))),
                 rategov::config_error);
    EXPECT_THROW(
        static_cast<void>(registry_t(clock, opts(~std::size_t{0}), limits_factory(clock, log))),
        rategov::config_error);
    try {
        registry_t r(clock, opts(0), limits_factory(clock, log));
        ADD_FAILURE() << "no config_error";
    } catch (const rategov::config_error& e) {
        EXPECT_NE(std::string(e.what()).find("max_keys 0"), std::string::npos) << e.what();
    }
    // It is an invalid_argument too.
    EXPECT_THROW(static_cast<void>(registry_t(clock, opts(0), limits_factory(clock, log))),
                 std::invalid_argument);
    EXPECT_EQ(log.calls, 0);
}

TEST(KeyedConfig, MaxKeysOneWorks) {
    manual_clock clock{t0};
    factory_log log;
    registry_t r(clock, opts(1), limits_factory(clock, log));
    EXPECT_EQ(r.options().max_keys, 1u);
    {
        auto a = r.get({"a", "m"});
        EXPECT_EQ(a.status(), keyed_status::created);
        auto b = r.get({"b", "m"}); // a is held: nothing to evict
        EXPECT_FALSE(b);
        EXPECT_EQ(b.status(), keyed_status::full);
        EXPECT_EQ(r.size(), 1u);
    }
    auto b = r.get({"b", "m"}); // a given back: evicted for b
    EXPECT_EQ(b.status(), keyed_status::created);
    EXPECT_EQ(r.size(), 1u);
    EXPECT_EQ(accounts_of(r), accounts{"b"});
    EXPECT_EQ(r.get({"b", "m"}).status(), keyed_status::found);
    EXPECT_EQ(log.calls, 2);
}

TEST(KeyedConfig, DefaultOptions) {
    const options_t o;
    EXPECT_EQ(o.max_keys, 1024u);
    EXPECT_EQ(o.idle_after, std::chrono::minutes(10));
    EXPECT_EQ(o.full, when_full::evict_idlest);
}

// --- 10. handles --------------------------------------------------------------------------------

using KeyedHandle = fixture;

TEST_F(KeyedHandle, DefaultConstructedIsEmpty) {
    const registry_t::handle h;
    EXPECT_FALSE(h);
    EXPECT_EQ(h.status(), keyed_status::absent);
}

TEST_F(KeyedHandle, MoveConstructionTransfersTheHold) {
    registry_t r = make_registry(opts(4));
    const model_key k{"a", "m"};
    auto h1 = r.get(k);
    const limits_t* at = &*h1;
    EXPECT_EQ(stats_of(r, k)->holders, 1u);

    registry_t::handle h2(std::move(h1));
    EXPECT_FALSE(h1); // NOLINT(bugprone-use-after-move): moved-from is empty
    ASSERT_TRUE(h2);
    EXPECT_EQ(&*h2, at);
    EXPECT_EQ(h2.status(), keyed_status::created);
    EXPECT_EQ(stats_of(r, k)->holders, 1u); // one holder, not two, not zero
    EXPECT_EQ(stats_of(r, k)->uses, 0u);    // a move gives nothing back

    h1.reset(); // NOLINT(bugprone-use-after-move): resetting an empty handle does nothing
    EXPECT_EQ(stats_of(r, k)->holders, 1u);
    EXPECT_EQ(stats_of(r, k)->uses, 0u);
    h2.reset();
    EXPECT_FALSE(h2);
    EXPECT_EQ(stats_of(r, k)->holders, 0u);
    EXPECT_EQ(stats_of(r, k)->uses, 1u); // the one hold, given back once
    h2.reset();                          // twice: nothing more given back
    EXPECT_EQ(stats_of(r, k)->holders, 0u);
    EXPECT_EQ(stats_of(r, k)->uses, 1u);
}

TEST_F(KeyedHandle, MoveAssignmentReleasesTheOldAndTakesTheNew) {
    registry_t r = make_registry(opts(4));
    const model_key a{"a", "m"};
    const model_key b{"b", "m"};
    auto ha = r.get(a);
    auto hb = r.get(b);
    auto ha2 = r.get(a);
    ASSERT_EQ(stats_of(r, a)->holders, 2u);
    ASSERT_EQ(stats_of(r, b)->holders, 1u);

    ha2 = std::move(hb); // ha2 gives a back and takes b's hold
    EXPECT_FALSE(hb);    // NOLINT(bugprone-use-after-move)
    ASSERT_TRUE(ha2);
    EXPECT_EQ(ha2.key(), b);
    EXPECT_EQ(ha2.status(), keyed_status::created);
    EXPECT_EQ(stats_of(r, a)->holders, 1u);
    EXPECT_EQ(stats_of(r, b)->holders, 1u);

    // Self-assignment keeps the hold.
    registry_t::handle& alias = ha2;
    ha2 = std::move(alias);
    ASSERT_TRUE(ha2);
    EXPECT_EQ(stats_of(r, b)->holders, 1u);

    // Assigning an empty handle gives the hold back.
    ha2 = registry_t::handle{};
    EXPECT_FALSE(ha2);
    EXPECT_EQ(stats_of(r, b)->holders, 0u);
    // An empty handle takes a hold by assignment.
    registry_t::handle empty;
    empty = std::move(ha);
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty.key(), a);
    EXPECT_EQ(stats_of(r, a)->holders, 1u);
    empty.reset();
    EXPECT_EQ(stats_of(r, a)->holders, 0u);
    // Nothing is held: both can be evicted (a sweep first takes note of the uses).
    EXPECT_EQ(r.evict_idle(), 0u);
    clock.advance(idle);
    EXPECT_EQ(r.evict_idle(), 2u);
    EXPECT_EQ(r.size(), 0u);
}

TEST_F(KeyedHandle, AHandleMovedOutOfScopeKeepsTheEntryFromEviction) {
    registry_t r = make_registry(opts(4));
    registry_t::handle outer;
    {
        auto inner = r.get({"a", "m"});
        outer = std::move(inner);
    } // inner destroyed empty: gives nothing back
    EXPECT_EQ(stats_of(r, model_key{"a", "m"})->holders, 1u);
    EXPECT_EQ(stats_of(r, model_key{"a", "m"})->uses, 0u);
    clock.advance(10 * idle);
    EXPECT_EQ(r.evict_idle(), 0u);
    outer.reset(); // given back: a use
    EXPECT_EQ(stats_of(r, model_key{"a", "m"})->holders, 0u);
    EXPECT_EQ(stats_of(r, model_key{"a", "m"})->uses, 1u);
    EXPECT_EQ(r.evict_idle(), 0u); // sees the use: idle from now
    clock.advance(idle - 1ns);
    EXPECT_EQ(r.evict_idle(), 0u);
    clock.advance(1ns);
    EXPECT_EQ(r.evict_idle(), 1u);
}

// --- 11. churn ---------------------------------------------------------------------------------

using KeyedChurn = fixture;

std::string name_of(int i) {
    return "acct-" + std::to_string(i);
}

TEST_F(KeyedChurn, HundredThousandKeysThroughEvictIdle) {
    registry_t r = make_registry(opts(8));
    constexpr int n = 100'000;
    std::size_t evicted = 0;
    for (int i = 0; i < n; ++i) {
        {
            auto h = r.get({name_of(i), "m"});
            ASSERT_TRUE(h) << i;
            ASSERT_EQ(h.status(), keyed_status::created) << i;
        }
        ASSERT_LE(r.size(), 8u);
        if (r.size() == 8) {
            // The 8 creators' handles were given back since the last sweep: however long
            // ago, the first sweep to see those uses restarts their idle time and evicts
            // nothing; idle_after later, all 8 go.
            clock.advance(idle);
            ASSERT_EQ(r.evict_idle(), 0u) << i;
            clock.advance(idle);
            const std::size_t e = r.evict_idle();
            ASSERT_EQ(e, 8u) << i;
            evicted += e;
            ASSERT_EQ(r.size(), 0u);
        }
    }
    EXPECT_EQ(evicted, static_cast<std::size_t>(n)); // 100 000 is a multiple of 8
    EXPECT_EQ(log.calls, n);
    EXPECT_EQ(r.size(), 0u);
    EXPECT_TRUE(accounts_of(r).empty());
    // Lookups of absent keys (evicted or never made) still answer "absent".
    for (int i = 0; i < 1000; ++i) {
        EXPECT_FALSE(r.find({name_of(i * 97), "m"}));
        EXPECT_FALSE(r.find({"never-" + std::to_string(i), "m"}));
    }
    // And the registry still works.
    auto h = r.get({"fresh", "m"});
    EXPECT_EQ(h.status(), keyed_status::created);
    EXPECT_EQ(&*r.find({"fresh", "m"}), &*h);
    EXPECT_EQ(r.size(), 1u);
}

TEST_F(KeyedChurn, HundredThousandKeysThroughEvictIdlest) {
    // The default policy: every new key beyond 8 evicts the least recently used one.
    registry_t r = make_registry(opts(8));
    constexpr int n = 100'000;
    for (int i = 0; i < n; ++i) {
        clock.advance(1ns); // a strict order of use
        auto h = r.get({name_of(i), "m"});
        ASSERT_TRUE(h) << i;
        ASSERT_EQ(h.status(), keyed_status::created) << i;
        ASSERT_EQ(r.size(), std::min<std::size_t>(static_cast<std::size_t>(i) + 1, 8u)) << i;
    }
    EXPECT_EQ(log.calls, n);
    EXPECT_EQ(r.size(), 8u);

    // The last 8 live; everything before is gone; absent keys are absent.
    accounts last;
    for (int i = n - 8; i < n; ++i)
        last.push_back(name_of(i));
    std::sort(last.begin(), last.end());
    EXPECT_EQ(accounts_of(r), last);
    for (int i = n - 8; i < n; ++i)
        EXPECT_EQ(r.find({name_of(i), "m"}).status(), keyed_status::found) << i;
    for (int i = 0; i < 1000; ++i) {
        EXPECT_FALSE(r.find({name_of(i), "m"}));
        EXPECT_FALSE(r.find({name_of(n - 9 - i), "m"}));
        EXPECT_FALSE(r.find({"never-" + std::to_string(i), "m"}));
    }

    // Then everything idles out: the registry is empty and still answers correctly. (The
    // finds above were uses — their handles were given back — and so was the last
    // creator's: a first sweep takes note of them.)
    EXPECT_EQ(r.evict_idle(), 0u);
    clock.advance(idle);
    EXPECT_EQ(r.evict_idle(), 8u);
    EXPECT_EQ(r.size(), 0u);
    for (int i = n - 8; i < n; ++i)
        EXPECT_FALSE(r.find({name_of(i), "m"})) << i;
    for (int i = 0; i < 1000; ++i)
        EXPECT_FALSE(r.find({"never-" + std::to_string(i), "m"}));
    auto h = r.get({"fresh", "m"});
    EXPECT_EQ(h.status(), keyed_status::created);
    EXPECT_EQ(r.size(), 1u);
}

// --- 12. call() through a registry --------------------------------------------------------------

struct request_t {
    int id = 0;
};
const request_t req{7};
const cost_t estimate = make(1, 100, 50);

resp_t reply(int status) {
    resp_t r;
    r.status = status;
    return r;
}

/// A fake transport: answers with `status` (and `usage` when set), counts its calls.
struct fake_transport {
    int status = 200;
    std::optional<cost_t> usage{};
    unsigned calls = 0;
    std::function<void()> during{}; // runs inside each send

    resp_t operator()(const request_t& r) {
        EXPECT_EQ(r.id, req.id);
        ++calls;
        if (during)
            during();
        resp_t out = reply(status);
        out.usage = usage;
        return out;
    }
};

using call_opts_t = rategov::call_options<gov_t>;

call_opts_t seeded(unsigned max_attempts = 5) {
    call_opts_t o;
    o.seed = 42;
    o.max_attempts = max_attempts;
    return o;
}

/// keyed_limits whose generated metric adapts between 6 000 and 60 000 a minute, starting
/// at `start`: bound in the constructor, since a keyed_limits can be neither copied nor
/// moved out of the factory after binding.
struct bound_limits : limits_t {
    bound_limits(const manual_clock& clock, std::uint64_t start)
        : limits_t(clock, q_req, q_prompt, rategov::per_minute(start)) {
        adaptive.bound<m::generated>(
            {rategov::per_minute(6'000), rategov::per_minute(start), rategov::per_minute(60'000)});
    }
};
using bound_registry_t = rategov::keyed<model_key, bound_limits, manual_clock>;

using KeyedCall = fixture;

TEST_F(KeyedCall, SuccessCreatesTheEntryAndSpendsItsTokens) {
    registry_t r = make_registry(opts(4));
    const model_key k{"acct", "llama"};
    fake_transport t;
    t.usage = make(1, 37, 12);
    t.during = [&] {
        // The call holds the entry for the whole call.
        const auto s = stats_of(r, k);
        ASSERT_TRUE(s);
        EXPECT_EQ(s->holders, 1u);
    };
    auto res = rategov::call(r, k, req, estimate, t, seeded());
    EXPECT_TRUE(static_cast<bool>(res));
    EXPECT_EQ(res.status, call_status::success);
    EXPECT_EQ(res.attempts, 1u);
    EXPECT_EQ(t.calls, 1u);
    ASSERT_TRUE(res.response.has_value());
    EXPECT_EQ(res.response->status, 200);
    ASSERT_TRUE(res.last_outcome.has_value());
    EXPECT_EQ(*res.last_outcome, fb::outcome::success);
    EXPECT_EQ(log.calls, 1);
    EXPECT_EQ(r.size(), 1u);

    auto h = r.find(k);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->governor.available<m::requests>(), 10u - 1u);
    EXPECT_EQ(h->governor.available<m::total_prompt>(), 1000u - 37u);
    EXPECT_EQ(h->governor.available<m::generated>(), 1000u - 12u);
    h.reset();
    EXPECT_EQ(stats_of(r, k)->holders, 0u); // given back when the call ended

    // A second call finds the entry (no new factory call) and spends from the same bucket.
    auto res2 = rategov::call(r, k, req, estimate, t, seeded());
    EXPECT_EQ(res2.status, call_status::success);
    EXPECT_EQ(log.calls, 1);
    EXPECT_EQ(r.find(k)->governor.available<m::total_prompt>(), 1000u - 74u);
}

TEST_F(KeyedCall, WorksWithDefaultOptionsAndAPlainGovernorValue) {
    custom_registry_t r(clock, {.max_keys = 2}, [this](const account_model&) {
        return gov_t(clock, q_req, q_prompt, q_other);
    });
    fake_transport t;
    auto res = rategov::call(r, account_model{1, 2}, req, estimate, t);
    EXPECT_EQ(res.status, call_status::success);
    EXPECT_EQ(t.calls, 1u);
    auto h = r.find({1, 2});
    ASSERT_TRUE(h);
    // No usage reported: the estimate is kept.
    EXPECT_EQ(h->available<m::total_prompt>(), 1000u - 100u);
    EXPECT_EQ(h->available<m::generated>(), 1000u - 50u);
}

TEST_F(KeyedCall, TooManyRequestsLowersThatEntrysAdaptiveLimit) {
    bound_registry_t r(clock, opts(4), [this](const model_key& k) {
        return bound_limits(clock, k.model() == "big" ? 12'000 : 30'000);
    });
    const model_key k{"acct", "llama"};
    const model_key other{"acct", "mistral"};
    {
        auto ho = r.get(other);
        ASSERT_EQ(ho->adaptive.current(i_gen).count(), 30'000u);
    }
    fake_transport t;
    t.status = 429;
    auto res = rategov::call(r, k, req, estimate, t, seeded(1));
    EXPECT_EQ(res.status, call_status::retries_exhausted);
    EXPECT_EQ(res.attempts, 1u);
    EXPECT_EQ(t.calls, 1u);
    ASSERT_TRUE(res.last_outcome.has_value());
    EXPECT_EQ(*res.last_outcome, fb::outcome::over_limit);

    auto h = r.find(k);
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->adaptive.bounded(i_gen));
    EXPECT_EQ(h->adaptive.current(i_gen).count(), 21'000u); // 30 000 × 0.7
    EXPECT_EQ(h->governor.limit<m::generated>().count(), 21'000u);
    EXPECT_EQ(h->governor.available<m::generated>(), 0u);
    // The other entry's limits are its own.
    auto ho = r.find(other);
    EXPECT_EQ(ho->adaptive.current(i_gen).count(), 30'000u);
    EXPECT_EQ(ho->governor.limit<m::generated>().count(), 30'000u);
    EXPECT_EQ(ho->governor.available<m::generated>(), 30'000u);
}

TEST_F(KeyedCall, AdaptiveBoundThroughTheHandleAfterCreationIsUsedToo) {
    // With plain keyed_limits the bounds can be set after creation, through a handle.
    registry_t r = make_registry(opts(4));
    const model_key k{"acct", "llama"};
    {
        auto h = r.get(k);
        ASSERT_EQ(h.status(), keyed_status::created);
        h->adaptive.bound<m::generated>(
            {rategov::per_minute(6'000), rategov::per_minute(30'000), rategov::per_minute(60'000)});
    }
    fake_transport t;
    t.status = 429;
    auto res = rategov::call(r, k, req, estimate, t, seeded(1));
    EXPECT_EQ(res.status, call_status::retries_exhausted);
    EXPECT_EQ(r.find(k)->adaptive.current(i_gen).count(), 21'000u);
    EXPECT_EQ(r.find(k)->governor.limit<m::generated>().count(), 21'000u);
}

TEST_F(KeyedCall, AnAdaptiveGivenInTheOptionsIsUsedInsteadOfTheEntrys) {
    bound_registry_t r(clock, opts(4),
                       [this](const model_key&) { return bound_limits(clock, 30'000); });
    const model_key k{"acct", "llama"};
    auto h = r.get(k);
    rategov::adaptive_limits<gov_t> mine(h->governor); // no bounds: limits stay fixed
    fake_transport t;
    t.status = 429;
    auto o = seeded(1);
    o.adaptive = &mine;
    auto res = rategov::call(r, k, req, estimate, t, o);
    EXPECT_EQ(res.status, call_status::retries_exhausted);
    EXPECT_EQ(t.calls, 1u);
    // The entry's adaptive was not asked: the limit did not fall (the 429 still empties).
    EXPECT_EQ(h->adaptive.current(i_gen).count(), 30'000u);
    EXPECT_EQ(h->governor.limit<m::generated>().count(), 30'000u);
    EXPECT_EQ(h->governor.available<m::generated>(), 0u);
}

TEST_F(KeyedCall, UnavailableWhenFullWithEveryEntryHeld) {
    registry_t r = make_registry(opts(1));
    auto held = r.get({"a", "m"});
    fake_transport t;
    auto res = rategov::call(r, model_key{"b", "m"}, req, estimate, t, seeded());
    EXPECT_FALSE(static_cast<bool>(res));
    EXPECT_EQ(res.status, call_status::unavailable);
    EXPECT_EQ(res.attempts, 0u);
    EXPECT_EQ(t.calls, 0u); // never sent
    EXPECT_FALSE(res.response.has_value());
    EXPECT_FALSE(res.last_outcome.has_value());
    EXPECT_EQ(res.metric, llm::size);
    EXPECT_EQ(res.waited, 0ns);
    EXPECT_EQ(res.backed_off, 0ns);
    EXPECT_FALSE(res.error);
    EXPECT_EQ(r.size(), 1u);
    EXPECT_EQ(log.calls, 1);
    EXPECT_EQ(accounts_of(r), accounts{"a"});
    EXPECT_EQ(held->governor.available<m::requests>(), 10u); // untouched
    EXPECT_EQ(clock.now(), t0);

    // Once the held entry is given back, the call goes through (evicting it).
    held.reset();
    auto res2 = rategov::call(r, model_key{"b", "m"}, req, estimate, t, seeded());
    EXPECT_EQ(res2.status, call_status::success);
    EXPECT_EQ(t.calls, 1u);
    EXPECT_EQ(accounts_of(r), accounts{"b"});
}

TEST_F(KeyedCall, UnavailableWhenFullWithRefuse) {
    registry_t r = make_registry(opts(1, when_full::refuse));
    static_cast<void>(r.get({"a", "m"})); // not held, but refuse never evicts
    fake_transport t;
    auto res = rategov::call(r, model_key{"b", "m"}, req, estimate, t, seeded());
    EXPECT_EQ(res.status, call_status::unavailable);
    EXPECT_EQ(res.attempts, 0u);
    EXPECT_EQ(t.calls, 0u);
    // The existing key still calls fine.
    auto ok = rategov::call(r, model_key{"a", "m"}, req, estimate, t, seeded());
    EXPECT_EQ(ok.status, call_status::success);
    EXPECT_EQ(t.calls, 1u);
}

// --- the table stays healthy under churn; move-only factories; on_create -----------------

using KeyedTable = fixture;

/// Creates `n` distinct keys in sequence with `evict_idlest` (each new key beyond the bound
/// evicts one) and checks after every step that probes stay short: at least a quarter of the
/// slots are empty (an empty slot ends every probe).
void churn_keeps_empty_slots(registry_t& r, manual_clock& clock, int n) {
    for (int i = 0; i < n; ++i) {
        clock.advance(1ns);
        ASSERT_TRUE(r.get({"k" + std::to_string(i), "m"}));
        if (i % 97 == 0 || i == n - 1) {
            const auto t = r.table();
            ASSERT_EQ(t.live + t.tombstones + t.empty, t.slots);
            ASSERT_EQ(t.live, r.size());
            ASSERT_GE(t.empty * 4, t.slots) << "after key " << i;
            ASSERT_LE(t.tombstones * 4, t.slots) << "after key " << i;
        }
    }
}

TEST_F(KeyedTable, ChurnThroughASmallRegistryKeepsAQuarterOfTheSlotsEmpty) {
    registry_t r = make_registry(opts(8));
    churn_keeps_empty_slots(r, clock, 20'000);
    // Everything evicted: all that remains is empty slots and a few tombstones.
    clock.advance(idle);
    r.evict_idle();
    clock.advance(idle);
    r.evict_idle();
    EXPECT_EQ(r.size(), 0u);
    EXPECT_EQ(r.table().live, 0u);
    EXPECT_FALSE(r.find({"absent", "m"}));
}

TEST_F(KeyedTable, ChurnThroughALargerRegistryKeepsAQuarterOfTheSlotsEmpty) {
    registry_t r = make_registry(opts(256));
    churn_keeps_empty_slots(r, clock, 20'000);
    // The last 256 are all still found after the rebuilds.
    for (int i = 20'000 - 256; i < 20'000; ++i)
        EXPECT_EQ(r.find({"k" + std::to_string(i), "m"}).status(), keyed_status::found) << i;
}

TEST_F(KeyedTable, AMoveOnlyFactoryIsAccepted) {
    auto limit = std::make_unique<quota>(q_other); // makes the factory move-only
    registry_t r(clock, opts(4), [&, limit = std::move(limit)](const model_key&) {
        return limits_t(clock, q_req, q_prompt, *limit);
    });
    auto h = r.get({"a", "m"});
    ASSERT_TRUE(h);
    EXPECT_EQ(h->governor.limit<m::generated>(), q_other);
}

TEST_F(KeyedTable, OnCreateFinishesTheValueInPlace) {
    registry_t r(clock, opts(4), limits_factory(clock, log), [](const model_key& k, limits_t& v) {
        if (k.variant() == "turbo")
            v.adaptive.bound<m::generated>(
                {rategov::per_minute(500), rategov::per_minute(800), rategov::per_minute(2000)});
    });
    auto turbo = r.get({"a", "m", "turbo"});
    auto base = r.get({"a", "m"});
    EXPECT_TRUE(turbo->adaptive.bounded(i_gen));
    EXPECT_EQ(turbo->governor.limit<m::generated>().count(), 800u);
    EXPECT_FALSE(base->adaptive.bounded(i_gen));
    EXPECT_EQ(base->governor.limit<m::generated>(), q_other);
}

TEST_F(KeyedTable, OnCreateThatThrowsCreatesNothing) {
    int calls = 0;
    registry_t r(clock, opts(4), limits_factory(clock, log), [&](const model_key&, limits_t&) {
        if (++calls == 1)
            throw std::runtime_error("bounds rejected");
    });
    EXPECT_THROW(static_cast<void>(r.get({"a", "m"})), std::runtime_error);
    EXPECT_EQ(r.size(), 0u);
    EXPECT_FALSE(r.find({"a", "m"}));
    auto h = r.get({"a", "m"});
    EXPECT_EQ(h.status(), keyed_status::created);
    EXPECT_EQ(r.size(), 1u);
}

TEST_F(KeyedTable, WithoutSweepsBetweenCreationsTheOldestCreatedGoesFirst) {
    // No sweep between the creations: the sweep made when full sees all three used
    // together, and ranks them by when they were idle before — creation order.
    registry_t r = make_registry(opts(3));
    for (const char* name : {"x", "y", "z"}) {
        clock.advance(1s);
        ASSERT_TRUE(r.get({name, "m"}));
    }
    clock.advance(1s);
    ASSERT_EQ(r.get({"w", "m"}).status(), keyed_status::created);
    EXPECT_FALSE(r.find({"x", "m"}));
    EXPECT_TRUE(r.find({"y", "m"}));
    EXPECT_TRUE(r.find({"z", "m"}));
}

// Lookups never take the registry's mutex: with the mutex held (inside a for_each callback),
// a find of a present or an absent key and a get of a present key still return.
TEST_F(KeyedTable, LookupsDoNotWaitForTheMutex) {
    registry_t r = make_registry(opts(4));
    ASSERT_TRUE(r.get({"present", "m"}));
    std::future<bool> lookups; // outlives the callback: a blocked lookup cannot deadlock it
    std::future_status status = std::future_status::deferred;
    r.for_each([&](const model_key&, const limits_t&, const stats_t&) {
        lookups = std::async(std::launch::async, [&] {
            const bool present = static_cast<bool>(r.find({"present", "m"}));
            const bool absent = static_cast<bool>(r.find({"absent", "m"}));
            const auto got = r.get({"present", "m"}).status();
            return present && !absent && got == keyed_status::found;
        });
        status = lookups.wait_for(10s); // generous: only checks that they end meanwhile
    });
    EXPECT_EQ(status, std::future_status::ready);
    EXPECT_TRUE(lookups.get());
}

// A call names its key by anything convertible to the key type (a literal for a string key).
TEST_F(KeyedCall, KeyConvertsAtTheCall) {
    rategov::keyed<std::string, gov_t, manual_clock> r(clock, opts(4), [this](const std::string&) {
        return gov_t(clock, q_req, q_prompt, q_other);
    });
    fake_transport t;
    auto res = rategov::call(r, "acct-1", req, estimate, t);
    EXPECT_EQ(res.status, call_status::success);
    EXPECT_TRUE(r.find("acct-1"));
}

} // namespace
