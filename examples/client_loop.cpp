// client_loop: a complete rate-governed client for the seed provider — one short function
// around your own HTTP call — run here in virtual time against a stand-in provider.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <utility>

#include <rategov/rategov.hpp>

#include "stand_in_provider.hpp"

using namespace std::chrono_literals;
using example::chat_request;
using example::llm;
namespace m = rategov::metric;

// In production: rategov::steady_clock, and the transport calls your HTTP library.
using clock_type = rategov::testing::manual_clock;
using governor_type = rategov::governor<llm, clock_type>;

class llm_client {
public:
    template <class Transport>
    llm_client(const clock_type& clock, Transport transport)
        // The seed provider's starting limits for an account and model.
        : m_gov(clock, rategov::per_minute(600), rategov::per_minute(3'600'000),
                rategov::per_minute(900'000), rategov::per_minute(36'000))
        , m_transport(std::move(transport)) {
        // The generated-token limit adapts between 12k and 360k per minute.
        m_adaptive.bound<m::generated>({rategov::per_minute(12'000), rategov::per_minute(36'000),
                                        rategov::per_minute(360'000)});
    }

    // The whole client: reserve the estimate, send, settle the real usage, learn the limits
    // from the headers, back off (honouring Retry-After) and retry within the deadline.
    auto complete(const chat_request& req, std::chrono::seconds timeout) {
        rategov::call_options<governor_type, rategov::feedback::fireworks_profile<llm>> opt;
        opt.adaptive = &m_adaptive;
        opt.budget = &m_budget;
        opt.deadline = m_gov.now() + timeout;
        const rategov::cost<llm> estimate{rategov::amount<m::requests>{1},
                                          rategov::amount<m::total_prompt>{req.prompt_tokens},
                                          rategov::amount<m::uncached_prompt>{req.prompt_tokens},
                                          rategov::amount<m::generated>{req.max_tokens}};
        return rategov::call(m_gov, req, estimate, m_transport, opt);
    }

    const governor_type& governor() const { return m_gov; }

private:
    governor_type m_gov;
    rategov::adaptive_limits<governor_type> m_adaptive{m_gov};
    rategov::backoff::retry_budget m_budget;
    std::function<rategov::response<llm>(const chat_request&)> m_transport;
};

int main() {
    clock_type clock;
    example::stand_in_provider<clock_type> provider(clock);
    llm_client client(clock, [&](const chat_request& req) { return provider.answer(req); });

    const auto start = clock.now();
    int ok = 0;
    unsigned attempts = 0;
    std::uint64_t generated = 0;
    for (int i = 0; i < 1000; ++i) {
        const auto r = client.complete({"llama-v3p1-8b", 1200, 400}, 60s);
        ok += r ? 1 : 0;
        attempts += r.attempts;
        if (r)
            generated += r.response->usage->get<m::generated>();
    }
    const double minutes = std::chrono::duration<double>(clock.now() - start).count() / 60;
    std::printf("%d/1000 calls succeeded in %.1f virtual minutes, %u attempts, %llu rejected "
                "by the provider\n",
                ok, minutes, attempts, static_cast<unsigned long long>(provider.rejected));
    std::printf("generated %.0f tokens/min against the provider's 30000; limit learned: %s\n",
                static_cast<double>(generated) / minutes,
                client.governor().limit<m::generated>().to_string().c_str());
    return ok == 1000 ? 0 : 1;
}
