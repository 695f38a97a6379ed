# package.vcpkg_port: runs the real ports/rategov/portfile.cmake as vcpkg would, on stand-ins
# for the vcpkg helpers it calls (vcpkg_standins.cmake), then checks the package as vcpkg's
# post-build checks and a user would: the layout, the fixed-up package files found from their
# new place, pkg-config, and test_package/ built and run against the package.
# Inputs: SOURCE_DIR WORK_DIR CXX GENERATOR EXPECTED_VERSION EXPECTED_HOMEPAGE
cmake_minimum_required(VERSION 3.21)
include(${CMAKE_CURRENT_LIST_DIR}/package_helpers.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/vcpkg_standins.cmake)

file(REMOVE_RECURSE ${WORK_DIR})
set(port_dir ${SOURCE_DIR}/ports/rategov)

# --- vcpkg.json: valid JSON, the project's name and version, the two host helper ports -------
file(READ ${port_dir}/vcpkg.json manifest)
function(manifest_get out)
  string(JSON value ERROR_VARIABLE error GET "${manifest}" ${ARGN})
  if(error)
    message(FATAL_ERROR "vcpkg.json: ${error}")
  endif()
  set(${out} "${value}" PARENT_SCOPE)
endfunction()
foreach(field IN ITEMS name version homepage license)
  manifest_get(manifest_${field} ${field})
endforeach()
foreach(pair IN ITEMS "name;rategov" "version;${EXPECTED_VERSION}"
                      "homepage;${EXPECTED_HOMEPAGE}" "license;MIT")
  list(GET pair 0 field)
  list(GET pair 1 expected)
  if(NOT manifest_${field} STREQUAL expected)
    message(FATAL_ERROR "vcpkg.json: ${field} is '${manifest_${field}}', expected '${expected}'")
  endif()
endforeach()
string(JSON dependency_count LENGTH "${manifest}" dependencies)
set(host_dependencies "")
math(EXPR last "${dependency_count} - 1")
foreach(i RANGE ${last})
  manifest_get(dependency_name dependencies ${i} name)
  manifest_get(dependency_host dependencies ${i} host)
  if(dependency_host)
    list(APPEND host_dependencies ${dependency_name})
  endif()
endforeach()
list(SORT host_dependencies)
if(NOT dependency_count EQUAL 2 OR NOT host_dependencies STREQUAL "vcpkg-cmake;vcpkg-cmake-config")
  message(FATAL_ERROR "vcpkg.json: dependencies must be the host ports vcpkg-cmake and "
                      "vcpkg-cmake-config, are: ${manifest}")
endif()

# --- the portfile, with the variables vcpkg sets for it (x64-linux) ---------------------------
set(PORT ${manifest_name})
set(VERSION ${manifest_version})
set(TARGET_TRIPLET x64-linux)
set(VCPKG_TARGET_ARCHITECTURE x64)
set(VCPKG_CMAKE_SYSTEM_NAME Linux)
set(VCPKG_TARGET_IS_LINUX ON)
set(VCPKG_LIBRARY_LINKAGE static)
set(VCPKG_CRT_LINKAGE dynamic)
set(CURRENT_PORT_DIR ${port_dir})
set(CURRENT_BUILDTREES_DIR ${WORK_DIR}/buildtrees/${PORT})
set(CURRENT_PACKAGES_DIR ${WORK_DIR}/packages/${PORT}_${TARGET_TRIPLET})
set(CURRENT_INSTALLED_DIR ${WORK_DIR}/installed/${TARGET_TRIPLET})
set(VCPKG_STANDIN_CXX ${CXX})
set(VCPKG_STANDIN_GENERATOR ${GENERATOR})
file(MAKE_DIRECTORY ${CURRENT_BUILDTREES_DIR} ${CURRENT_PACKAGES_DIR} ${CURRENT_INSTALLED_DIR})

include(${port_dir}/portfile.cmake)

# --- what the portfile did -------------------------------------------------------------------
set(pkg ${CURRENT_PACKAGES_DIR})
if(NOT VCPKG_BUILD_TYPE STREQUAL "release")
  message(FATAL_ERROR "the portfile must set VCPKG_BUILD_TYPE release (header-only)")
endif()
get_property(calls GLOBAL PROPERTY VCPKG_STANDIN_CALLS)
foreach(helper IN ITEMS vcpkg_cmake_configure vcpkg_cmake_install vcpkg_cmake_config_fixup
                        vcpkg_fixup_pkgconfig vcpkg_install_copyright)
  if(NOT helper IN_LIST calls)
    message(FATAL_ERROR "the portfile never calls ${helper} (calls: ${calls})")
  endif()
endforeach()
expect_header_only_build(${CURRENT_BUILDTREES_DIR}/${TARGET_TRIPLET}-rel ${SOURCE_DIR})

# The layout vcpkg expects of a header-only port: headers, the package files in share/rategov
# (none left in share/cmake), the license as copyright, usage; no lib/, no debug/, no bin/.
expect_layout(
  ${pkg}
  "^(include/rategov/.*\\.hpp|share/rategov/(rategovConfig\\.cmake|rategovConfigVersion\\.cmake|rategovTargets\\.cmake|copyright|usage)|share/pkgconfig/rategov\\.pc)$"
  include/rategov/rategov.hpp share/rategov/rategovConfig.cmake
  share/rategov/rategovConfigVersion.cmake share/rategov/rategovTargets.cmake
  share/rategov/copyright share/rategov/usage share/pkgconfig/rategov.pc)
foreach(dir IN ITEMS share/cmake lib debug bin)
  if(EXISTS ${pkg}/${dir})
    message(FATAL_ERROR "the package holds ${dir}/")
  endif()
endforeach()
expect_all_headers(${pkg} ${SOURCE_DIR})
expect_same_file("copyright" ${pkg}/share/rategov/copyright ${SOURCE_DIR}/LICENSE)
expect_same_file("usage" ${pkg}/share/rategov/usage ${port_dir}/usage)
file(READ ${port_dir}/usage usage)
foreach(line IN ITEMS "find_package(rategov CONFIG REQUIRED)"
                      "target_link_libraries(main PRIVATE rategov::rategov)")
  string(FIND "${usage}" "${line}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "usage does not say: ${line}")
  endif()
endforeach()
# No absolute path into the staging or build folders survives (vcpkg's post-build check).
file(GLOB_RECURSE package_files ${pkg}/share/*)
foreach(f IN LISTS package_files)
  file(READ ${f} text)
  string(FIND "${text}" "${WORK_DIR}" at)
  if(NOT at EQUAL -1)
    message(FATAL_ERROR "${f} holds an absolute path into ${WORK_DIR}")
  endif()
endforeach()

# --- the package used from its new place -------------------------------------------------------
# pkg-config: the rewritten .pc gives the package's include directory.
find_program(PKG_CONFIG pkg-config REQUIRED)
set(ENV{PKG_CONFIG_PATH} ${pkg}/share/pkgconfig)
run(${PKG_CONFIG} --cflags rategov)
unset(ENV{PKG_CONFIG_PATH})
string(STRIP "${last_output}" cflags)
if(NOT cflags MATCHES "(^| )-I([^ ]+)( |$)")
  message(FATAL_ERROR "pkg-config --cflags rategov gives no -I: ${cflags}")
endif()
expect_same_path("pkg-config's include directory" "${CMAKE_MATCH_2}" ${pkg}/include)
# find_package: the moved rategovConfig.cmake and rategovTargets.cmake compute the prefix.
probe_package(${pkg} ${WORK_DIR}/probe ${pkg}/share/rategov ${pkg}/include ${pkg})
build_test_package(${pkg} ${WORK_DIR}/test_package ${pkg}/share/rategov)
