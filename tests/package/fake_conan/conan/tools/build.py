"""Stand-in for conan.tools.build: check_min_cppstd and can_run."""

from conan.errors import ConanException, ConanInvalidConfiguration


def _year(cppstd):
    # "98" sorts before "11": compare 1998, 2011, ..., without "gnu".
    number = str(cppstd).replace("gnu", "")
    return int(("19" if number == "98" else "20") + number)


def check_min_cppstd(conanfile, cppstd, gnu_extensions=False):
    """Raises ConanInvalidConfiguration unless compiler.cppstd >= cppstd.

    As in Conan 2, an undefined compiler.cppstd raises too: recipes guard
    the call.
    """
    if not str(cppstd).isdigit():
        raise ConanException("cppstd parameter must be a number")
    current = conanfile.settings.get_safe("compiler.cppstd")
    if current is None:
        raise ConanInvalidConfiguration(
            "The compiler.cppstd is not defined for this configuration")
    if gnu_extensions and "gnu" not in current:
        raise ConanInvalidConfiguration("The cppstd GNU extension is required")
    if _year(current) < _year(cppstd):
        raise ConanInvalidConfiguration(
            f"Current cppstd ({current}) is lower than the required C++ "
            f"standard ({cppstd}).")


def can_run(conanfile):
    """False when cross-building (host os or arch is not the build's)."""
    allowed = conanfile.conf.get("tools.build.cross_building:can_run",
                                 check_type=bool)
    if allowed is not None:
        return allowed
    for setting in ("os", "arch"):
        host = conanfile.settings.get_safe(setting)
        if host is not None and \
                host != conanfile.settings_build.get_safe(setting):
            return False
    return True
