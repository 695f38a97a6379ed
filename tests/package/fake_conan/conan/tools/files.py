"""Stand-in for conan.tools.files: copy, load and rmdir."""

import fnmatch
import os
import shutil


def load(conanfile, path, encoding="utf-8"):
    with open(path, encoding=encoding) as f:
        return f.read()


def rmdir(conanfile, path):
    """Removes a directory tree; a missing one is not an error."""
    if os.path.isdir(path):
        shutil.rmtree(path)


def copy(conanfile, pattern, src, dst, keep_path=True, excludes=None):
    """Copies the files under src whose relative path matches pattern."""
    copied = []
    for root, _, files in os.walk(src):
        for name in files:
            relative = os.path.relpath(os.path.join(root, name), src)
            if not fnmatch.fnmatch(relative, pattern):
                continue
            if excludes and any(fnmatch.fnmatch(relative, e)
                                for e in excludes):
                continue
            target = os.path.join(dst, relative if keep_path else name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copy2(os.path.join(root, name), target)
            copied.append(target)
    return copied
