// Includes the umbrella header, uses the library, and checks the version it was built with.
#include <rategov/rategov.hpp>

#include <cstdio>
#include <cstring>
#include <string>

int main() {
    const std::string version = std::to_string(RATEGOV_VERSION_MAJOR) + "." +
                                std::to_string(RATEGOV_VERSION_MINOR) + "." +
                                std::to_string(RATEGOV_VERSION_PATCH);
    if (version != EXPECTED_VERSION) {
        std::printf("rategov %s, expected %s\n", version.c_str(), EXPECTED_VERSION);
        return 1;
    }
    std::printf("consumer built against rategov %s\n", version.c_str());
    return 0;
}
