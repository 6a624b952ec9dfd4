"""Builds the Cython extensions; metadata lives in pyproject.toml."""

from glob import glob

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

COMPILE_ARGS = ["-O3", "-std=c++17", "-fno-strict-aliasing"]


def extension(pyx_path: str) -> Extension:
    module = pyx_path[:-4].replace("/", ".")
    return Extension(
        module,
        [pyx_path],
        language="c++",
        extra_compile_args=COMPILE_ARGS,
        include_dirs=[numpy.get_include(), "core_cython"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )


setup(
    packages=["venue", "core_cython", "journal", "bench"],
    package_data={"core_cython": ["*.pxd", "*.pyx"], "bench": ["*.pyx"]},
    ext_modules=cythonize(
        [extension(p) for p in sorted(glob("core_cython/*.pyx") + glob("bench/*.pyx"))],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False},
    ),
)
