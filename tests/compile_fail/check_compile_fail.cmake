# Usage: cmake -DCXX=… -DSOURCE=… -DINCLUDE_DIR=… -DEXPECT=<regex> -P check_compile_fail.cmake
foreach(var CXX SOURCE INCLUDE_DIR EXPECT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "check_compile_fail.cmake: ${var} is not set")
  endif()
endforeach()

set(flags -std=c++20 -fsyntax-only -I${INCLUDE_DIR})

execute_process(
  COMMAND ${CXX} ${flags} ${SOURCE}
  RESULT_VARIABLE control_rc
  OUTPUT_VARIABLE control_out
  ERROR_VARIABLE control_out)
if(NOT control_rc EQUAL 0)
  message(FATAL_ERROR "control build of ${SOURCE} (without RATEGOV_COMPILE_FAIL) failed; "
                      "the snippet itself is broken:\n${control_out}")
endif()

execute_process(
  COMMAND ${CXX} ${flags} -DRATEGOV_COMPILE_FAIL ${SOURCE}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE out
  ERROR_VARIABLE out)
if(rc EQUAL 0)
  message(FATAL_ERROR "${SOURCE} compiled with RATEGOV_COMPILE_FAIL, but must be rejected")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "${SOURCE} was rejected, but without the expected message "
                      "'${EXPECT}'. The compiler said:\n${out}")
endif()
message(STATUS "rejected as expected: ${EXPECT}")
