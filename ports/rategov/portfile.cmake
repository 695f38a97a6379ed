# vcpkg overlay port for rategov, a header-only C++20 library.
#   vcpkg install rategov --overlay-ports=<checkout>/ports
# tests/package/run_vcpkg_port.cmake runs this file against stand-ins for the vcpkg helpers.

# Header-only: one (release) configuration is enough, nothing is compiled.
set(VCPKG_BUILD_TYPE release)

# An overlay port used from a checkout builds that checkout (the port is <root>/ports/rategov).
# A port in a registry would fetch the tagged release instead:
#   vcpkg_from_github(
#       OUT_SOURCE_PATH SOURCE_PATH
#       REPO rategov/rategov
#       REF "v${VERSION}"
#       SHA512 <sha512 of the release archive>
#       HEAD_REF main)
get_filename_component(SOURCE_PATH "${CURRENT_PORT_DIR}/../.." ABSOLUTE)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DRATEGOV_BUILD_TESTS=OFF
        -DRATEGOV_BUILD_EXAMPLES=OFF
        -DRATEGOV_BUILD_BENCH=OFF
        -DRATEGOV_BUILD_SCENARIO=OFF
        -DRATEGOV_BUILD_FUZZ=OFF
        -DRATEGOV_BUILD_DOCS=OFF)
vcpkg_cmake_install()

# rategov installs its package files to share/cmake/rategov; vcpkg wants them in share/rategov.
vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/rategov)
vcpkg_fixup_pkgconfig()

# Nothing is installed into lib/ (or debug/): drop them if they exist and are empty, which
# vcpkg's post-build checks reject. Anything inside them would be a bug, left for the checks.
foreach(dir IN ITEMS "${CURRENT_PACKAGES_DIR}/lib" "${CURRENT_PACKAGES_DIR}/debug")
    file(GLOB_RECURSE leftover "${dir}/*")
    if(IS_DIRECTORY "${dir}" AND leftover STREQUAL "")
        file(REMOVE_RECURSE "${dir}")
    endif()
endforeach()

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
