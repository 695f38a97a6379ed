#include <stdexcept>
#include <string>
#include <type_traits>

#include <rategov/rategov.hpp>

#include <gtest/gtest.h>

namespace {

TEST(Config, VersionMacrosAgreeWithTheCombinedNumber) {
    static_assert(RATEGOV_VERSION_MAJOR >= 0 && RATEGOV_VERSION_MINOR >= 0 &&
                  RATEGOV_VERSION_PATCH >= 0);
    EXPECT_EQ(RATEGOV_VERSION,
              RATEGOV_VERSION_MAJOR * 10000 + RATEGOV_VERSION_MINOR * 100 + RATEGOV_VERSION_PATCH);
}

TEST(Config, VersionMatchesTheCMakeProjectVersion) {
    // RATEGOV_TEST_PROJECT_VERSION is passed by tests/CMakeLists.txt from project(VERSION).
    const std::string from_macros = std::to_string(RATEGOV_VERSION_MAJOR) + "." +
                                    std::to_string(RATEGOV_VERSION_MINOR) + "." +
                                    std::to_string(RATEGOV_VERSION_PATCH);
    EXPECT_EQ(from_macros, RATEGOV_TEST_PROJECT_VERSION);
}

TEST(Config, CacheLineIsAPowerOfTwo) {
    EXPECT_GE(RATEGOV_CACHE_LINE, 16);
    EXPECT_EQ(RATEGOV_CACHE_LINE & (RATEGOV_CACHE_LINE - 1), 0);
}

TEST(Config, NamesLiveInTheVersionedInlineNamespace) {
    EXPECT_TRUE((std::is_same_v<rategov::config_error, rategov::v0::config_error>));
}

TEST(Config, ConfigErrorIsAnInvalidArgumentThatKeepsItsMessage) {
    static_assert(std::is_base_of_v<std::invalid_argument, rategov::config_error>);
    try {
        rategov::detail::throw_config_error("per_minute(0): the count must be positive");
        FAIL() << "throw_config_error returned";
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(), "per_minute(0): the count must be positive");
        EXPECT_NE(dynamic_cast<const rategov::config_error*>(&e), nullptr);
    }
}

} // namespace
