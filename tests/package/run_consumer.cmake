# Builds and runs tests/package/consumer in one of the ways a user consumes rategov.
# Inputs: MODE SOURCE_DIR BINARY_DIR WORK_DIR CXX GENERATOR EXPECTED_VERSION
cmake_minimum_required(VERSION 3.21)

include(${CMAKE_CURRENT_LIST_DIR}/package_helpers.cmake) # run()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
set(consumer ${SOURCE_DIR}/tests/package/consumer)

if(MODE MATCHES "^(install|version|pkgconfig)$")
  run(${CMAKE_COMMAND} --install ${BINARY_DIR} --prefix ${prefix})
endif()

if(MODE STREQUAL "install")
  # The install holds headers and package files only: nothing compiled.
  file(GLOB_RECURSE installed RELATIVE ${prefix} ${prefix}/*)
  foreach(f IN LISTS installed)
    if(NOT f MATCHES "^(include/rategov/.*\\.hpp|share/cmake/rategov/rategov[A-Za-z-]*\\.cmake|share/pkgconfig/rategov\\.pc)$")
      message(FATAL_ERROR "unexpected installed file: ${f}")
    endif()
  endforeach()
  foreach(f include/rategov/rategov.hpp include/rategov/config.hpp
            share/cmake/rategov/rategovConfig.cmake share/cmake/rategov/rategovConfigVersion.cmake
            share/cmake/rategov/rategovTargets.cmake share/pkgconfig/rategov.pc)
    if(NOT EXISTS ${prefix}/${f})
      message(FATAL_ERROR "missing installed file: ${f}")
    endif()
  endforeach()
endif()

if(MODE STREQUAL "pkgconfig")
  find_program(PKG_CONFIG pkg-config REQUIRED)
  set(ENV{PKG_CONFIG_PATH} ${prefix}/share/pkgconfig)
  run(${PKG_CONFIG} --cflags rategov)
  string(STRIP "${last_output}" cflags)
  separate_arguments(cflags UNIX_COMMAND "${cflags}")
  message(STATUS "pkg-config --cflags rategov: ${cflags}")
  file(MAKE_DIRECTORY ${WORK_DIR})
  run(${CXX} ${cflags} -DEXPECTED_VERSION="${EXPECTED_VERSION}" ${consumer}/main.cpp -o
      ${WORK_DIR}/app)
  run(${WORK_DIR}/app)
  message(STATUS "${last_output}")
  return()
endif()

set(args -S ${consumer} -B ${WORK_DIR}/build -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX}
         -DCMAKE_BUILD_TYPE=Release -DRATEGOV_CONSUME=${MODE} -DRATEGOV_SOURCE=${SOURCE_DIR}
         -DEXPECTED_VERSION=${EXPECTED_VERSION} -DCMAKE_PREFIX_PATH=${prefix})

if(MODE STREQUAL "version")
  # A 0.x install must not satisfy a request for 1.0 (SameMajorVersion).
  execute_process(COMMAND ${CMAKE_COMMAND} ${args} -DRATEGOV_REQUEST=1.0 RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0)
    message(FATAL_ERROR "find_package(rategov 1.0) accepted a ${EXPECTED_VERSION} install")
  endif()
  if(NOT out MATCHES "compatible with requested version \"1.0\"")
    message(FATAL_ERROR "find_package(rategov 1.0) failed, but not on the version:\n${out}")
  endif()
  message(STATUS "find_package(rategov 1.0) refused the ${EXPECTED_VERSION} install, as it must")
  return()
endif()

run(${CMAKE_COMMAND} ${args})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run(${WORK_DIR}/build/app)
message(STATUS "${last_output}")
