// quickstart: the smallest complete rategov program.
#include <rategov/rategov.hpp>

#include <cstdio>

int main() {
    std::printf("rategov %d.%d.%d\n", RATEGOV_VERSION_MAJOR, RATEGOV_VERSION_MINOR,
                RATEGOV_VERSION_PATCH);
    return 0;
}
