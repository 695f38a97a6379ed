// Includes the umbrella header, uses the library, and checks the version it was built with.
#include <cstdio>
#include <cstring>
#include <string>

#include <rategov/rategov.hpp>

int main() {
    const std::string version = std::to_string(RATEGOV_VERSION_MAJOR) + "." +
                                std::to_string(RATEGOV_VERSION_MINOR) + "." +
                                std::to_string(RATEGOV_VERSION_PATCH);
    if (version != EXPECTED_VERSION) {
        std::printf("rategov %s, expected %s\n", version.c_str(), EXPECTED_VERSION);
        return 1;
    }
    namespace m = rategov::metric;
    using llm = rategov::metrics<m::total_prompt, m::generated>;
    rategov::governor<llm> gov(rategov::per_minute(3'600'000), rategov::per_minute(36'000));
    if (!gov.try_acquire(
            {rategov::amount<m::total_prompt>{1000}, rategov::amount<m::generated>{200}})) {
        std::printf("a fresh governor refused a small request\n");
        return 1;
    }
    std::printf("consumer built against rategov %s\n", version.c_str());
    return 0;
}
