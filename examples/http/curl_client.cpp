// curl_client: a rate-governed LLM client with libcurl as the transport of rategov::call().
// Many threads run calls at once for a few seconds against an OpenAI-compatible API —
// the local provider by default — sharing one governor that learns the account's limits
// from the response headers; then it prints what it achieved.
//
//   build/dev/examples/http/local_provider --port 8080 &
//   build/dev/examples/http/curl_client --seconds 20
//
// Against a real provider (never needed for the tests):
//
//   export RATEGOV_BASE_URL=https://api.fireworks.ai/inference/v1 RATEGOV_API_KEY=fw_...
//   export RATEGOV_MODEL=accounts/fireworks/models/llama-v3p1-8b-instruct
//   build/dev/examples/http/curl_client --seconds 60 --concurrency 8 --max-tokens 64
//
// (`--headers openai` or `anthropic` reads those providers' headers.) See --help.
#include <atomic>
#include <cstdio>
#include <exception>
#include <stop_token>
#include <thread>
#include <vector>

#include "client_common.hpp"

namespace {

using namespace client;

/// The transport: one libcurl easy handle (one kept-alive connection) per worker thread.
struct curl_transport {
    const settings* s;
    exchange* x;
    report* out;

    http_response operator()(const chat::request& req) const {
        x->prepare(*s, req);
        http_response r = x->finish(curl_easy_perform(x->handle()));
        out->on_status(r.status);
        return r;
    }
};

template <class Profile>
int run(const settings& s) {
    governed g(s);
    report out(s);
    const auto after = [](double seconds) {
        return rategov::steady_clock::now() + std::chrono::duration_cast<time_point::duration>(
                                                  std::chrono::duration<double>(seconds));
    };
    const time_point end = after(s.seconds), warm = after(s.warmup_s);
    std::stop_source stop_all; // ends every wait for tokens or for a pause
    std::atomic<std::uint64_t> next{0};

    std::vector<std::jthread> workers;
    for (unsigned w = 0; w < s.concurrency; ++w)
        workers.emplace_back([&] {
            exchange x;
            const curl_transport transport{&s, &x, &out};
            while (rategov::steady_clock::now() < end && !out.stopped()) {
                const chat::request req = make_request(s, next.fetch_add(1));
                auto o = call_options_for<Profile>(g, end); // no call waits past the run
                o.stop = stop_all.get_token();
                const auto r = rategov::call(g.gov, req, req.estimate(), transport, o);
                const next_step then = out.on_call(r, r.response ? &*r.response : nullptr);
                if (then == next_step::stop)
                    break;
                if (then == next_step::pause) // calls are failing: not a storm of retries
                    rategov::sleep_until(rategov::steady_clock{},
                                         std::min(rategov::steady_clock::now() + out.pause(), end),
                                         stop_all.get_token());
            }
        });

    // The main thread keeps time: the warm-up, the end, a failed run and Ctrl-C.
    bool measuring = false;
    while (rategov::steady_clock::now() < end && !out.stopped()) {
        if (!measuring && rategov::steady_clock::now() >= warm) {
            out.begin_measuring();
            measuring = true;
        }
        std::this_thread::sleep_for(20ms);
    }
    if (!measuring)
        out.begin_measuring();
    out.end_measuring();
    stop_all.request_stop(); // a call waiting for tokens ends at once
    workers.clear();         // joined: the calls in flight finish (Ctrl-C aborts them)
    return out.print(g.gov);
}

} // namespace

int main(int argc, char** argv) {
    return client::client_main(
        argc, argv, "curl_client",
        [](const client::settings& s, auto profile) { return run<decltype(profile)>(s); });
}
