"""Conan 2 recipe for rategov, a header-only C++20 library.

From a checkout: `conan create . -s compiler.cppstd=20`; then a consumer
requires "rategov/0.1.0". tests/package/run_conan_recipe.cmake reproduces
these steps without Conan.
"""

import os
import re

from conan import ConanFile
from conan.errors import ConanException
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir

required_conan_version = ">=2.0"


class RategovConan(ConanFile):
    name = "rategov"
    description = "Header-only C++20 rate governor for rate-limited APIs"
    license = "MIT"
    url = "https://github.com/rategov/rategov"
    homepage = "https://github.com/rategov/rategov"
    topics = ("rate-limiting", "token-bucket", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    exports_sources = "CMakeLists.txt", "cmake/*", "include/*", "LICENSE"
    no_copy_source = True

    def set_version(self):
        # project(VERSION) in CMakeLists.txt, so that the two cannot drift.
        path = os.path.join(self.recipe_folder, "CMakeLists.txt")
        found = re.search(r"project\(\s*rategov\s+VERSION\s+(\d+\.\d+\.\d+)",
                          load(self, path))
        if not found:
            raise ConanException(f"no project(rategov VERSION ...) in {path}")
        self.version = found.group(1)

    def layout(self):
        cmake_layout(self)

    def package_id(self):
        self.info.clear()

    def validate(self):
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 20)

    def generate(self):
        tc = CMakeToolchain(self)
        for part in ("TESTS", "EXAMPLES", "BENCH", "SCENARIO", "FUZZ", "DOCS"):
            tc.cache_variables[f"RATEGOV_BUILD_{part}"] = False
        tc.generate()

    def build(self):
        pass  # header-only: package() installs the headers

    def package(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.install()
        copy(self, "LICENSE", src=self.source_folder,
             dst=os.path.join(self.package_folder, "licenses"))
        # share/ holds only rategov's CMake and pkg-config files: CMakeDeps
        # and PkgConfigDeps generate their own from package_info().
        rmdir(self, os.path.join(self.package_folder, "share"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "rategov")
        self.cpp_info.set_property("cmake_target_name", "rategov::rategov")
        self.cpp_info.set_property("pkg_config_name", "rategov")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        # No system_libs: rategov starts no threads (its atomics, mutexes and
        # condition variables need no -pthread), and rategov::rategov, its
        # own CMake target, links nothing either.
