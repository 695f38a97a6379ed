"""Runs rategov's conanfile.py and test_package/conanfile.py on the stand-in
Conan beside this file (conan/: not Conan, see conan/__init__.py).

Called by tests/package/run_conan_recipe.cmake as
    python3 -I -B run_recipe.py --source DIR --work DIR --cmake CMAKE
        --cxx CXX --generator GEN --expected-version X.Y.Z
It checks the recipe's attributes, set_version, validate, package_id and
package_info; runs export, layout, generate, build and package for real (the
stand-in CMake configures and installs the exported sources); checks
test_package/conanfile.py; and leaves WORK/package and WORK/package_info.json
for the CMake script to compare and use. Exits non-zero on the first failure.
"""

import argparse
import importlib.util
import inspect
import json
import os
import re
import shutil
import sys

# -I keeps PYTHONPATH and this script's folder out of sys.path: add the
# stand-in explicitly, and write no __pycache__ beside the recipes.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True

from conan import ConanFile  # noqa: E402
from conan.errors import ConanInvalidConfiguration  # noqa: E402
from conan.tools.files import copy  # noqa: E402

SETTINGS = {"os", "arch", "compiler", "build_type"}


def expect(condition, what):
    if not condition:
        sys.exit(f"FAIL: {what}")
    print(f"ok: {what}")


def as_tuple(value):
    return (value,) if isinstance(value, str) else tuple(value)


def load_recipe_class(path):
    name = "recipe_" + os.path.basename(os.path.dirname(path))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [c for c in vars(module).values() if inspect.isclass(c)
               and issubclass(c, ConanFile) and c is not ConanFile]
    expect(len(classes) == 1, f"{path} defines one ConanFile")
    return classes[0]


def check_attributes(recipe_class):
    expect(recipe_class.name == "rategov", "name is rategov")
    expect(recipe_class.package_type == "header-library",
           "package_type is header-library")
    expect(recipe_class.no_copy_source is True, "no_copy_source is True")
    expect(set(as_tuple(recipe_class.settings)) == SETTINGS,
           "settings are os, arch, compiler, build_type")
    expect(recipe_class.license == "MIT", "license is MIT")


def check_validate(recipe_class, host):
    for cppstd, valid in (("14", False), ("17", False), ("gnu17", False),
                          ("20", True), ("gnu20", True), ("23", True),
                          (None, True)):
        settings = dict(host)
        if cppstd:
            settings["compiler.cppstd"] = cppstd
        try:
            recipe_class(settings=settings).validate()
            accepted = True
        except ConanInvalidConfiguration:
            accepted = False
        expect(accepted == valid,
               f"validate() {'accepts' if valid else 'refuses'} "
               f"compiler.cppstd={cppstd}")


def build_options(source):
    """The RATEGOV_BUILD_* option()s of CMakeLists.txt, now or later."""
    with open(os.path.join(source, "CMakeLists.txt"), encoding="utf-8") as f:
        options = re.findall(r"option\(\s*(RATEGOV_BUILD_\w+)", f.read())
    expect(options, "CMakeLists.txt declares RATEGOV_BUILD_* options")
    return options


def create_package(recipe_class, args, host, version):
    """export, layout, generate, build, package: as `conan create` does."""
    export = os.path.join(args.work, "export")
    for pattern in as_tuple(recipe_class.exports_sources):
        copy(None, pattern, args.source, export)
    recipe = recipe_class(
        settings=dict(host, **{"compiler.cppstd": "20"}),
        recipe_folder=args.source,
        conf={"tools.build:compiler_executables": {"cpp": args.cxx},
              "tools.cmake.cmaketoolchain:generator": args.generator,
              "tools.cmake:cmake_program": args.cmake})
    recipe.version = version
    recipe.layout()
    expect(recipe.folders.build and recipe.folders.generators,
           "layout() sets the build and generators folders")
    # no_copy_source: the build reads the exported sources in place.
    recipe.source_folder = os.path.join(export, recipe.folders.source)
    recipe.build_folder = os.path.join(args.work, recipe.folders.build)
    recipe.generators_folder = os.path.join(args.work,
                                            recipe.folders.generators)
    recipe.package_folder = os.path.join(args.work, "package")
    recipe.generate()
    args_file = os.path.join(recipe.generators_folder,
                             "fake_conan_cmake_args.json")
    with open(args_file, encoding="utf-8") as f:
        cache = json.load(f)["cache_variables"]
    for option in build_options(args.source):
        expect(cache.get(option) == "OFF", f"generate() sets {option}=OFF")
    recipe.build()
    recipe.package()
    print(f"package folder: {recipe.package_folder}")


def check_package_info(recipe_class, work):
    recipe = recipe_class()
    recipe.package_info()
    info = recipe.cpp_info
    for name, value in (("cmake_file_name", "rategov"),
                        ("cmake_target_name", "rategov::rategov"),
                        ("pkg_config_name", "rategov")):
        expect(info.get_property(name) == value,
               f"package_info() sets {name}={value}")
    expect(info.includedirs == ["include"],
           "package_info() keeps includedirs = [include]")
    expect(info.bindirs == [] and info.libdirs == [],
           "package_info() empties bindirs and libdirs")
    expect(info.system_libs == [], "package_info() adds no system_libs")
    with open(os.path.join(work, "package_info.json"), "w",
              encoding="utf-8") as f:
        json.dump({"includedirs": info.includedirs,
                   "cmake_file_name": info.get_property("cmake_file_name"),
                   "cmake_target_name":
                       info.get_property("cmake_target_name")}, f, indent=2)


def check_test_package(test_class, host, version):
    expect(set(as_tuple(test_class.settings)) == SETTINGS,
           "test_package settings are os, arch, compiler, build_type")
    expect(set(as_tuple(test_class.generators))
           == {"CMakeDeps", "CMakeToolchain"},
           "test_package generators are CMakeDeps and CMakeToolchain")
    reference = f"rategov/{version}"
    cross = dict(host, arch="armv8")
    for settings_build, expected_runs in (
            (host, [(os.path.join(".", "test_package"), "conanrun")]),
            (cross, [])):
        test = test_class(settings=host, settings_build=settings_build)
        test.tested_reference_str = reference
        test.requirements()
        expect(test.required == [reference],
               "test_package requires the tested reference")
        test.layout()
        runs = []
        test.run = lambda command, env="", cwd=None: runs.append(
            (command, env))
        test.test()
        expect(runs == expected_runs,
               "test() runs ./test_package in the conanrun environment"
               if expected_runs else "test() runs nothing when cross-building")


def main():
    parser = argparse.ArgumentParser()
    for name in ("source", "work", "cmake", "cxx", "generator",
                 "expected-version"):
        parser.add_argument(f"--{name}", required=True)
    args = parser.parse_args()
    if os.path.exists(args.work):
        shutil.rmtree(args.work)
    os.makedirs(args.work)

    compiler = "clang" if "clang" in os.path.basename(args.cxx) else "gcc"
    host = {"os": "Linux", "arch": "x86_64", "build_type": "Release",
            "compiler": compiler}
    recipe_class = load_recipe_class(os.path.join(args.source,
                                                  "conanfile.py"))
    check_attributes(recipe_class)
    recipe = recipe_class(settings=host, recipe_folder=args.source)
    if hasattr(recipe, "set_version"):
        recipe.set_version()
    expect(recipe.version == args.expected_version,
           f"version {recipe.version} is the project's "
           f"{args.expected_version}")
    check_validate(recipe_class, host)
    identified = recipe_class(settings=dict(host, **{"compiler.cppstd": "20"}))
    identified.package_id()
    expect(identified.info.cleared,
           "package_id() clears the info: one package for every setting")

    create_package(recipe_class, args, host, recipe.version)
    check_package_info(recipe_class, args.work)
    test_class = load_recipe_class(
        os.path.join(args.source, "test_package", "conanfile.py"))
    check_test_package(test_class, host, recipe.version)
    print("conanfile.py and test_package/conanfile.py ran on the stand-in")


if __name__ == "__main__":
    main()
