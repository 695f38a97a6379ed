"""Stand-in for conan.tools.cmake: cmake_layout, CMakeToolchain and CMake.

Single-configuration generators only. CMakeToolchain.generate() writes the
toolchain file (the compiler from tools.build:compiler_executables) and, as
Conan's CMakePresets.json does, the generator and cache variables that
CMake.configure() passes on the command line.
"""

import json
import os


def cmake_layout(conanfile, generator=None, src_folder=".",
                 build_folder="build"):
    build_type = conanfile.settings.get_safe("build_type")
    if build_type is None:
        raise ValueError("cmake_layout needs settings.build_type")
    conanfile.folders.source = src_folder
    conanfile.folders.build = os.path.join(build_folder, build_type)
    conanfile.folders.generators = os.path.join(conanfile.folders.build,
                                                "generators")
    conanfile.cpp.build.bindirs = ["."]
    conanfile.cpp.build.libdirs = ["."]


def _cmake(conanfile):
    return conanfile.conf.get("tools.cmake:cmake_program", default="cmake")


def _args_file(conanfile):
    return os.path.join(conanfile.generators_folder,
                        "fake_conan_cmake_args.json")


def _cache_value(value):
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    return str(value)


class CMakeToolchain:
    def __init__(self, conanfile):
        self._conanfile = conanfile
        self.variables = {}
        self.cache_variables = {}

    def generate(self):
        conanfile = self._conanfile
        os.makedirs(conanfile.generators_folder, exist_ok=True)
        toolchain = os.path.join(conanfile.generators_folder,
                                 "conan_toolchain.cmake")
        compilers = conanfile.conf.get("tools.build:compiler_executables",
                                       default={})
        with open(toolchain, "w", encoding="utf-8") as f:
            if "cpp" in compilers:
                f.write(f'set(CMAKE_CXX_COMPILER "{compilers["cpp"]}")\n')
            for name, value in self.variables.items():
                f.write(f'set({name} "{value}")\n')
        args = {
            "generator": conanfile.conf.get(
                "tools.cmake.cmaketoolchain:generator"),
            "toolchain": toolchain,
            "cache_variables": {name: _cache_value(value) for name, value
                                in self.cache_variables.items()},
        }
        with open(_args_file(conanfile), "w", encoding="utf-8") as f:
            json.dump(args, f, indent=2)


class CMake:
    def __init__(self, conanfile):
        self._conanfile = conanfile
        with open(_args_file(conanfile), encoding="utf-8") as f:
            self._args = json.load(f)

    def configure(self, variables=None, build_script_folder=None,
                  cli_args=None):
        conanfile = self._conanfile
        source = conanfile.source_folder
        if build_script_folder:
            source = os.path.join(source, build_script_folder)
        command = [_cmake(conanfile), "-S", source,
                   "-B", conanfile.build_folder]
        if self._args["generator"]:
            command += ["-G", self._args["generator"]]
        command.append(f"-DCMAKE_TOOLCHAIN_FILE={self._args['toolchain']}")
        if conanfile.package_folder:
            command.append(
                f"-DCMAKE_INSTALL_PREFIX={conanfile.package_folder}")
        cache = dict(self._args["cache_variables"], **(variables or {}))
        command += [f"-D{name}={value}" for name, value in cache.items()]
        build_type = conanfile.settings.get_safe("build_type")
        command.append(f"-DCMAKE_BUILD_TYPE={build_type}")
        command += list(cli_args or [])
        os.makedirs(conanfile.build_folder, exist_ok=True)
        conanfile.run(command)

    def build(self, target=None):
        command = [_cmake(self._conanfile), "--build",
                   self._conanfile.build_folder]
        if target:
            command += ["--target", target]
        self._conanfile.run(command)

    def install(self):
        conanfile = self._conanfile
        conanfile.run([_cmake(conanfile), "--install", conanfile.build_folder,
                       "--prefix", conanfile.package_folder])
