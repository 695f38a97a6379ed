// curl_multi_client: the non-blocking form on one thread. Each call is a
// rategov::call_machine, which never waits and never sends: it says "wait until t" (the
// governor's ready_at, or a backoff), "send now" or "done". The event loop keeps a timer
// queue for the waits and hands the sends to libcurl's multi interface; one thread drives
// every call at once. The same settings, environment and report as curl_client.
//
//   build/dev/examples/http/local_provider --port 8080 &
//   build/dev/examples/http/curl_multi_client --seconds 20 --concurrency 64
#include <algorithm>
#include <cstdio>
#include <exception>
#include <optional>
#include <queue>
#include <utility>
#include <vector>

#include "client_common.hpp"

namespace {

using namespace client;

template <class Profile>
int run(const settings& s) {
    using options_type = rategov::call_options<governor_type, Profile>;
    using machine = rategov::call_machine<governor_type, options_type>;
    using action = typename machine::action;

    // One slot per call in progress: its machine, its request and its libcurl handle.
    struct slot {
        std::optional<machine> call;
        chat::request req;
        exchange x;
        std::optional<http_response> last;
    };

    governed g(s);
    report out(s);
    const auto now = [] { return rategov::steady_clock::now(); };
    const auto after = [&](double seconds) {
        return now() + std::chrono::duration_cast<time_point::duration>(
                           std::chrono::duration<double>(seconds));
    };
    const time_point end = after(s.seconds), warm = after(s.warmup_s);
    bool measuring = false, ended = false, stopping = false;

    std::unique_ptr<CURLM, CURLMcode (*)(CURLM*)> multi(curl_multi_init(), curl_multi_cleanup);
    std::vector<slot> slots(s.concurrency);
    // The timer queue: (when, slot), earliest first. A slot waits on at most one timer.
    using timer = std::pair<time_point, std::size_t>;
    std::priority_queue<timer, std::vector<timer>, std::greater<>> timers;
    std::uint64_t issued = 0;
    std::size_t in_flight = 0;

    // Runs slot i's machine until it must wait, has sent, or is done; then starts the next
    // call in that slot while the run lasts (after a pause when calls are failing).
    const auto drive = [&](std::size_t i) {
        slot& sl = slots[i];
        for (;;) {
            if (!sl.call) {
                if (now() >= end || out.stopped())
                    return;
                sl.req = make_request(s, issued++);
                sl.last.reset();
                sl.call.emplace(g.gov, sl.req.estimate(), call_options_for<Profile>(g, end));
            }
            if (out.stopped()) // the run is over: nothing more is sent
                sl.call->cancel();
            const auto step = sl.call->next();
            switch (step.what) {
            case action::wait: // not a thread asleep: a timer
                timers.push({step.until, i});
                return;
            case action::send:
                sl.x.prepare(s, sl.req);
                curl_easy_setopt(sl.x.handle(), CURLOPT_PRIVATE, reinterpret_cast<char*>(i));
                curl_multi_add_handle(multi.get(), sl.x.handle());
                ++in_flight;
                return;
            case action::in_flight: // cannot happen: next() is called after the answer
                return;
            case action::done: {
                const next_step then =
                    out.on_call(sl.call->result(), sl.last ? &*sl.last : nullptr);
                sl.call.reset();
                if (then == next_step::stop)
                    return;
                if (then == next_step::pause) { // calls are failing: a timer, then the next
                    if (!out.stopped())
                        timers.push({std::min(now() + out.pause(), end), i});
                    return;
                }
                break; // the next call in this slot, now
            }
            }
        }
    };

    for (std::size_t i = 0; i < slots.size(); ++i)
        drive(i);
    while (in_flight > 0 || !timers.empty()) {
        if (!measuring && now() >= warm) {
            out.begin_measuring(); // (a blocking GET of at most 2 s: fine for an example)
            measuring = true;
        }
        if (measuring && !ended && now() >= end) {
            out.end_measuring(); // what is still in flight finishes, outside the measure
            ended = true;
        }
        if (out.stopped() && !stopping) { // Ctrl-C or a failed run: end every wait now
            stopping = true;
            timers = {};
            for (std::size_t i = 0; i < slots.size(); ++i)
                if (slots[i].call && !slots[i].x.busy())
                    drive(i); // cancelled: done
        }
        // Timers due: drive their slots.
        while (!timers.empty() && timers.top().first <= now()) {
            const std::size_t i = timers.top().second;
            timers.pop();
            drive(i);
        }
        // Transfers: progress, then the finished ones go back to their machines.
        int running = 0;
        curl_multi_perform(multi.get(), &running);
        int queued = 0;
        while (CURLMsg* msg = curl_multi_info_read(multi.get(), &queued)) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            char* tag = nullptr;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &tag);
            const auto i = reinterpret_cast<std::size_t>(tag);
            const CURLcode code = msg->data.result;
            curl_multi_remove_handle(multi.get(), msg->easy_handle);
            --in_flight;
            slot& sl = slots[i];
            try {
                sl.last = sl.x.finish(code);
                out.on_status(sl.last->status);
                sl.call->on_response(*sl.last);
            } catch (...) { // a transport_error: the machine settles and maybe retries
                sl.last.reset();
                sl.call->on_exception(std::current_exception());
            }
            drive(i);
        }
        // Sleep in libcurl until a socket is ready or the next timer is due (≤ 50 ms).
        auto wait = std::chrono::milliseconds(50);
        if (!timers.empty())
            wait =
                std::clamp(std::chrono::ceil<std::chrono::milliseconds>(timers.top().first - now()),
                           std::chrono::milliseconds(0), wait);
        curl_multi_poll(multi.get(), nullptr, 0, static_cast<int>(wait.count()), nullptr);
    }
    if (!measuring)
        out.begin_measuring();
    if (!ended)
        out.end_measuring();
    return out.print(g.gov);
}

} // namespace

int main(int argc, char** argv) {
    return client::client_main(
        argc, argv, "curl_multi_client",
        [](const client::settings& s, auto profile) { return run<decltype(profile)>(s); });
}
