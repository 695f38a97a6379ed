# Stand-ins for the vcpkg helpers that ports/rategov/portfile.cmake calls. This is NOT vcpkg:
# it lets package.vcpkg_port run the real portfile where vcpkg cannot be installed. Each
# function does what vcpkg's own does for a release-only (VCPKG_BUILD_TYPE release) Linux
# build, following vcpkg's scripts (ports/vcpkg-cmake, ports/vcpkg-cmake-config,
# scripts/cmake). Differences, all on the strict side:
#   - the build uses the host compiler (VCPKG_STANDIN_CXX), not vcpkg's toolchain file;
#   - a debug configuration is not supported: a port without VCPKG_BUILD_TYPE release fails;
#   - a port option the project does not use fails here (vcpkg only warns), as does a
#     CONFIG_PATH that does not exist (vcpkg's post-build checks would then reject the port).
# Inputs: PORT TARGET_TRIPLET CURRENT_BUILDTREES_DIR CURRENT_PACKAGES_DIR CURRENT_INSTALLED_DIR
#         VCPKG_LIBRARY_LINKAGE VCPKG_STANDIN_CXX VCPKG_STANDIN_GENERATOR

# Records the helpers called, in order, in the global property VCPKG_STANDIN_CALLS.
function(z_standin_called name)
  set_property(GLOBAL APPEND PROPERTY VCPKG_STANDIN_CALLS ${name})
endfunction()

function(z_standin_release_only name)
  if(NOT VCPKG_BUILD_TYPE STREQUAL "release")
    message(FATAL_ERROR "${name}: the stand-in builds release only; a "
                        "header-only port sets VCPKG_BUILD_TYPE release "
                        "(it is '${VCPKG_BUILD_TYPE}')")
  endif()
endfunction()

# Runs a command as vcpkg_execute_required_process does: output to LOGNAME-out.log in the
# buildtrees, failure fatal. Sets `log_contents` in the caller.
function(z_standin_required_process logname)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  file(WRITE "${CURRENT_BUILDTREES_DIR}/${logname}-out.log" "${out}")
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "command failed (${rc}): ${cmd}\n${out}")
  endif()
  set(log_contents "${out}" PARENT_SCOPE)
endfunction()

# vcpkg_cmake_configure: configures SOURCE_PATH into <buildtrees>/<triplet>-rel with the
# port's OPTIONS and OPTIONS_RELEASE, the settings vcpkg always passes, Release and
# CMAKE_INSTALL_PREFIX=${CURRENT_PACKAGES_DIR}.
function(vcpkg_cmake_configure)
  z_standin_called(${CMAKE_CURRENT_FUNCTION})
  cmake_parse_arguments(PARSE_ARGV 0 arg "DISABLE_PARALLEL_CONFIGURE;WINDOWS_USE_MSBUILD;NO_CHARSET_FLAG"
                        "SOURCE_PATH;GENERATOR;LOGFILE_BASE"
                        "OPTIONS;OPTIONS_DEBUG;OPTIONS_RELEASE;MAYBE_UNUSED_VARIABLES")
  if(DEFINED arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "vcpkg_cmake_configure was passed extra arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT DEFINED arg_SOURCE_PATH)
    message(FATAL_ERROR "SOURCE_PATH must be set")
  endif()
  if(NOT EXISTS "${arg_SOURCE_PATH}/CMakeLists.txt")
    message(FATAL_ERROR "SOURCE_PATH '${arg_SOURCE_PATH}' holds no CMakeLists.txt")
  endif()
  z_standin_release_only(${CMAKE_CURRENT_FUNCTION})
  if(NOT DEFINED arg_LOGFILE_BASE)
    set(arg_LOGFILE_BASE "config-${TARGET_TRIPLET}")
  endif()
  set(build_dir "${CURRENT_BUILDTREES_DIR}/${TARGET_TRIPLET}-rel")
  file(REMOVE_RECURSE "${build_dir}")
  file(MAKE_DIRECTORY "${build_dir}")
  if(VCPKG_LIBRARY_LINKAGE STREQUAL "dynamic")
    set(shared ON)
  else()
    set(shared OFF)
  endif()
  z_standin_required_process(
    "${arg_LOGFILE_BASE}-rel"
    "${CMAKE_COMMAND}" -S "${arg_SOURCE_PATH}" -B "${build_dir}" ${arg_OPTIONS}
    ${arg_OPTIONS_RELEASE} -G "${VCPKG_STANDIN_GENERATOR}"
    "-DCMAKE_CXX_COMPILER=${VCPKG_STANDIN_CXX}" "-DBUILD_SHARED_LIBS=${shared}"
    -DCMAKE_EXPORT_NO_PACKAGE_REGISTRY=ON -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
    -DCMAKE_FIND_PACKAGE_NO_SYSTEM_PACKAGE_REGISTRY=ON
    -DCMAKE_INSTALL_SYSTEM_RUNTIME_LIBS_SKIP=TRUE -DCMAKE_ERROR_ON_ABSOLUTE_INSTALL_DESTINATION=ON
    -DCMAKE_INSTALL_LIBDIR:STRING=lib -DCMAKE_INSTALL_BINDIR:STRING=bin
    "-DCMAKE_BUILD_TYPE=Release" "-DCMAKE_INSTALL_PREFIX=${CURRENT_PACKAGES_DIR}")
  # vcpkg warns about the port's own -D variables that CMake reports unused; this fails.
  set(port_variables "")
  foreach(option IN LISTS arg_OPTIONS arg_OPTIONS_RELEASE)
    if(option MATCHES "^-D([^:=]*)[:=]")
      list(APPEND port_variables "${CMAKE_MATCH_1}")
    endif()
  endforeach()
  if(arg_MAYBE_UNUSED_VARIABLES)
    list(REMOVE_ITEM port_variables ${arg_MAYBE_UNUSED_VARIABLES})
  endif()
  if(log_contents MATCHES "Manually-specified variables were not used by the project:\n\n((    [^\n]*\n)*)")
    string(STRIP "${CMAKE_MATCH_1}" unused)
    string(REPLACE "\n    " ";" unused "${unused}")
    foreach(variable IN LISTS unused)
      if(variable IN_LIST port_variables)
        message(FATAL_ERROR "vcpkg_cmake_configure: the project does not use ${variable}")
      endif()
    endforeach()
  endif()
  set(Z_VCPKG_CMAKE_GENERATOR "${VCPKG_STANDIN_GENERATOR}" CACHE INTERNAL "generator used")
endfunction()

# vcpkg_cmake_install: builds the `install` target of the release build tree.
function(vcpkg_cmake_install)
  z_standin_called(${CMAKE_CURRENT_FUNCTION})
  cmake_parse_arguments(PARSE_ARGV 0 arg "DISABLE_PARALLEL;ADD_BIN_TO_PATH" "" "")
  if(DEFINED arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "vcpkg_cmake_install was passed extra arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT DEFINED Z_VCPKG_CMAKE_GENERATOR)
    message(FATAL_ERROR "vcpkg_cmake_install before vcpkg_cmake_configure")
  endif()
  z_standin_release_only(${CMAKE_CURRENT_FUNCTION})
  z_standin_required_process("install-${TARGET_TRIPLET}-rel" "${CMAKE_COMMAND}" --build
                             "${CURRENT_BUILDTREES_DIR}/${TARGET_TRIPLET}-rel" --config Release
                             --target install)
endfunction()

# vcpkg_cmake_config_fixup: moves ${CURRENT_PACKAGES_DIR}/<CONFIG_PATH> to share/<PACKAGE_NAME>,
# removes the emptied parent when it is named `cmake`, and rewrites the prefix computations of
# the moved files for their new place, two levels below the prefix (vcpkg's own regexes).
function(vcpkg_cmake_config_fixup)
  z_standin_called(${CMAKE_CURRENT_FUNCTION})
  cmake_parse_arguments(PARSE_ARGV 0 arg "DO_NOT_DELETE_PARENT_CONFIG_PATH;NO_PREFIX_CORRECTION"
                        "PACKAGE_NAME;CONFIG_PATH" "")
  if(DEFINED arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "vcpkg_cmake_config_fixup was passed extra arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  z_standin_release_only(${CMAKE_CURRENT_FUNCTION})
  if(NOT arg_PACKAGE_NAME)
    set(arg_PACKAGE_NAME "${PORT}")
  endif()
  if(NOT arg_CONFIG_PATH)
    set(arg_CONFIG_PATH "share/${arg_PACKAGE_NAME}")
  endif()
  set(release_share "${CURRENT_PACKAGES_DIR}/share/${arg_PACKAGE_NAME}")

  if(NOT arg_CONFIG_PATH STREQUAL "share/${arg_PACKAGE_NAME}")
    set(release_config "${CURRENT_PACKAGES_DIR}/${arg_CONFIG_PATH}")
    if(NOT IS_DIRECTORY "${release_config}")
      message(FATAL_ERROR "'${release_config}' does not exist.")
    endif()
    file(GLOB files "${release_config}/*")
    file(COPY ${files} DESTINATION "${release_share}")
    file(REMOVE_RECURSE "${release_config}")
    get_filename_component(name "${release_config}" NAME)
    get_filename_component(parent "${release_config}" DIRECTORY)
    get_filename_component(parent_name "${parent}" NAME)
    string(TOLOWER "${name}" name)
    string(TOLOWER "${parent_name}" parent_name)
    if(NOT arg_DO_NOT_DELETE_PARENT_CONFIG_PATH AND NOT name STREQUAL "cmake"
       AND parent_name STREQUAL "cmake")
      file(REMOVE_RECURSE "${parent}")
    endif()
  endif()
  if(NOT IS_DIRECTORY "${release_share}")
    message(FATAL_ERROR "'${release_share}' does not exist.")
  endif()

  file(GLOB_RECURSE main_cmakes "${release_share}/*.cmake")
  foreach(main_cmake IN LISTS main_cmakes)
    file(READ "${main_cmake}" contents)
    if(NOT arg_NO_PREFIX_CORRECTION)
      # install(EXPORT)'s targets file: the file's folder, then up to the prefix.
      string(REGEX REPLACE
[[get_filename_component\(_IMPORT_PREFIX "\${CMAKE_CURRENT_LIST_FILE}" PATH\)(
get_filename_component\(_IMPORT_PREFIX "\${_IMPORT_PREFIX}" PATH\))*]]
[[get_filename_component(_IMPORT_PREFIX "${CMAKE_CURRENT_LIST_FILE}" PATH)
get_filename_component(_IMPORT_PREFIX "${_IMPORT_PREFIX}" PATH)
get_filename_component(_IMPORT_PREFIX "${_IMPORT_PREFIX}" PATH)]]
             contents "${contents}")
      # configure_package_config_file's @PACKAGE_INIT@.
      string(REGEX REPLACE
[[get_filename_component\(PACKAGE_PREFIX_DIR "\${CMAKE_CURRENT_LIST_DIR}/\.\./(\.\./)*" ABSOLUTE\)]]
[[get_filename_component(PACKAGE_PREFIX_DIR "${CMAKE_CURRENT_LIST_DIR}/../../" ABSOLUTE)]]
             contents "${contents}")
    endif()
    string(REPLACE "${CURRENT_INSTALLED_DIR}" [[${_IMPORT_PREFIX}]] contents "${contents}")
    string(REPLACE "${CURRENT_PACKAGES_DIR}" [[${_IMPORT_PREFIX}]] contents "${contents}")
    file(WRITE "${main_cmake}" "${contents}")
  endforeach()
endfunction()

# vcpkg_fixup_pkgconfig: makes each release *.pc relocatable (prefix=${pcfiledir}/<up to the
# prefix>, absolute paths to ${prefix}, -I/-L/-l paths quoted), merges the .private fields for
# static linkage, then checks each package with `pkg-config --exists`.
function(vcpkg_fixup_pkgconfig)
  z_standin_called(${CMAKE_CURRENT_FUNCTION})
  cmake_parse_arguments(PARSE_ARGV 0 arg "SKIP_CHECK" ""
                        "RELEASE_FILES;DEBUG_FILES;SYSTEM_LIBRARIES;SYSTEM_PACKAGES;IGNORE_FLAGS")
  if(DEFINED arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "vcpkg_fixup_pkgconfig was passed extra arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  z_standin_release_only(${CMAKE_CURRENT_FUNCTION})
  if(NOT DEFINED arg_RELEASE_FILES)
    file(GLOB_RECURSE all_files "${CURRENT_PACKAGES_DIR}/*.pc")
    set(arg_RELEASE_FILES "")
    foreach(file IN LISTS all_files)
      string(FIND "${file}" "${CURRENT_PACKAGES_DIR}/debug/" at)
      if(NOT at EQUAL 0)
        list(APPEND arg_RELEASE_FILES "${file}")
      endif()
    endforeach()
  endif()
  foreach(file IN LISTS arg_RELEASE_FILES)
    message(STATUS "Fixing pkgconfig file: ${file}")
    get_filename_component(pc_dir "${file}" DIRECTORY)
    file(RELATIVE_PATH relative_pc_path "${pc_dir}" "${CURRENT_PACKAGES_DIR}")
    string(REGEX REPLACE "/$" "" relative_pc_path "${relative_pc_path}")
    file(READ "${file}" contents)
    if(NOT contents MATCHES "\n$")
      string(APPEND contents "\n")
    endif()
    string(REPLACE "\r\n" "\n" contents "${contents}")
    string(REPLACE "${CURRENT_PACKAGES_DIR}" [[${prefix}]] contents "${contents}")
    string(REPLACE "${CURRENT_INSTALLED_DIR}" [[${prefix}]] contents "${contents}")
    string(REGEX REPLACE "(^|\n) *prefix[\t ]*=[^\n]*" "" contents "${contents}")
    string(REGEX REPLACE " -([LIl])(\\\${[^}]*}[^ \n\t]*)" [[ -\1"\2"]] contents "${contents}")
    if(VCPKG_LIBRARY_LINKAGE STREQUAL "static")
      foreach(item IN ITEMS "Libs" "Requires" "Cflags")
        set(line "")
        if(contents MATCHES "(^|\n)${item}: *([^\n]*)")
          string(APPEND line " ${CMAKE_MATCH_2}")
        endif()
        if(contents MATCHES "(^|\n)${item}\\.private: *([^\n]*)")
          string(APPEND line " ${CMAKE_MATCH_2}")
        endif()
        string(REGEX REPLACE "(^|\n)${item}(\\.private)?:[^\n]*\n" [[\1]] contents "${contents}")
        if(NOT line STREQUAL "")
          string(APPEND contents "${item}:${line}\n")
        endif()
      endforeach()
    endif()
    file(WRITE "${file}" "prefix=\${pcfiledir}/${relative_pc_path}\n${contents}")
  endforeach()
  if(NOT arg_SKIP_CHECK)
    find_program(PKGCONFIG pkg-config REQUIRED)
    foreach(file IN LISTS arg_RELEASE_FILES)
      get_filename_component(package_name "${file}" NAME_WLE)
      set(ENV{PKG_CONFIG_PATH} "${CURRENT_PACKAGES_DIR}/lib/pkgconfig:${CURRENT_PACKAGES_DIR}/share/pkgconfig:${CURRENT_INSTALLED_DIR}/lib/pkgconfig:${CURRENT_INSTALLED_DIR}/share/pkgconfig")
      execute_process(COMMAND "${PKGCONFIG}" --print-errors --exists "${package_name}"
                      RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
      unset(ENV{PKG_CONFIG_PATH})
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${PKGCONFIG} --exists ${package_name} failed (${rc}): ${out}")
      endif()
    endforeach()
  endif()
endfunction()

# vcpkg_install_copyright: installs the license as share/${PORT}/copyright (one file: as is).
function(vcpkg_install_copyright)
  z_standin_called(${CMAKE_CURRENT_FUNCTION})
  cmake_parse_arguments(PARSE_ARGV 0 arg "" "COMMENT" "FILE_LIST")
  if(DEFINED arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "vcpkg_install_copyright was passed extra arguments: ${arg_UNPARSED_ARGUMENTS}")
  endif()
  list(LENGTH arg_FILE_LIST count)
  if(NOT count EQUAL 1 OR DEFINED arg_COMMENT)
    message(FATAL_ERROR "the stand-in installs exactly one license file, without COMMENT")
  endif()
  if(NOT EXISTS "${arg_FILE_LIST}")
    message(FATAL_ERROR "vcpkg_install_copyright: ${arg_FILE_LIST} does not exist")
  endif()
  configure_file("${arg_FILE_LIST}" "${CURRENT_PACKAGES_DIR}/share/${PORT}/copyright" COPYONLY)
endfunction()
