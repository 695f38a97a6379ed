// event_loop: the non-blocking form. 64 calls in flight at once on one thread: each call is
// a rategov::call_machine, which never waits and never sends — it says "wait until t",
// "send now" or "done", and the event loop does the rest. Here the loop runs in virtual
// time over a timer queue; with Asio or libcurl's multi interface it is the same shape.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <queue>
#include <vector>

#include <rategov/rategov.hpp>

#include "stand_in_provider.hpp"

using namespace std::chrono_literals;
using example::chat_request;
using example::llm;
namespace m = rategov::metric;

using clock_type = rategov::testing::manual_clock;
using governor_type = rategov::governor<llm, clock_type>;
using options_type =
    rategov::call_options<governor_type, rategov::feedback::fireworks_profile<llm>>;
using machine = rategov::call_machine<governor_type, options_type>;

// A timer queue: (time, callback), earliest first.
struct event {
    clock_type::time_point at;
    std::uint64_t order; // ties in submission order
    std::function<void()> run;
    bool operator>(const event& o) const { return at != o.at ? at > o.at : order > o.order; }
};
std::priority_queue<event, std::vector<event>, std::greater<>> timers;
std::uint64_t submitted = 0;
void at(clock_type::time_point t, std::function<void()> f) {
    timers.push({t, submitted++, std::move(f)});
}

int main() {
    clock_type clock;
    example::stand_in_provider<clock_type> provider(clock);
    governor_type gov(clock, rategov::per_minute(600), rategov::per_minute(3'600'000),
                      rategov::per_minute(900'000), rategov::per_minute(36'000));
    rategov::adaptive_limits<governor_type> adaptive(gov);
    adaptive.bound<m::generated>(
        {rategov::per_minute(12'000), rategov::per_minute(36'000), rategov::per_minute(360'000)});

    const chat_request req{"llama-v3p1-8b", 1200, 400};
    const rategov::cost<llm> estimate{
        rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{1200},
        rategov::amount<m::uncached_prompt>{1200}, rategov::amount<m::generated>{400}};
    int ok = 0, failed = 0;

    // Drives one machine: whatever it asks for, schedule it and come back.
    std::function<void(std::shared_ptr<machine>)> drive = [&](std::shared_ptr<machine> mc) {
        const auto s = mc->next();
        switch (s.what) {
        case machine::action::wait: // a timer, not a thread
            at(s.until, [&drive, mc] { drive(mc); });
            break;
        case machine::action::send: // the response arrives 2 s later
            at(clock.now() + 2s, [&, mc] {
                mc->on_response(provider.answer(req));
                drive(mc);
            });
            break;
        case machine::action::in_flight: // not asked here: we call next() after a response
            break;
        case machine::action::done:
            (mc->result() ? ok : failed) += 1;
            break;
        }
    };

    for (int i = 0; i < 256; ++i) {
        options_type opt;
        opt.adaptive = &adaptive;
        opt.deadline = clock.now() + 10min;
        drive(std::make_shared<machine>(gov, estimate, opt));
    }
    while (!timers.empty()) {
        event e = timers.top();
        timers.pop();
        clock.set(e.at > clock.now() ? e.at : clock.now()); // the loop's own time keeping
        e.run();
    }

    const double minutes =
        std::chrono::duration<double>(clock.now().time_since_epoch()).count() / 60;
    std::printf("%d of 256 concurrent calls succeeded (%d failed) in %.1f virtual minutes; "
                "%llu rejected by the provider\n",
                ok, failed, minutes, static_cast<unsigned long long>(provider.rejected));
    return ok == 256 ? 0 : 1;
}
