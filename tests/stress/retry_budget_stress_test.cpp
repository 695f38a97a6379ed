// Many threads depositing into and withdrawing from one retry budget: afterwards the balance is
// exactly what the successful operations imply (no milli-retry lost or created), a race for the
// last retries grants each one exactly once, and the balance never exceeds its maximum.
#include <atomic>
#include <cstdint>
#include <latch>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <rategov/backoff/retry_budget.hpp>

#include <gtest/gtest.h>

namespace {

namespace bo = rategov::backoff;
namespace fb = rategov::feedback;

constexpr std::uint64_t total_ops = 400'000; // per test, split among the worker threads

template <class F>
void on_threads(unsigned n, F f) {
    std::latch go(n);
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < n; ++i)
        threads.emplace_back([&, i] {
            go.arrive_and_wait();
            f(i);
        });
    for (auto& t : threads)
        t.join();
}

struct tally {
    std::uint64_t calls = 0;          // on_call()
    std::uint64_t spent = 0;          // retries withdrawn by successful spends
    std::uint64_t successes = 0;      // successful spends that cost something
    std::uint64_t short_refusals = 0; // spends refused because the balance was short
};

class RetryBudgetStress : public ::testing::TestWithParam<unsigned> {};

TEST_P(RetryBudgetStress, BalanceIsExactlyInitialPlusDepositsMinusSpends) {
    const unsigned n = GetParam();
    constexpr std::uint64_t initial = 100'000;   // spends succeed for about a third of the run
    constexpr std::uint64_t deposit_milli = 737; // ratio 0.737
    bo::retry_costs costs;
    costs.over_limit = 0; // free: always granted, withdraws nothing
    costs.load_shed = 2;
    costs.retryable = 1;
    // max = 2^40 retries: never reached, so every deposit counts in full.
    bo::retry_budget budget(0.737, initial, std::uint64_t{1} << 40, costs);
    std::vector<tally> tallies(n);
    on_threads(n, [&](unsigned t) {
        std::mt19937_64 rng(1000 + t);
        tally& mine = tallies[t];
        const std::uint64_t ops = total_ops / n;
        for (std::uint64_t k = 0; k < ops; ++k) {
            switch (rng() % 6) {
            case 0:
            case 1:
                budget.on_call();
                ++mine.calls;
                break;
            case 2:
                if (budget.try_spend(fb::outcome::load_shed)) {
                    mine.spent += 2;
                    ++mine.successes;
                } else {
                    ++mine.short_refusals;
                }
                break;
            case 3:
                if (budget.try_spend(fb::outcome::retryable)) {
                    mine.spent += 1;
                    ++mine.successes;
                } else {
                    ++mine.short_refusals;
                }
                break;
            case 4:
                if (budget.try_spend(3u)) {
                    mine.spent += 3;
                    ++mine.successes;
                } else {
                    ++mine.short_refusals;
                }
                break;
            default:
                // Free, and never-retried outcomes: neither may change the balance.
                EXPECT_TRUE(budget.try_spend(fb::outcome::over_limit));
                EXPECT_FALSE(budget.try_spend(fb::outcome::fatal));
                break;
            }
        }
    });
    std::uint64_t calls = 0, spent = 0, successes = 0, refusals = 0;
    for (const auto& t : tallies) {
        calls += t.calls;
        spent += t.spent;
        successes += t.successes;
        refusals += t.short_refusals;
    }
    // Both paths were exercised under contention.
    EXPECT_GT(successes, 1000u);
    EXPECT_GT(refusals, 1000u);

    // Conservation, in milli-retries.
    const std::uint64_t in = initial * 1000 + calls * deposit_milli;
    ASSERT_GE(in, spent * 1000) << "more retries granted than were ever deposited";
    const std::uint64_t balance = in - spent * 1000;
    EXPECT_EQ(budget.available(), balance / 1000)
        << calls << " calls, " << spent << " retries spent";

    // The fractional part too: empty the whole retries, then count the deposits needed to
    // reach the next one.
    const std::uint64_t whole = budget.available();
    ASSERT_LE(whole, 0xFFFF'FFFFu);
    ASSERT_TRUE(budget.try_spend(static_cast<std::uint32_t>(whole)));
    ASSERT_EQ(budget.available(), 0u);
    const std::uint64_t remainder = balance % 1000;
    const std::uint64_t needed = (1000 - remainder + deposit_milli - 1) / deposit_milli;
    for (std::uint64_t i = 1; i < needed; ++i)
        budget.on_call();
    EXPECT_EQ(budget.available(), 0u) << "remainder above the expected " << remainder;
    budget.on_call();
    EXPECT_EQ(budget.available(), 1u) << "remainder below the expected " << remainder;
}

TEST_P(RetryBudgetStress, RaceForTheLastRetriesGrantsEachExactlyOnce) {
    const unsigned n = GetParam();
    constexpr std::uint64_t initial = total_ops / 2;
    bo::retry_budget budget(0.0, initial, initial); // no deposits: only the initial balance
    std::vector<std::uint64_t> granted(n);
    on_threads(n, [&](unsigned t) {
        std::uint64_t mine = 0;
        for (std::uint64_t k = 0; k < total_ops / n; ++k) {
            budget.on_call(); // deposits nothing
            if (budget.try_spend(fb::outcome::load_shed))
                ++mine;
        }
        granted[t] = mine;
    });
    std::uint64_t total = 0;
    for (auto g : granted)
        total += g;
    EXPECT_EQ(total, initial);
    EXPECT_EQ(budget.available(), 0u);
    EXPECT_FALSE(budget.try_spend());
}

TEST_P(RetryBudgetStress, BalanceNeverExceedsMax) {
    const unsigned n = GetParam();
    constexpr std::uint64_t max = 20, initial = 5;
    bo::retry_budget budget(0.75, initial, max);
    std::vector<std::uint64_t> spent(n), calls(n);
    std::atomic<std::uint64_t> highest{0};
    on_threads(n, [&](unsigned t) {
        std::mt19937_64 rng(77 + t);
        for (std::uint64_t k = 0; k < total_ops / n; ++k) {
            if (rng() % 3 != 0) {
                budget.on_call();
                ++calls[t];
            } else if (budget.try_spend()) {
                ++spent[t];
            }
            const std::uint64_t now = budget.available();
            std::uint64_t seen = highest.load(std::memory_order_relaxed);
            while (now > seen && !highest.compare_exchange_weak(seen, now)) {
            }
        }
    });
    std::uint64_t total_spent = 0, total_calls = 0;
    for (unsigned t = 0; t < n; ++t) {
        total_spent += spent[t];
        total_calls += calls[t];
    }
    EXPECT_EQ(highest.load(), max) << "the balance should have reached its cap, never more";
    EXPECT_LE(budget.available(), max);
    // At most initial + ratio · calls retries, in milli-retries.
    EXPECT_LE(total_spent * 1000, initial * 1000 + total_calls * 750);
    // Refilled single-threaded, it stops exactly at max.
    for (int i = 0; i < 100; ++i)
        budget.on_call();
    EXPECT_EQ(budget.available(), max);
}

std::string thread_count_name(const ::testing::TestParamInfo<unsigned>& info) {
    return std::to_string(info.param) + "_threads";
}

INSTANTIATE_TEST_SUITE_P(Threads, RetryBudgetStress, ::testing::Values(2u, 4u, 8u),
                         thread_count_name);

} // namespace
