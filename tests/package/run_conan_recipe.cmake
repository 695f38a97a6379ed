# package.conan_recipe: does what conanfile.py's `conan create` does, with plain CMake:
# export the sources the recipe lists, configure them with the options its CMakeToolchain sets,
# install into a package folder, apply its package() removals, check the layout it promises,
# write the config files CMakeDeps would generate from its package_info(), and build and run
# test_package/ against them. With python3, also runs conanfile.py and
# test_package/conanfile.py themselves on the stand-in Conan in fake_conan/ (see
# fake_conan/run_recipe.py for what that checks) and compares the two packages file for file.
# Inputs: SOURCE_DIR WORK_DIR CXX GENERATOR EXPECTED_VERSION
cmake_minimum_required(VERSION 3.21)
include(${CMAKE_CURRENT_LIST_DIR}/package_helpers.cmake)

file(REMOVE_RECURSE ${WORK_DIR})
set(export ${WORK_DIR}/export)
set(build ${WORK_DIR}/build)
set(pkg ${WORK_DIR}/package)

# exports_sources = "CMakeLists.txt", "cmake/*", "include/*", "LICENSE"
file(MAKE_DIRECTORY ${export})
file(COPY ${SOURCE_DIR}/CMakeLists.txt ${SOURCE_DIR}/cmake ${SOURCE_DIR}/include
          ${SOURCE_DIR}/LICENSE DESTINATION ${export})

# generate(): CMakeToolchain with every RATEGOV_BUILD_* option OFF (fake_conan/run_recipe.py
# checks that the recipe's generate() sets each of them).
rategov_build_options(options ${SOURCE_DIR})
list(TRANSFORM options APPEND "=OFF")
list(TRANSFORM options PREPEND "-D")

# package(): CMake configure and install, LICENSE into licenses/, share/ removed.
run(${CMAKE_COMMAND} -S ${export} -B ${build} -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX}
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=${pkg} ${options})
run(${CMAKE_COMMAND} --build ${build})
run(${CMAKE_COMMAND} --install ${build} --prefix ${pkg})
file(COPY ${export}/LICENSE DESTINATION ${pkg}/licenses)
file(REMOVE_RECURSE ${pkg}/share)

expect_header_only_build(${build} ${SOURCE_DIR})
expect_layout(${pkg} "^(include/rategov/.*\\.hpp|licenses/LICENSE)$" include/rategov/rategov.hpp
              include/rategov/config.hpp licenses/LICENSE)
expect_all_headers(${pkg} ${SOURCE_DIR})
expect_same_file("licenses/LICENSE" ${pkg}/licenses/LICENSE ${SOURCE_DIR}/LICENSE)

# --- the recipe itself, on the stand-in Conan ---------------------------------------------------
set(cmake_file_name rategov)
set(cmake_target_name rategov::rategov)
find_program(PYTHON3 python3)
if(PYTHON3)
  set(py_work ${WORK_DIR}/recipe)
  run(${PYTHON3} -I -B -u ${CMAKE_CURRENT_LIST_DIR}/fake_conan/run_recipe.py --source ${SOURCE_DIR}
      --work ${py_work} --cmake ${CMAKE_COMMAND} --cxx ${CXX} --generator ${GENERATOR}
      --expected-version ${EXPECTED_VERSION})
  message(STATUS "conanfile.py on the stand-in Conan:\n${last_output}")
  # The recipe's package() gave the same package, file for file.
  list_files(ours ${pkg})
  list_files(recipes ${py_work}/package)
  if(NOT ours STREQUAL recipes)
    message(FATAL_ERROR "the recipe's package differs from the expected one:\n"
                        "recipe:   ${recipes}\nexpected: ${ours}")
  endif()
  foreach(f IN LISTS ours)
    expect_same_file("the recipe's package" ${py_work}/package/${f} ${pkg}/${f})
  endforeach()
  # Name the config and target as the recipe's package_info() does.
  file(READ ${py_work}/package_info.json info)
  string(JSON cmake_file_name GET "${info}" cmake_file_name)
  string(JSON cmake_target_name GET "${info}" cmake_target_name)
  string(JSON include_dir GET "${info}" includedirs 0)
  if(NOT include_dir STREQUAL "include")
    message(FATAL_ERROR "package_info() includedirs: ${include_dir}")
  endif()
else()
  message(STATUS "python3 not found: conanfile.py itself was not run")
endif()

# --- what CMakeDeps generates from package_info(), and test_package/ ----------------------------
# CMakeDeps names the files <name>-config.cmake when cmake_file_name is lower case, and makes
# the target an INTERFACE IMPORTED library with the package's include directory; its version
# file is SameMajorVersion. It carries no compile features: the consumer's toolchain sets the
# C++ standard from compiler.cppstd, so test_package/ must ask for C++20 itself (and does).
set(generators ${WORK_DIR}/generators)
string(TOLOWER "${cmake_file_name}" lower)
if(lower STREQUAL cmake_file_name)
  set(config ${generators}/${cmake_file_name}-config.cmake)
  set(config_version ${generators}/${cmake_file_name}-config-version.cmake)
else()
  set(config ${generators}/${cmake_file_name}Config.cmake)
  set(config_version ${generators}/${cmake_file_name}ConfigVersion.cmake)
endif()
file(
  WRITE ${config}
  "# As Conan's CMakeDeps would write it from rategov's package_info() (a stand-in).\n"
  "if(NOT TARGET ${cmake_target_name})\n"
  "  add_library(${cmake_target_name} INTERFACE IMPORTED)\n"
  "  set_target_properties(${cmake_target_name} PROPERTIES\n"
  "    INTERFACE_INCLUDE_DIRECTORIES \"${pkg}/include\")\n"
  "endif()\n")
include(CMakePackageConfigHelpers)
write_basic_package_version_file(${config_version} VERSION ${EXPECTED_VERSION}
                                  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)

probe_package(${generators} ${WORK_DIR}/probe ${generators} ${pkg}/include "")
build_test_package(${generators} ${WORK_DIR}/test_package ${generators})
