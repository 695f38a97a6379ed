"""Stand-in for conan.errors (see conan/__init__.py: this is not Conan)."""


class ConanException(Exception):
    pass


class ConanInvalidConfiguration(ConanException):
    pass
