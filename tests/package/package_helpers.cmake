# Helpers for the package tests' cmake -P scripts (run_consumer.cmake uses only run()).
# They read SOURCE_DIR, CXX, GENERATOR and EXPECTED_VERSION from the calling script.
set(PACKAGE_HELPERS_DIR ${CMAKE_CURRENT_LIST_DIR})

# Runs a command; fails the test with its output unless it succeeds.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "command failed (${rc}): ${cmd}\n${out}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

function(expect_same_path what actual expected)
  file(REAL_PATH "${actual}" actual_real)
  file(REAL_PATH "${expected}" expected_real)
  if(NOT actual_real STREQUAL expected_real)
    message(FATAL_ERROR "${what}: ${actual}, expected ${expected}")
  endif()
endfunction()

function(expect_same_file what actual expected)
  if(NOT EXISTS "${actual}")
    message(FATAL_ERROR "${what}: ${actual} is missing")
  endif()
  file(SHA256 "${actual}" a)
  file(SHA256 "${expected}" e)
  if(NOT a STREQUAL e)
    message(FATAL_ERROR "${what}: ${actual} differs from ${expected}")
  endif()
endfunction()

# The files under `prefix`, relative to it, sorted.
function(list_files out prefix)
  file(GLOB_RECURSE files RELATIVE "${prefix}" "${prefix}/*")
  list(SORT files)
  set(${out} "${files}" PARENT_SCOPE)
endfunction()

# Every file under `prefix` matches `allowed` (a regex on the relative path), every name after
# `allowed` exists, and no directory is empty (vcpkg's post-build checks reject empty ones).
function(expect_layout prefix allowed)
  list_files(files "${prefix}")
  foreach(f IN LISTS files)
    if(NOT f MATCHES "${allowed}")
      message(FATAL_ERROR "unexpected file in ${prefix}: ${f}")
    endif()
  endforeach()
  foreach(f IN LISTS ARGN)
    if(NOT EXISTS "${prefix}/${f}")
      message(FATAL_ERROR "missing file in ${prefix}: ${f}")
    endif()
  endforeach()
  file(GLOB_RECURSE dirs LIST_DIRECTORIES true "${prefix}/*")
  foreach(d IN LISTS dirs)
    if(IS_DIRECTORY "${d}")
      file(GLOB_RECURSE inside "${d}/*")
      if(inside STREQUAL "")
        message(FATAL_ERROR "empty directory left in the package: ${d}")
      endif()
    endif()
  endforeach()
endfunction()

# include/rategov under `prefix` holds exactly the source tree's headers, byte for byte.
function(expect_all_headers prefix source_dir)
  list_files(installed "${prefix}/include/rategov")
  file(GLOB_RECURSE sources RELATIVE "${source_dir}/include/rategov"
       "${source_dir}/include/rategov/*.hpp")
  list(SORT sources)
  if(NOT installed STREQUAL sources)
    message(FATAL_ERROR "installed headers differ from include/rategov:\n"
                        "installed: ${installed}\nsources:   ${sources}")
  endif()
  foreach(h IN LISTS sources)
    expect_same_file("header" "${prefix}/include/rategov/${h}"
                     "${source_dir}/include/rategov/${h}")
  endforeach()
endfunction()

# The RATEGOV_BUILD_* option()s that CMakeLists.txt declares, now and in the future.
function(rategov_build_options out source_dir)
  file(READ "${source_dir}/CMakeLists.txt" text)
  string(REGEX MATCHALL "option\\([ \t\n]*RATEGOV_BUILD_[A-Z0-9_]+" found "${text}")
  list(TRANSFORM found REPLACE "option\\([ \t\n]*" "")
  if(found STREQUAL "")
    message(FATAL_ERROR "no RATEGOV_BUILD_* option() in ${source_dir}/CMakeLists.txt")
  endif()
  set(${out} "${found}" PARENT_SCOPE)
endfunction()

# The build tree was configured with every RATEGOV_BUILD_* option OFF and compiled nothing.
function(expect_header_only_build build_dir source_dir)
  rategov_build_options(options "${source_dir}")
  file(STRINGS "${build_dir}/CMakeCache.txt" cache REGEX "^RATEGOV_BUILD_")
  foreach(option IN LISTS options)
    if(NOT "${option}:BOOL=OFF" IN_LIST cache)
      message(FATAL_ERROR "${option} is not OFF in ${build_dir}/CMakeCache.txt: ${cache}")
    endif()
  endforeach()
  file(GLOB_RECURSE compiled "${build_dir}/*.o" "${build_dir}/*.obj" "${build_dir}/*.a"
       "${build_dir}/*.so")
  if(compiled)
    message(FATAL_ERROR "the package build compiled something: ${compiled}")
  endif()
endfunction()

# Configures tests/package/probe against `prefix_path` and checks where find_package(rategov)
# found the package files, the version they report and the include directory they give.
# Also checks PACKAGE_PREFIX_DIR (configure_package_config_file's) when `expected_prefix` is set.
function(probe_package prefix_path work_dir expected_dir expected_include expected_prefix)
  run(${CMAKE_COMMAND} -S ${PACKAGE_HELPERS_DIR}/probe -B ${work_dir} -G ${GENERATOR}
      -DCMAKE_PREFIX_PATH=${prefix_path} -DEXPECTED_VERSION=${EXPECTED_VERSION}
      -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
  include(${work_dir}/probe.cmake)
  expect_same_path("rategov_DIR" "${probe_dir}" "${expected_dir}")
  expect_same_path("rategov::rategov's include directory" "${probe_includes}"
                   "${expected_include}")
  if(NOT probe_version STREQUAL EXPECTED_VERSION)
    message(FATAL_ERROR "rategov_VERSION ${probe_version}, expected ${EXPECTED_VERSION}")
  endif()
  if(expected_prefix)
    expect_same_path("PACKAGE_PREFIX_DIR" "${probe_prefix}" "${expected_prefix}")
  endif()
  message(STATUS "find_package(rategov ${probe_version}) from ${probe_dir}: include "
                 "${probe_includes}")
endfunction()

# Builds and runs test_package/ against `prefix_path`, as a user of the package would.
function(build_test_package prefix_path work_dir expected_dir)
  run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/test_package -B ${work_dir} -G ${GENERATOR}
      -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=${prefix_path}
      -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
  file(STRINGS ${work_dir}/CMakeCache.txt found REGEX "^rategov_DIR:")
  string(REGEX REPLACE "^rategov_DIR:[A-Z]+=" "" found "${found}")
  expect_same_path("test_package's rategov_DIR" "${found}" "${expected_dir}")
  run(${CMAKE_COMMAND} --build ${work_dir})
  run(${work_dir}/test_package)
  message(STATUS "${last_output}")
endfunction()
