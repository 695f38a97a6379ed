"""A stand-in for the few parts of Conan 2 that rategov's recipes use.

This is NOT Conan. It lets tests/package execute the methods of conanfile.py
and test_package/conanfile.py (set_version, layout, validate, generate,
package, package_info, ...) on a machine without Conan, and check what they
do. It has only what those two files import, behaving as Conan 2 documents;
everything else is missing on purpose.
"""

import subprocess

from conan.errors import ConanException


class _Settings:
    """settings as recipes read them: get_safe("compiler.cppstd")."""

    def __init__(self, values):
        self._values = dict(values)

    def get_safe(self, name, default=None):
        value = self._values.get(name)
        return default if value is None else value


class _Conf:
    """conf as tools read it: get(name, default=None, check_type=None)."""

    def __init__(self, values=None):
        self._values = dict(values or {})

    def get(self, name, default=None, check_type=None):
        value = self._values.get(name, default)
        if check_type and value is not None and \
                not isinstance(value, check_type):
            raise ConanException(f"conf '{name}' is not a {check_type}")
        return value


class _CppInfo:
    """cpp_info with Conan 2's defaults (include, lib, bin) and properties."""

    def __init__(self):
        self.includedirs = ["include"]
        self.libdirs = ["lib"]
        self.bindirs = ["bin"]
        self.system_libs = []
        self._properties = {}

    def set_property(self, name, value):
        self._properties[name] = value

    def get_property(self, name):
        return self._properties.get(name)


class _BuildLayout:
    """self.cpp.build: the build folder's layout, as cmake_layout sets it."""

    def __init__(self):
        self.bindirs = []
        self.libdirs = []

    @property
    def bindir(self):
        return self.bindirs[0] if self.bindirs else None


class _Cpp:
    def __init__(self):
        self.build = _BuildLayout()


class _Folders:
    """self.folders: paths relative to the base folder, set by layout()."""

    def __init__(self):
        self.source = ""
        self.build = ""
        self.generators = ""


class _Info:
    """self.info: what the package ID is computed from."""

    def __init__(self, settings):
        self.settings = settings
        self.cleared = False

    def clear(self):
        self.settings = _Settings({})
        self.cleared = True


class ConanFile:
    """The recipes' base class. The driver sets the absolute folders."""

    name = None
    version = None
    settings = ()
    generators = ()

    def __init__(self, settings=None, settings_build=None, conf=None,
                 recipe_folder=None):
        self.settings = _Settings(settings or {})
        if settings_build is None:
            settings_build = settings
        self.settings_build = _Settings(settings_build or {})
        self.conf = _Conf(conf)
        self.recipe_folder = recipe_folder
        self.folders = _Folders()
        self.cpp = _Cpp()
        self.cpp_info = _CppInfo()
        self.info = _Info(self.settings)
        self.source_folder = None
        self.build_folder = None
        self.generators_folder = None
        self.package_folder = None
        self.tested_reference_str = None
        self.required = []

    def requires(self, reference):
        self.required.append(reference)

    def run(self, command, env="", cwd=None):
        """Runs a command (a list here) in the build folder; fails as Conan."""
        done = subprocess.run(command, cwd=cwd or self.build_folder,
                              check=False)
        if done.returncode != 0:
            raise ConanException(
                f"command failed ({done.returncode}): {command}")
