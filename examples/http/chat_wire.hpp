// The OpenAI-compatible wire format shared by the local provider and the libcurl clients:
// the request body, the stand-in tokenizer, and the `usage` object read back into a cost.
// Not part of the library: rategov never looks inside requests or bodies.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include <rategov/rategov.hpp>

namespace chat {

namespace m = rategov::metric;
/// What the seed provider limits, per account and model.
using llm = rategov::metrics<m::requests, m::total_prompt, m::uncached_prompt, m::generated>;

/// A stand-in tokenizer: one token per 4 bytes of text, rounded up. The local provider
/// counts with it, so the clients' estimates are exact there; against a real provider an
/// estimate is only close, and each call is settled with the `usage` the provider reports.
[[nodiscard]] inline std::uint64_t count_tokens(std::string_view text) noexcept {
    return (text.size() + 3) / 4;
}

/// A chat completion request as the clients build it.
struct request {
    std::string model;
    std::string prompt; ///< one user message
    std::uint64_t max_tokens = 256;
    bool priority = false; ///< `service_tier: "priority"`

    /// The tokens the prompt counts (by the stand-in tokenizer).
    [[nodiscard]] std::uint64_t prompt_tokens() const noexcept { return count_tokens(prompt); }

    /// The JSON body of `POST /v1/chat/completions`.
    [[nodiscard]] std::string body() const {
        nlohmann::json j = {{"model", model},
                            {"messages", {{{"role", "user"}, {"content", prompt}}}},
                            {"max_tokens", max_tokens}};
        if (priority)
            j["service_tier"] = "priority";
        return j.dump();
    }

    /// The cost to reserve before sending: one request; the prompt, all of it counted as
    /// uncached (the cache hit is not known before); at most `max_tokens` generated.
    [[nodiscard]] rategov::cost<llm> estimate() const noexcept {
        const std::uint64_t p = prompt_tokens();
        return {rategov::amount<m::requests>{1}, rategov::amount<m::total_prompt>{p},
                rategov::amount<m::uncached_prompt>{p}, rategov::amount<m::generated>{max_tokens}};
    }
};

/// The cost a response body's `usage` reports, or `nullopt` when the body has none (an
/// error, or a body that is not JSON). `usage.prompt_tokens_details.cached_tokens` is the
/// cached share of the prompt (0 when absent).
[[nodiscard]] inline std::optional<rategov::cost<llm>> usage_of(std::string_view body) {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("usage") || !j["usage"].is_object())
        return std::nullopt;
    const nlohmann::json& u = j["usage"];
    auto count = [](const nlohmann::json& v) -> std::optional<std::uint64_t> {
        if (v.is_number_unsigned())
            return v.get<std::uint64_t>();
        return std::nullopt;
    };
    const auto prompt = u.contains("prompt_tokens") ? count(u["prompt_tokens"]) : std::nullopt;
    const auto completion =
        u.contains("completion_tokens") ? count(u["completion_tokens"]) : std::nullopt;
    if (!prompt || !completion)
        return std::nullopt;
    std::uint64_t cached = 0;
    if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object() &&
        u["prompt_tokens_details"].contains("cached_tokens"))
        cached = count(u["prompt_tokens_details"]["cached_tokens"]).value_or(0);
    cached = std::min(cached, *prompt);
    return rategov::cost<llm>{rategov::amount<m::requests>{1},
                              rategov::amount<m::total_prompt>{*prompt},
                              rategov::amount<m::uncached_prompt>{*prompt - cached},
                              rategov::amount<m::generated>{*completion}};
}

/// The `error.code` of an error body (`""` when there is none).
[[nodiscard]] inline std::string error_code_of(std::string_view body) {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_object() &&
        j["error"].contains("code") && j["error"]["code"].is_string())
        return j["error"]["code"].get<std::string>();
    return {};
}

} // namespace chat
