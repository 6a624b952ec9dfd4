"""Builds the Cython extensions; metadata lives in pyproject.toml."""

import sys
from glob import glob
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

# The SBE codecs are generated from the XML schema on every build (stdlib-only generator, imported
# from the source tree), so the schema is the one source of truth; unchanged output is not rewritten.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sbe_schemas.codegen import generate  # noqa: E402

generate("sbe_schemas/venue_order_entry.xml", "sbe_schemas/codecs")

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
    packages=["venue", "core_cython", "journal", "bench", "sbe_schemas", "sbe_gateway"],
    package_data={"core_cython": ["*.pxd", "*.pyx"], "bench": ["*.pyx"],
                  "sbe_schemas": ["*.xml", "*.pxd", "*.pyx"], "sbe_gateway": ["*.pyx"],
                  "journal": ["*.pyx"]},
    ext_modules=cythonize(
        [extension(p) for p in sorted(glob("core_cython/*.pyx") + glob("bench/*.pyx")
                                      + glob("sbe_gateway/*.pyx"))]
        + [extension("sbe_schemas/codecs.pyx"), extension("journal/codec.pyx")],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False,
                             "cdivision": True, "initializedcheck": False},
    ),
)
