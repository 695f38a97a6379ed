// nested_limits: one account's requests limited across two models, each model's tokens and
// requests in flight limited apart — all taken in one admission through a `path`. 200 calls
// run at once through an event loop (`call_machine`, no thread per call) in virtual time: a
// call that finds no free slot waits until a `release_listener` says one was released.
#include <chrono>
#include <cstdio>
#include <memory>
#include <queue>
#include <utility>
#include <vector>

#include <rategov/rategov.hpp>

using namespace std::chrono_literals;
namespace m = rategov::metric;

using clock_type = rategov::testing::manual_clock;
using account_level = rategov::level<rategov::metrics<m::requests>, clock_type>;
using model_level = rategov::level<
    rategov::metrics<m::total_prompt, m::uncached_prompt, m::generated, m::in_flight>, clock_type>;
using path_type = rategov::path<account_level, model_level>;
using machine = rategov::call_machine<path_type>;
using response = rategov::response<path_type::metrics_type>;

// Tells the loop that a slot was released (on the loop's own thread here: a release happens
// when a response is settled).
struct wake_flag final : rategov::release_listener {
    bool raised = false;
    void on_release() noexcept override { raised = true; }
};

int main() {
    clock_type clock;
    // The account: 600 requests a minute across its models, at most 60 at once. Each model:
    // the seed provider's token limits, and at most 8 requests in flight (a response takes
    // 1 s: 16 a second for both, more than the account allows).
    account_level account(clock, rategov::per_minute(600).with_burst(60));
    model_level models[2] = {
        model_level(clock, rategov::per_minute(3'600'000), rategov::per_minute(900'000),
                    rategov::per_minute(36'000), rategov::at_most(8)),
        model_level(clock, rategov::per_minute(3'600'000), rategov::per_minute(900'000),
                    rategov::per_minute(36'000), rategov::at_most(8))};
    path_type routes[2] = {path_type(account, models[0]), path_type(account, models[1])};
    wake_flag wake;
    for (auto& mdl : models)
        mdl.slots.listen(&wake);

    const path_type::cost_type estimate{
        rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{1'000},
        rategov::amount<m::uncached_prompt>{400}, rategov::amount<m::generated>{50}};
    std::vector<std::unique_ptr<machine>> calls;
    for (int i = 0; i < 200; ++i)
        calls.push_back(
            std::make_unique<machine>(routes[i % 2], estimate, machine::options_type{}));

    // The loop: timers (a wait until a time, or a response due), calls to step now, and
    // calls parked until a slot is released.
    using event = std::pair<clock_type::time_point, std::size_t>;
    std::priority_queue<event, std::vector<event>, std::greater<>> timers;
    std::vector<std::size_t> ready, parked;
    std::vector<bool> sending(calls.size(), false);
    for (std::size_t i = 0; i < calls.size(); ++i)
        ready.push_back(i);
    int in_flight[2] = {0, 0}, most[2] = {0, 0}, done = 0, succeeded = 0, sent = 0;
    const auto start = clock.now();
    auto last_send = start;
    while (done < static_cast<int>(calls.size())) {
        while (!ready.empty()) {
            const std::size_t i = ready.back();
            ready.pop_back();
            const auto s = calls[i]->next();
            switch (s.what) {
            case machine::action::wait:
                if (s.slot)
                    parked.push_back(i); // until a release (no deadline here)
                else
                    timers.emplace(s.until, i);
                break;
            case machine::action::send: {
                const int k = static_cast<int>(i % 2);
                most[k] = std::max(most[k], ++in_flight[k]);
                ++sent;
                last_send = clock.now();
                sending[i] = true;
                timers.emplace(clock.now() + 1s, i); // the response arrives in 1 s
                break;
            }
            case machine::action::done:
                ++done;
                succeeded += calls[i]->result() ? 1 : 0;
                break;
            case machine::action::in_flight:
                break;
            }
        }
        if (std::exchange(wake.raised, false)) { // a slot was released: parked calls ask again
            ready.insert(ready.end(), parked.begin(), parked.end());
            parked.clear();
            continue;
        }
        if (timers.empty())
            break;
        const auto [at, i] = timers.top();
        timers.pop();
        if (at > clock.now())
            clock.set(at);
        if (sending[i]) {
            sending[i] = false;
            --in_flight[i % 2];
            calls[i]->on_response(response{200, {}, estimate, {}}); // settles: the slot goes back
        }
        ready.push_back(i);
    }
    const double minutes = std::chrono::duration<double>(clock.now() - start).count() / 60.0;
    std::printf("%d of %zu calls succeeded in %.2f virtual minutes\n", succeeded, calls.size(),
                minutes);
    std::printf("most in flight: %d and %d (cap 8 per model)\n", most[0], most[1]);
    // After the burst of 60 at the start, the sends follow the account's rate.
    const double rate =
        (sent - 60) / (std::chrono::duration<double>(last_send - start).count() / 60);
    std::printf(
        "account: %d sends, 60 at once, then %.0f a minute across both models (limit 600)\n", sent,
        rate);
    const bool ok = succeeded == static_cast<int>(calls.size()) && most[0] <= 8 && most[1] <= 8 &&
                    sent == 200 && rate <= 600.0 && models[0].slots.in_use() == 0 &&
                    models[1].slots.in_use() == 0;
    return ok ? 0 : 1;
}
