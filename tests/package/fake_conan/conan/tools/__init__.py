"""Stand-in for conan.tools (see conan/__init__.py: this is not Conan)."""
